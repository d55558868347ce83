//! Cairn's integration tests: one test binary (one link step), one module
//! per area. Guests are real components built from tests/guests.

mod cache;
mod example;
mod execution;
mod limits;
mod maintenance;
mod planning_errors;
mod polyglot;
mod records;
mod sandbox;
mod scheduling;
mod typed;
mod util;
