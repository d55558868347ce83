//! Running a plan: the scheduler (`scheduler`) walks the DAG and asks two
//! seams for each ready job, an [`ActionCache`](crate::ActionCache) and an
//! [`Executor`](executor::Executor) (`executor`); what happened to a job
//! is an [`Outcome`](outcome::Outcome) (`outcome`). `session` wires the
//! real implementations and records a run; `recorded` reads a run back by
//! id; `verify` re-executes one; `why` says why a recorded job executed.
//!
//! Owns: order, concurrency, retries, conditions, and the events that
//! report them. May not: print (the CLI renders events), open files other
//! than through the store, or know which executor or cache it was given.

pub mod executor;
pub mod outcome;
pub mod recorded;
pub mod scheduler;
pub mod session;
pub mod verify;
pub mod why;
