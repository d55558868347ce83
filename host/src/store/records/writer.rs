//! The batching writer: a run's planned jobs when it begins, then the
//! scheduler's events through a channel to one thread that commits
//! whatever has queued up in one transaction.

use super::{RecordError, Records, RunStatus, now_ms};
use crate::run::scheduler::{Event, EventSink, JobReport, JobStatus};
use crate::store::action::{ActionInputs, Value};
use crate::store::digest::Digest;
use crate::workflow::plan::Plan;
use rusqlite::params;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

impl Records {
    /// Records a new run and its planned jobs, and takes the run's liveness
    /// lock, held until the returned guard is dropped (or the process dies).
    /// An id already taken (two runs that started in the same millisecond
    /// drew the same two characters of noise) is replaced by a fresh one:
    /// the guard says which id the run got.
    pub fn begin_run(&self, run: &NewRun<'_>) -> Result<RunLock, RecordError> {
        let mut id = run.id.clone();
        for attempt in 0..16 {
            if attempt > 0 {
                id = super::new_run_id();
            }
            // Made anew, never opened: locking another run's lock file
            // would wait for that run to end.
            let path = self.locks.join(&id);
            let file = match File::options().write(true).create_new(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            };
            file.lock()?;
            let lock = RunLock {
                _file: file,
                path,
                id: id.clone(),
            };
            match self.insert_run(&id, run) {
                Ok(()) => return Ok(lock),
                // A finished run has the id (its lock file is gone).
                Err(RecordError::Db { source, .. }) if is_taken(&source) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(RecordError::Io(std::io::Error::other(
            "no free run id after 16 tries",
        )))
    }

    fn insert_run(&self, id: &str, run: &NewRun<'_>) -> Result<(), RecordError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        tx.execute(
            "INSERT INTO runs (id, workflow, workflow_path, workflow_digest, params, inputs, status, pid, started_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?8)",
            params![
                id,
                run.plan.name,
                run.workflow_path,
                run.workflow_digest.to_hex(),
                serde_json::to_string(&run.plan.params).expect("serialisable"),
                "{}",
                std::process::id(),
                now_ms()
            ],
        )
        .map_err(|e| self.db(e))?;
        {
            let mut insert = tx
                .prepare("INSERT INTO jobs (run_id, job, name, deps, status) VALUES (?1, ?2, ?3, ?4, 'pending')")
                .map_err(|e| self.db(e))?;
            for j in &run.plan.jobs {
                let deps = serde_json::to_string(&j.deps).expect("serialisable");
                insert
                    .execute(params![id, j.id as i64, j.name, deps])
                    .map_err(|e| self.db(e))?;
            }
        }
        tx.commit().map_err(|e| self.db(e))
    }

    /// Runs one statement of a batch, prepared once per connection.
    fn exec(
        &self,
        tx: &rusqlite::Transaction<'_>,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<usize, RecordError> {
        tx.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params))
            .map_err(|e| self.db(e))
    }

    /// Applies a batch of updates in one transaction.
    fn apply(&self, run_id: &str, batch: &[Update]) -> Result<(), RecordError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        // A job that ends within the batch gets its final row directly:
        // its `queued` and `running` states would be overwritten at once.
        // (Not when an attempt failed: that row needs its `running` one.)
        let mut ended = std::collections::HashSet::new();
        let mut retried = std::collections::HashSet::new();
        for u in batch {
            match u {
                Update::Done(job, ..) => ended.insert(*job),
                Update::AttemptFailed(job, ..) => retried.insert(*job),
                _ => false,
            };
        }
        let superseded = |job: &usize| ended.contains(job) && !retried.contains(job);
        for u in batch {
            match u {
                Update::Queued(job) | Update::Running(job, ..) if superseded(job) => {}
                Update::Queued(job) => {
                    self.exec(
                        &tx,
                        "UPDATE jobs SET status = 'queued' WHERE run_id = ?1 AND job = ?2",
                        params![run_id, *job as i64],
                    )?;
                }
                Update::Running(job, attempt, at) => {
                    self.exec(&tx,
                        "UPDATE jobs SET status = 'running', started_ms = COALESCE(started_ms, ?3) WHERE run_id = ?1 AND job = ?2",
                        params![run_id, *job as i64, at])?;
                    self.exec(&tx,
                        "INSERT OR REPLACE INTO attempts (run_id, job, attempt, status, started_ms) VALUES (?1, ?2, ?3, 'running', ?4)",
                        params![run_id, *job as i64, attempt, at])?;
                }
                Update::AttemptFailed(job, attempt, f, at) => {
                    self.exec(&tx,
                        "UPDATE attempts SET status = 'failed', ended_ms = ?4, failure_kind = ?5, failure = ?6
                         WHERE run_id = ?1 AND job = ?2 AND attempt = ?3",
                        params![run_id, *job as i64, attempt, at, f.kind.as_str(), f.message])?;
                }
                Update::Done(job, report, at) => {
                    self.record_done(&tx, run_id, *job, report, *at)?
                }
                Update::Inputs(inputs) => {
                    let json = serde_json::to_string(inputs).expect("serialisable");
                    self.exec(
                        &tx,
                        "UPDATE runs SET inputs = ?2 WHERE id = ?1",
                        params![run_id, json],
                    )?;
                }
                Update::End(status, error) => {
                    self.exec(
                        &tx,
                        "UPDATE runs SET status = ?2, ended_ms = ?3, error = ?4 WHERE id = ?1",
                        params![run_id, status.as_str(), now_ms(), error],
                    )?;
                    // Jobs that never got to run (the run ended early) are not pending forever.
                    self.exec(&tx,
                        "UPDATE jobs SET status = 'not run' WHERE run_id = ?1 AND status IN ('pending', 'queued', 'running')",
                        [run_id])?;
                }
            }
        }
        tx.commit().map_err(|e| self.db(e))
    }

    fn record_done(
        &self,
        tx: &rusqlite::Transaction<'_>,
        run_id: &str,
        job: usize,
        r: &JobReport,
        at: i64,
    ) -> Result<(), RecordError> {
        let exit_code = match &r.status {
            JobStatus::Failed(f) => f.exit_code,
            _ => None,
        };
        let (status, kind, message, logs): (&str, Option<&str>, Option<String>, Logs) =
            match &r.status {
                JobStatus::Executed => ("executed", None, None, manifest_logs(r)),
                JobStatus::Cached => ("cached", None, None, manifest_logs(r)),
                JobStatus::Failed(f) => (
                    "failed",
                    Some(f.kind.as_str()),
                    Some(f.message.clone()),
                    (f.stdout, f.stderr),
                ),
                JobStatus::Skipped(reason) => {
                    // By name, as `run` says it: the number is internal.
                    let why = reason.describe(&|up| {
                        tx.query_row(
                            "SELECT name FROM jobs WHERE run_id = ?1 AND job = ?2",
                            params![run_id, up as i64],
                            |row| row.get(0),
                        )
                        .unwrap_or_else(|_| format!("job {up}"))
                    });
                    ("skipped", None, Some(why), (None, None))
                }
            };
        let started = at - r.elapsed.as_millis() as i64;
        let key = r.key.map(|k| k.to_hex());
        if let (Some(key), Some(action)) = (&key, &r.action) {
            self.record_action(tx, key, action)?;
        }
        self.exec(tx,
            "UPDATE jobs SET status = ?3, cache_key = ?4, cached = ?5,
                 started_ms = COALESCE(started_ms, ?6), ended_ms = ?7, failure_kind = ?8, failure = ?9,
                 stdout = ?10, stderr = ?11, limits = ?12, exit_code = ?13
             WHERE run_id = ?1 AND job = ?2",
            params![
                run_id,
                job as i64,
                status,
                key,
                matches!(r.status, JobStatus::Cached),
                started,
                at,
                kind,
                message,
                logs.0.map(|d| d.to_hex()),
                logs.1.map(|d| d.to_hex()),
                r.limits.map(|l| serde_json::to_string(&l).expect("serialisable")),
                exit_code,
            ])?;
        if r.attempts > 0 {
            let peak = r.manifest.as_ref().map(|m| m.peak_memory as i64);
            let fuel = r.manifest.as_ref().and_then(|m| m.fuel).map(|f| f as i64);
            self.exec(tx,
                "INSERT INTO attempts (run_id, job, attempt, status, started_ms, ended_ms, failure_kind, failure, peak_memory, fuel)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (run_id, job, attempt) DO UPDATE SET status = ?4, ended_ms = ?6,
                     failure_kind = ?7, failure = ?8, peak_memory = ?9, fuel = ?10",
                params![run_id, job as i64, r.attempts, status, started, at, kind, message, peak, fuel])?;
        }
        if let Some(m) = &r.manifest {
            for (name, step, value) in &m.reported.metrics {
                self.exec(tx,
                    "INSERT INTO metrics (run_id, job, name, step, value) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![run_id, job as i64, name, step.map(|s| s as i64), value])?;
            }
            for (key, value) in &m.reported.labels {
                self.exec(
                    tx,
                    "INSERT INTO labels (run_id, job, key, value) VALUES (?1, ?2, ?3, ?4)",
                    params![run_id, job as i64, key, value],
                )?;
            }
        }
        for (name, value) in &r.outputs {
            self.exec(
                tx,
                "INSERT OR REPLACE INTO outputs (run_id, job, name, value) VALUES (?1, ?2, ?3, ?4)",
                params![
                    run_id,
                    job as i64,
                    name,
                    serde_json::to_string(value).expect("serialisable")
                ],
            )?;
        }
        Ok(())
    }

    /// Records what went into `key`, unless an earlier job already did. The
    /// key is a hash of exactly these inputs, so the first text stays true;
    /// looking first spares a rerun serialising them again for every job.
    fn record_action(
        &self,
        tx: &rusqlite::Transaction<'_>,
        key: &str,
        action: &ActionInputs,
    ) -> Result<(), RecordError> {
        let known = tx
            .prepare_cached("SELECT 1 FROM actions WHERE key = ?1")
            .and_then(|mut stmt| stmt.exists([key]))
            .map_err(|e| self.db(e))?;
        if !known {
            let json = serde_json::to_string(action).expect("serialisable");
            self.exec(
                tx,
                "INSERT OR IGNORE INTO actions (key, inputs) VALUES (?1, ?2)",
                params![key, json],
            )?;
        }
        Ok(())
    }
}

