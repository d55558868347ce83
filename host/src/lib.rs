//! Cairn runs workflows whose steps are sandboxed WebAssembly components.
//!
//! A workflow file is parsed into a [`spec::Workflow`], planned into a DAG of
//! concrete jobs ([`plan::Plan`]), scheduled ([`scheduler`]) against an
//! action cache, and executed, each job in its own wasmtime store
//! ([`exec::WasmExecutor`]). Every byte that moves between jobs is a blob in
//! the content-addressed [`store::Store`].
//!
//! `spec` and `plan` are pure (text in, values out); all I/O lives in the
//! store, the sandbox, the runtime and the [`workflow`] module that wires
//! them together.
//!
//! ```
//! use cairn::diag::Source;
//! let wf = cairn::spec::parse(
//!     Source::new("wf.yaml", "jobs:\n  hello:\n    uses: hello.wasm\n    args: [world]\n"),
//!     "wf",
//! )
//! .unwrap();
//! let plan = cairn::plan::plan(&wf, &Default::default()).unwrap();
//! assert_eq!(plan.jobs[0].argv, ["world"]);
//! ```
#![deny(missing_docs)]

pub mod adapt;
pub mod builder;
pub mod cache;
pub mod check;
pub mod cli;
pub mod cond;
pub mod diag;
pub mod digest;
pub mod exec;
pub mod maintenance;
pub mod outcome;
pub mod plan;
pub mod records;
pub mod runtime;
pub mod sandbox;
pub mod scheduler;
pub mod spec;
pub mod store;
pub mod task_host;
pub mod typed;
pub mod workflow;
pub mod yaml;
