//! Cairn's integration tests: one test binary (one link step), one module
//! per area. Guests are real components built from tests/guests.

mod attacks;
mod cache;
mod causes;
mod cli;
mod concurrency;
mod crash;
mod example;
mod execution;
mod limits;
mod maintenance;
mod planning_errors;
mod polyglot;
mod records;
mod remote;
mod sandbox;
mod scheduling;
mod store_faults;
mod tooling;
mod typed;
mod util;
mod web;
