//! The executor seam: what the scheduler hands an executor for one job,
//! and the trait every executor implements. The local sandbox, a remote
//! execution service, and a cache-filling layer in front of either are
//! all `Executor`s; the scheduler never asks which one it has.

use crate::run::outcome::Outcome;
use crate::store::action::ActionInputs;
use crate::store::digest::{ActionKey, Digest};
use crate::workflow::plan::JobId;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A component to run: where it is and what its bytes hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentRef {
    /// The component file (in the store's CAS once prepared).
    pub path: PathBuf,
    /// The digest of its bytes.
    pub digest: Digest,
}

/// Limits on one job's execution. The defaults are the CLI's documented ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecLimits {
    /// Linear memory per memory, in bytes.
    pub memory: u64,
    /// Wall-clock time.
    pub timeout: Duration,
    /// Fuel; `None` runs unmetered (and faster).
    pub fuel: Option<u64>,
    /// Total bytes of declared outputs.
    pub output: u64,
    /// Bytes of stdout and stderr kept as the log.
    pub log: u64,
}

impl Default for ExecLimits {
    fn default() -> Self {
        ExecLimits {
            memory: 2 << 30,
            timeout: Duration::from_secs(600),
            fuel: None,
            output: 1 << 30,
            log: 8 << 20,
        }
    }
}

/// Everything an executor needs to run one job.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// The job's id in the plan.
    pub id: JobId,
    /// The job's display name (`argv[0]` inside the sandbox).
    pub name: String,
    /// The component to run.
    pub component: ComponentRef,
    /// What the job runs on: argv, resolved inputs, declared outputs.
    pub action: ActionInputs,
    /// Limits for this execution.
    pub limits: ExecLimits,
    /// Fixed clocks and randomness seeded by the key.
    pub hermetic: bool,
    /// For a typed task, the export's signature (the call's arguments are in
    /// `action`); `None` for a command task.
    pub typed: Option<Arc<crate::workflow::typed::Signature>>,
    /// The secrets this job declared, with their values. Never recorded.
    pub secrets: BTreeMap<String, String>,
    /// The job's action key.
    pub key: ActionKey,
}

/// Runs one job. The wasm executor is the real one; tests may supply others.
pub trait Executor: Send + Sync + 'static {
    /// Executes the job and reports what happened; never panics on bad jobs.
    fn execute(&self, req: JobRequest) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>>;
}
