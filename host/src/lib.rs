//! Cairn runs workflows whose steps are sandboxed WebAssembly components.
//!
//! Data flows one way, one folder per stage:
//!
//! - `workflow`: a workflow file is parsed into a [`Workflow`], planned into
//!   a DAG of concrete jobs ([`Plan`]) and type-checked against its
//!   components. Pure, but for [`load`] reading the file.
//! - `run`: the scheduler runs a plan's jobs in dependency order through
//!   two seams, an [`Executor`] and an [`ActionCache`], and reports
//!   [`Event`]s; [`start`] wires the real ones and records the run.
//! - `sandbox`: the local executor, one fresh wasmtime store per job, the
//!   only place that grants a job files.
//! - `store`: blobs named by digest ([`Store`]), the action cache and the
//!   run [`Records`].
//! - `remote`: a REAPI server's action cache, CAS and Execution service
//!   stacked in front of the local store and executor, and `cairn worker`,
//!   a Remote Workers API bot.
//! - `build`: task source directories into components.
//! - `serve`: the read-only web view of a store's runs (`cairn serve`).
//! - `cli`: the `cairn` command, a thin layer over the rest.
//!
//! ```
//! let wf = cairn::parse(
//!     cairn::Source::new("wf.yaml", "jobs:\n  hello:\n    uses: hello.wasm\n    args: [world]\n"),
//!     "wf",
//! )
//! .unwrap();
//! let plan = cairn::plan(&wf, &Default::default()).unwrap();
//! assert_eq!(plan.jobs[0].argv, ["world"]);
//! ```
#![deny(missing_docs)]

mod build;
mod cli;
mod remote;
mod run;
mod sandbox;
mod serve;
mod store;
mod workflow;

pub use build::{BuildError, build_dir};
pub use cli::{EXIT_HOST, EXIT_JOB_FAILED, EXIT_OK, EXIT_RUNNING, EXIT_USAGE, main};
pub use remote::client::{RemoteError, RemoteSpec};
pub use remote::config::Target;
pub use run::executor::{ComponentRef, ExecLimits, Executor, JobRequest};
pub use run::outcome::{Failure, FailureKind, Outcome};
pub use run::recorded::{ResultsError, Run, Wait};
pub use run::scheduler::{
    Event, EventSink, JobReport, JobStatus, RunOptions, RunReport, SkipReason,
};
pub use run::session::{
    Connected, Error, NoEvents, Prepared, Started, execute, open, prepare, start,
};
pub use serve::{Bound, ServeError, State as ServeState, router};
pub use store::action::{ActionInputs, Manifest, Value};
pub use store::blobs::Store;
pub use store::cache::{ActionCache, LocalCache};
pub use store::digest::{ActionKey, Digest};
pub use store::records::{
    JobRow, NewRun, OutputRow, RecordError, Recorder, Records, RunLock, RunRow, RunStatus,
    new_run_id,
};
pub use workflow::diag::{Diagnostic, Diagnostics, Source, Span};
pub use workflow::load::{LoadError, Loaded, load};
pub use workflow::plan::{JobId, Overrides, Plan, plan};
pub use workflow::spec::{Workflow, parse};
