//! The workflow parser and planner of `cairn`, compiled on their own for
//! fuzzing. These modules are pure (text in, values or diagnostics out) and
//! refer to each other only as `crate::workflow::{diag, yaml, keys, cond,
//! spec, plan}`, so including them under a `workflow` module at this crate's root
//! gives them the same paths they have in `cairn`, without wasmtime.

/// `host/src/workflow`'s pure modules, by path (see `workflow.rs`).
pub mod workflow;
