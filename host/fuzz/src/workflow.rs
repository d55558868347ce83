//! `host/src/workflow`'s pure modules. The paths are relative to this
//! file's directory; in an inline `mod workflow { … }` in lib.rs they would
//! be relative to `src/workflow/`, a directory that does not exist, and
//! `..` cannot climb out of it.

#[path = "../../src/workflow/diag.rs"]
pub mod diag;
#[path = "../../src/workflow/yaml.rs"]
pub mod yaml;
#[path = "../../src/workflow/keys.rs"]
pub mod keys;
#[path = "../../src/workflow/cond.rs"]
pub mod cond;
#[path = "../../src/workflow/spec.rs"]
pub mod spec;
#[path = "../../src/workflow/plan.rs"]
pub mod plan;
