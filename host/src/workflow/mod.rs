//! The workflow file, from text to a checked plan: YAML with positions
//! (`yaml`), every key the file may hold (`keys`) and the JSON Schema made
//! from them (`schema`), the typed spec (`spec`), `if:` conditions (`cond`), the
//! planned DAG of concrete jobs (`plan`), the WIT types of typed tasks
//! (`typed`) and the whole-DAG type check against them (`check`), with
//! diagnostics that point at file:line:col (`diag`).
//!
//! Owns: everything a workflow file can say, and every error in one.
//! May not: run anything, touch the store, or use tokio. `spec`, `plan` and
//! `cond` are pure (text in, values out) and are fuzzed on their own;
//! `load` is the one edge that reads the file and asks whether the paths
//! it names exist.

pub mod check;
pub mod cond;
pub mod diag;
pub mod keys;
pub mod load;
pub mod plan;
pub mod schema;
pub mod spec;
pub mod typed;
pub mod yaml;
