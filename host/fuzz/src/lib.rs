//! The workflow parser and planner of `cairn`, compiled on their own for
//! fuzzing. These four modules are pure (text in, values or diagnostics out)
//! and refer to each other only as `crate::diag`, `crate::yaml`,
//! `crate::spec` and `crate::plan`, so including them at this crate's root
//! gives them the same paths they have in `cairn`, without wasmtime.

#[path = "../../src/diag.rs"]
pub mod diag;
#[path = "../../src/yaml.rs"]
pub mod yaml;
#[path = "../../src/spec.rs"]
pub mod spec;
#[path = "../../src/plan.rs"]
pub mod plan;
