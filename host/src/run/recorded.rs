//! A recorded run, by id, from any process that can read the store:
//! its state, its jobs, and its results once it ends.

use crate::store::records::{JobRow, OutputRow, RecordError, Records, RunRow};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A recorded run, by id: cheap to open from any process that can read the
/// store, whether or not the run is still going.
#[derive(Debug, Clone)]
pub struct Run {
    pub(super) id: String,
    pub(super) records: Arc<Records>,
}

/// How long [`Run::results`] waits for a run that has not ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Do not wait: an unfinished run is an error.
    No,
    /// Wait at most this long.
    Up(Duration),
    /// Wait until the run ends.
    Forever,
}

/// Why a run has no results to give.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The run is still going and the caller did not wait.
    #[error("run {0} is still running; wait for it with `cairn results {0} --wait`")]
    Running(String),
    /// The run did not end within the wait.
    #[error("run {id} is still running after waiting {waited:?}")]
    TimedOut {
        /// The run.
        id: String,
        /// How long we waited.
        waited: Duration,
    },
    /// Reading the records failed.
    #[error(transparent)]
    Records(#[from] RecordError),
}

impl Run {
    /// Opens the run whose id starts with `id_or_prefix` in the store at `store_dir`.
    pub fn open(store_dir: &Path, id_or_prefix: &str) -> Result<Run, RecordError> {
        let records = Arc::new(Records::open(store_dir)?);
        let id = records.resolve(id_or_prefix)?;
        Ok(Run { id, records })
    }

    /// The run's full id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The records it reads.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// The run's current state (a run whose process died is `interrupted`).
    pub fn status(&self) -> Result<RunRow, RecordError> {
        self.records.run(&self.id)
    }

    /// Its jobs in plan order.
    pub fn jobs(&self) -> Result<Vec<JobRow>, RecordError> {
        self.records.jobs(&self.id)
    }

    /// The labels its jobs set: (job, key, value), by job and key.
    pub fn labels(&self) -> Result<Vec<(i64, String, String)>, RecordError> {
        self.records.run_labels(&self.id)
    }

    /// Blocks until the run ends or `wait` runs out, polling the records.
    pub fn wait(&self, wait: Wait) -> Result<RunRow, ResultsError> {
        let started = Instant::now();
        loop {
            let row = self.status()?;
            if row.status.is_final() {
                return Ok(row);
            }
            match wait {
                Wait::No => return Err(ResultsError::Running(self.id.clone())),
                Wait::Up(limit) if started.elapsed() >= limit => {
                    return Err(ResultsError::TimedOut {
                        id: self.id.clone(),
                        waited: started.elapsed(),
                    });
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// The run's outputs once it has ended (waiting as asked), with its final state.
    pub fn results(&self, wait: Wait) -> Result<(RunRow, Vec<OutputRow>), ResultsError> {
        let row = self.wait(wait)?;
        Ok((row, self.records.outputs(&self.id)?))
    }
}