/// A job's stdout and stderr blobs.
type Logs = (Option<Digest>, Option<Digest>);

fn manifest_logs(r: &JobReport) -> Logs {
    r.manifest
        .as_ref()
        .map_or((None, None), |m| (Some(m.stdout), Some(m.stderr)))
}

/// What `begin_run` records about a new run.
#[derive(Debug)]
pub struct NewRun<'a> {
    /// Its id (see [`new_run_id`](super::new_run_id)).
    pub id: String,
    /// The plan it runs.
    pub plan: &'a Plan,
    /// The workflow file as given.
    pub workflow_path: String,
    /// blake3 of the workflow file's bytes.
    pub workflow_digest: Digest,
}

/// Holds a run's liveness lock; dropping it (or dying) releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
    id: String,
}

impl RunLock {
    /// The run's id (the one asked for, unless it was taken).
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A row with this primary key exists already.
fn is_taken(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    )
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

enum Update {
    Queued(usize),
    Running(usize, u32, i64),
    AttemptFailed(usize, u32, crate::run::outcome::Failure, i64),
    Done(usize, Arc<JobReport>, i64),
    Inputs(BTreeMap<String, Value>),
    End(RunStatus, Option<String>),
}

/// How long the records thread lets updates gather before it commits
/// them: the most a crash can lose, and the most a run's end waits.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(2);

/// An event sink that records a run: events go to a writer thread that
/// commits each batch that has queued up in one transaction.
pub struct Recorder {
    tx: Mutex<Option<mpsc::Sender<Update>>>,
    writer: Mutex<Option<JoinHandle<Result<(), RecordError>>>>,
}

impl Recorder {
    /// Starts recording run `run_id` into `records`.
    pub fn start(records: Arc<Records>, run_id: String) -> Recorder {
        let (tx, rx) = mpsc::channel::<Update>();
        let writer = std::thread::Builder::new()
            .name("cairn-records".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Let a scheduling step's events gather: one transaction
                    // for all of them, and senders that meet a sleeping
                    // writer need not wake it.
                    std::thread::sleep(BATCH_WINDOW);
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    records.apply(&run_id, &batch)?;
                }
                Ok(())
            })
            .expect("spawning the records thread");
        Recorder {
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Records the workflow inputs once they are in the store.
    pub fn inputs(&self, inputs: BTreeMap<String, Value>) {
        self.send(Update::Inputs(inputs));
    }

    /// Records the run's end (with a run-level error, if it never got to
    /// run its jobs) and waits until everything is written.
    pub fn finish(&self, status: RunStatus, error: Option<String>) -> Result<(), RecordError> {
        if let Some(tx) = self.tx.lock().unwrap().take() {
            let _ = tx.send(Update::End(status, error));
        }
        match self.writer.lock().unwrap().take() {
            Some(w) => w.join().expect("the records thread does not panic"),
            None => Ok(()),
        }
    }

    fn send(&self, u: Update) {
        if let Some(tx) = self.tx.lock().unwrap().as_ref() {
            // A dead writer thread reports its error from `finish`.
            let _ = tx.send(u);
        }
    }
}

impl EventSink for Recorder {
    fn event(&self, _plan: &Plan, event: &Event) {
        match event {
            Event::Queued(id) => self.send(Update::Queued(*id)),
            Event::Running(id, attempt) => self.send(Update::Running(*id, *attempt, now_ms())),
            Event::Retrying {
                job,
                attempt,
                failure,
                ..
            } => self.send(Update::AttemptFailed(
                *job,
                *attempt,
                failure.clone(),
                now_ms(),
            )),
            Event::Done(id, report) => self.send(Update::Done(*id, report.clone(), now_ms())),
        }
    }
}
