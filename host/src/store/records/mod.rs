//! Run records: every run, job, attempt, output and log, in SQLite
//! (`runs.db` in the store, WAL mode), so that any process can look a run up
//! by id, follow it, and wait for its results.
//!
//! Writers are batched: the scheduler's events go through a channel to one
//! writer thread that commits whatever has queued up in one transaction.
//! Liveness is a lock file per running run (`locks/<id>`), held by the
//! running process and released by the kernel if it dies: a `running` run
//! whose lock can be taken is `interrupted`.

use crate::cache::{ActionInputs, Value};
use crate::digest::{ActionKey, Digest};
use crate::plan::Plan;
use crate::scheduler::{Event, EventSink, JobReport, JobStatus, SkipReason};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Schema migrations, applied in order; `PRAGMA user_version` counts them.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        workflow_path TEXT NOT NULL,
        workflow_digest TEXT NOT NULL,
        params TEXT NOT NULL,
        inputs TEXT NOT NULL,
        status TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER,
        error TEXT
    );
    CREATE INDEX runs_by_workflow ON runs (workflow, started_ms);
    CREATE TABLE jobs (
        run_id TEXT NOT NULL REFERENCES runs (id),
        job INTEGER NOT NULL,
        name TEXT NOT NULL,
        deps TEXT NOT NULL,
        status TEXT NOT NULL,
        cache_key TEXT,
        key_inputs TEXT,
        cached INTEGER NOT NULL DEFAULT 0,
        started_ms INTEGER,
        ended_ms INTEGER,
        failure_kind TEXT,
        failure TEXT,
        stdout TEXT,
        stderr TEXT,
        PRIMARY KEY (run_id, job)
    );
    CREATE INDEX jobs_by_name ON jobs (name, run_id);
    CREATE TABLE attempts (
        run_id TEXT NOT NULL,
        job INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER,
        failure_kind TEXT,
        failure TEXT,
        fuel INTEGER,
        peak_memory INTEGER,
        PRIMARY KEY (run_id, job, attempt)
    );
    CREATE TABLE outputs (
        run_id TEXT NOT NULL,
        job INTEGER NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, job, name)
    );
    CREATE TABLE metrics (
        run_id TEXT NOT NULL,
        job INTEGER NOT NULL,
        name TEXT NOT NULL,
        step INTEGER,
        value REAL NOT NULL
    );
    CREATE TABLE labels (
        run_id TEXT NOT NULL,
        job INTEGER NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL
    );
",
    // 2: the limits each job ran under, so `cairn verify` can re-run it alike.
    "ALTER TABLE jobs ADD COLUMN limits TEXT;",
    // 3: no index of jobs by name. Every run inserts a row per job into it,
    // at a place spread across all earlier runs' rows: with a few 10,000-job
    // runs recorded, that made `begin_run` 3–4× slower. Its one reader,
    // `previous_job` (for `cairn why`), finds the run first and then scans
    // that run's jobs, which is fast enough for a command people type.
    "DROP INDEX IF EXISTS jobs_by_name;",
    // 4: what went into each action key, once per key. Every run wrote it
    // into each job's row as JSON, although the key names it exactly: a
    // rerun wrote the same text again for every job (a quarter of the
    // database's growth per no-op job of the benchmark).
    // `jobs.key_inputs` stays, no longer written: dropping it rewrites every
    // job row (40 s and a 2.3 GB log on a 3.1 GB database of 3.8 M jobs,
    // against 7 s for this copy). Old rows' copies go with their runs.
    "
    CREATE TABLE actions (key TEXT PRIMARY KEY, inputs TEXT NOT NULL) WITHOUT ROWID;
    INSERT OR IGNORE INTO actions (key, inputs)
        SELECT cache_key, key_inputs FROM jobs
        WHERE cache_key IS NOT NULL AND key_inputs IS NOT NULL;
",
];

/// Errors reading or writing records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The database failed.
    #[error("run records ({path}): {source}")]
    Db {
        /// `runs.db`.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// No run has this id or prefix.
    #[error("no run `{0}` in this store (see `cairn runs`)")]
    NoSuchRun(String),
    /// The prefix matches more than one run.
    #[error("`{prefix}` matches {count} runs; type more of the id")]
    Ambiguous {
        /// What was typed.
        prefix: String,
        /// How many runs it matches.
        count: usize,
    },
    /// The run has no job of this name.
    #[error("run {run} has no job `{job}`")]
    NoSuchJob {
        /// The run.
        run: String,
        /// The job.
        job: String,
    },
    /// A filesystem error (lock files).
    #[error("run records: {0}")]
    Io(#[from] std::io::Error),
}

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Its process is working on it.
    Running,
    /// Every job succeeded.
    Succeeded,
    /// A job failed.
    Failed,
    /// Its process died before it ended.
    Interrupted,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "interrupted" => RunStatus::Interrupted,
            _ => RunStatus::Running,
        }
    }

    /// True once the run can change no more.
    pub fn is_final(self) -> bool {
        self != RunStatus::Running
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// The run id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow file as given.
    pub workflow_path: String,
    /// blake3 of the workflow file.
    pub workflow_digest: String,
    /// Parameters as used (after overrides).
    pub params: BTreeMap<String, String>,
    /// Input digests by name.
    pub inputs: BTreeMap<String, Value>,
    /// The run's state.
    pub status: RunStatus,
    /// Start, Unix milliseconds.
    pub started_ms: i64,
    /// End, Unix milliseconds.
    pub ended_ms: Option<i64>,
    /// Why the run ended before running its jobs (a failed build), if it did.
    pub error: Option<String>,
}

/// One job of a run as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    /// The job's id within the run's plan.
    pub job: i64,
    /// Its display name.
    pub name: String,
    /// Ids of the jobs it waits for.
    pub deps: Vec<i64>,
    /// `pending`, `queued`, `running`, `executed`, `cached`, `failed`, `skipped`.
    pub status: String,
    /// Its action key, once known.
    pub cache_key: Option<String>,
    /// Start and end, Unix milliseconds.
    pub started_ms: Option<i64>,
    /// End.
    pub ended_ms: Option<i64>,
    /// The failure class, for failed jobs.
    pub failure_kind: Option<String>,
    /// The failure message or skip reason.
    pub failure: Option<String>,
    /// Standard output's blob.
    pub stdout: Option<String>,
    /// Standard error's blob.
    pub stderr: Option<String>,
    /// What went into its key.
    #[serde(skip)]
    pub key_inputs: Option<ActionInputs>,
    /// The limits it ran under.
    #[serde(skip)]
    pub limits: Option<crate::runtime::ExecLimits>,
    /// Executions attempted (0 when cached or skipped).
    pub attempts: i64,
}

/// A recorded metric.
#[derive(Debug, Clone, Serialize)]
pub struct MetricRow {
    /// The job that reported it.
    pub job: String,
    /// The metric's name.
    pub name: String,
    /// Its step, if given.
    pub step: Option<i64>,
    /// Its value.
    pub value: f64,
}

/// A recorded output.
#[derive(Debug, Clone, Serialize)]
pub struct OutputRow {
    /// The producing job's name.
    pub job: String,
    /// The output's name.
    pub name: String,
    /// Its value.
    pub value: Value,
}

/// The SQLite run database of one store.
pub struct Records {
    path: PathBuf,
    locks: PathBuf,
    conn: Mutex<Connection>,
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records").field("path", &self.path).finish()
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}

/// A new, time-ordered run id: milliseconds since 2024 in base 32 (9
/// characters, so ids sort by start time) and 2 random characters.
pub fn new_run_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let ms = (now.as_millis() as u64).saturating_sub(1_704_067_200_000);
    let noise = blake3::hash(
        format!(
            "{now:?}{}{:?}",
            std::process::id(),
            std::thread::current().id()
        )
        .as_bytes(),
    );
    let mut id = String::with_capacity(11);
    for i in (0..9).rev() {
        id.push(ALPHABET[((ms >> (5 * i)) & 31) as usize] as char);
    }
    for b in &noise.as_bytes()[..2] {
        id.push(ALPHABET[(b & 31) as usize] as char);
    }
    id
}

impl Records {
    /// Opens (creating and migrating) `runs.db` in the store directory.
    pub fn open(store_root: &Path) -> Result<Records, RecordError> {
        let path = store_root.join("runs.db");
        let locks = store_root.join("locks");
        fs::create_dir_all(&locks)?;
        // Switching a new database to WAL needs it to itself, and SQLite
        // reports "locked" there without waiting: retry, with backoff, while
        // another process is creating or migrating the same database.
        let mut delay = Duration::from_millis(5);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match Self::try_open(&path, &locks) {
                Err(RecordError::Db { source, .. })
                    if is_busy(&source) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    fn try_open(path: &Path, locks: &Path) -> Result<Records, RecordError> {
        let db = |source| RecordError::Db {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        // Many processes share one store: wait for each other's writes
        // rather than surface "database is locked".
        conn.busy_timeout(Duration::from_secs(60)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        // The last connection to close would copy the whole log into the
        // database and fsync it: 7–10 ms at the end of a 10,000-job run,
        // and paid by every short command. Commits already checkpoint every 1,000
        // pages, and the next opener reads the log as it is.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(db)?;
        let records = Records {
            path: path.to_path_buf(),
            locks: locks.to_path_buf(),
            conn: Mutex::new(conn),
        };
        records.migrate()?;
        Ok(records)
    }

    fn db(&self, source: rusqlite::Error) -> RecordError {
        RecordError::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&self) -> Result<(), RecordError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.db(e))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(m).map_err(|e| self.db(e))?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(|e| self.db(e))?;
        }
        tx.commit().map_err(|e| self.db(e))
    }

    /// Records a new run and its planned jobs, and takes the run's liveness
    /// lock, held until the returned guard is dropped (or the process dies).
    pub fn begin_run(&self, run: &NewRun<'_>) -> Result<RunLock, RecordError> {
        let lock = File::create(self.locks.join(&run.id))?;
        lock.lock()?;
        let mut conn = self.conn.lock().unwrap();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        tx.execute(
            "INSERT INTO runs (id, workflow, workflow_path, workflow_digest, params, inputs, status, pid, started_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?8)",
            params![
                run.id,
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
                    .execute(params![run.id, j.id as i64, j.name, deps])
                    .map_err(|e| self.db(e))?;
            }
        }
        tx.commit().map_err(|e| self.db(e))?;
        Ok(RunLock {
            _file: lock,
            path: self.locks.join(&run.id),
        })
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
        let (status, kind, message, logs): (&str, Option<&str>, Option<String>, Logs) = match &r
            .status
        {
            JobStatus::Executed => ("executed", None, None, manifest_logs(r)),
            JobStatus::Cached => ("cached", None, None, manifest_logs(r)),
            JobStatus::Failed(f) => (
                "failed",
                Some(f.kind.as_str()),
                Some(f.message.clone()),
                (f.stdout, f.stderr),
            ),
            JobStatus::Skipped(reason) => {
                let why = match reason {
                    SkipReason::Upstream(up) => format!("needs job {up}, which did not succeed"),
                    SkipReason::RunStopped => "the run stopped after a failure".to_string(),
                    SkipReason::Condition => {
                        "condition: its `if:`, or that of a job it needs, was false".to_string()
                    }
                };
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
                 stdout = ?10, stderr = ?11, limits = ?12
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

    /// Finds the one run whose id starts with `prefix`.
    pub fn resolve(&self, prefix: &str) -> Result<String, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare("SELECT id FROM runs WHERE id >= ?1 AND id < ?1 || '~' ORDER BY id LIMIT 2")
            .map_err(|e| self.db(e))?;
        let ids: Vec<String> = stmt
            .query_map([prefix], |r| r.get(0))
            .map_err(|e| self.db(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db(e))?;
        match ids.len() {
            0 => Err(RecordError::NoSuchRun(prefix.to_string())),
            1 => Ok(ids[0].clone()),
            _ => {
                let count: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM runs WHERE id >= ?1 AND id < ?1 || '~'",
                        [prefix],
                        |r| r.get(0),
                    )
                    .map_err(|e| self.db(e))?;
                Err(RecordError::Ambiguous {
                    prefix: prefix.to_string(),
                    count: count as usize,
                })
            }
        }
    }

    /// A run, with a dead process's run shown (and stored) as interrupted.
    pub fn run(&self, id: &str) -> Result<RunRow, RecordError> {
        let row = {
            let conn = self.conn.lock().unwrap();
            conn.query_row(&format!("{RUN_COLUMNS} WHERE id = ?1"), [id], run_row)
                .optional()
                .map_err(|e| self.db(e))?
        };
        let row = row.ok_or_else(|| RecordError::NoSuchRun(id.to_string()))?;
        self.check_alive(row)
    }

    /// Recent runs, newest first, optionally filtered.
    pub fn runs(
        &self,
        workflow: Option<&str>,
        status: Option<RunStatus>,
        limit: usize,
    ) -> Result<Vec<RunRow>, RecordError> {
        let rows: Vec<RunRow> = {
            let conn = self.conn.lock().unwrap();
            let mut stmt = conn
                .prepare(&format!(
                    "{RUN_COLUMNS} WHERE (?1 IS NULL OR workflow = ?1) ORDER BY started_ms DESC, id DESC"
                ))
                .map_err(|e| self.db(e))?;
            stmt.query_map([workflow], run_row)
                .map_err(|e| self.db(e))?
                .collect::<Result<_, _>>()
                .map_err(|e| self.db(e))?
        };
        let mut out = Vec::new();
        for row in rows {
            let row = self.check_alive(row)?;
            if status.is_none_or(|s| s == row.status) {
                out.push(row);
            }
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// A running run whose lock is free belongs to a dead process.
    fn check_alive(&self, mut row: RunRow) -> Result<RunRow, RecordError> {
        if row.status != RunStatus::Running {
            return Ok(row);
        }
        let path = self.locks.join(&row.id);
        let alive = match File::open(&path) {
            Ok(f) => match f.try_lock() {
                Ok(()) => false,
                Err(fs::TryLockError::WouldBlock) => true,
                Err(fs::TryLockError::Error(e)) => return Err(e.into()),
            },
            Err(_) => false,
        };
        if !alive {
            // Only a run still `running` becomes interrupted: the process may
            // have finished it between our read and now.
            let conn = self.conn.lock().unwrap();
            conn.execute(
                "UPDATE runs SET status = 'interrupted', ended_ms = COALESCE(ended_ms, ?2) WHERE id = ?1 AND status = 'running'",
                params![row.id, now_ms()],
            )
            .map_err(|e| self.db(e))?;
            conn.execute(
                "UPDATE jobs SET status = 'interrupted' WHERE run_id = ?1 AND status IN ('pending', 'queued', 'running')",
                [&row.id],
            )
            .map_err(|e| self.db(e))?;
            let status: String = conn
                .query_row("SELECT status FROM runs WHERE id = ?1", [&row.id], |r| {
                    r.get(0)
                })
                .map_err(|e| self.db(e))?;
            row.status = RunStatus::parse(&status);
            if row.status.is_final() && row.ended_ms.is_none() {
                row.ended_ms = Some(now_ms());
            }
            let _ = fs::remove_file(&path);
        }
        Ok(row)
    }

    /// A run's jobs, in plan (dependency) order.
    pub fn jobs(&self, run_id: &str) -> Result<Vec<JobRow>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare(&format!("{JOB_COLUMNS} WHERE run_id = ?1 ORDER BY job"))
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([run_id], job_row)
            .map_err(|e| self.db(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db(e))?;
        Ok(rows)
    }

    /// The same job (by name) in the most recent earlier run of the same
    /// workflow that recorded its key.
    pub fn previous_job(
        &self,
        run: &RunRow,
        job: &str,
    ) -> Result<Option<(String, JobRow)>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let found = conn
            .query_row(
                &format!(
                    "SELECT runs.id, {JOB_FIELDS} FROM jobs JOIN runs ON runs.id = jobs.run_id
                     WHERE runs.workflow = ?1 AND (runs.started_ms, runs.id) < (?4, ?2)
                       AND jobs.name = ?3
                       AND EXISTS (SELECT 1 FROM actions WHERE actions.key = jobs.cache_key)
                     ORDER BY runs.started_ms DESC, runs.id DESC LIMIT 1"
                ),
                params![run.workflow, run.id, job, run.started_ms],
                |r| Ok((r.get::<_, String>(0)?, job_row_at(r, 1)?)),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        Ok(found)
    }

    /// A run's outputs, by job (plan order) and name.
    pub fn outputs(&self, run_id: &str) -> Result<Vec<OutputRow>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT jobs.name, outputs.name, outputs.value FROM outputs
                 JOIN jobs ON jobs.run_id = outputs.run_id AND jobs.job = outputs.job
                 WHERE outputs.run_id = ?1 ORDER BY outputs.job, outputs.name",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([run_id], |r| {
                let value: String = r.get(2)?;
                Ok(OutputRow {
                    job: r.get(0)?,
                    name: r.get(1)?,
                    value: serde_json::from_str(&value).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            2,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?,
                })
            })
            .map_err(|e| self.db(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db(e))?;
        Ok(rows)
    }

    /// Every blob and action key a run refers to: its inputs, its jobs'
    /// components, inputs, outputs and logs, and its jobs' cache entries.
    pub fn references(&self, run_id: &str) -> Result<(Vec<Digest>, Vec<ActionKey>), RecordError> {
        let run = self.run(run_id)?;
        let mut blobs: Vec<Digest> = run.inputs.values().flat_map(Value::digests).collect();
        let mut keys = Vec::new();
        for j in self.jobs(run_id)? {
            if let Some(a) = &j.key_inputs {
                blobs.push(a.component);
                blobs.extend(a.inputs.values().flat_map(Value::digests));
            }
            for d in [&j.stdout, &j.stderr].into_iter().flatten() {
                blobs.extend(d.parse::<Digest>().ok());
            }
            keys.extend(
                j.cache_key
                    .as_deref()
                    .and_then(|k| k.parse::<ActionKey>().ok()),
            );
        }
        for o in self.outputs(run_id)? {
            blobs.extend(o.value.digests());
        }
        Ok((blobs, keys))
    }

    /// Deletes runs and everything recorded about them.
    pub fn delete_runs(&self, ids: &[String]) -> Result<(), RecordError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        for id in ids {
            for table in ["labels", "metrics", "outputs", "attempts", "jobs"] {
                tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [id])
                    .map_err(|e| self.db(e))?;
            }
            tx.execute(
                "DELETE FROM runs WHERE id = ?1 AND status != 'running'",
                [id],
            )
            .map_err(|e| self.db(e))?;
        }
        // Action inputs no remaining job names. (A scan of every job, which
        // is fine for a command that deletes runs.)
        tx.execute(
            "DELETE FROM actions WHERE key NOT IN
                 (SELECT cache_key FROM jobs WHERE cache_key IS NOT NULL)",
            [],
        )
        .map_err(|e| self.db(e))?;
        tx.commit().map_err(|e| self.db(e))
    }

    /// A run's metrics, by job (plan order), name and step.
    pub fn metrics(&self, run_id: &str) -> Result<Vec<MetricRow>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT jobs.name, metrics.name, metrics.step, metrics.value FROM metrics
                 JOIN jobs ON jobs.run_id = metrics.run_id AND jobs.job = metrics.job
                 WHERE metrics.run_id = ?1 ORDER BY metrics.job, metrics.name, metrics.step",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok(MetricRow {
                    job: r.get(0)?,
                    name: r.get(1)?,
                    step: r.get(2)?,
                    value: r.get(3)?,
                })
            })
            .map_err(|e| self.db(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db(e))?;
        Ok(rows)
    }
}

const RUN_COLUMNS: &str = "SELECT id, workflow, workflow_path, workflow_digest, params, inputs, status, started_ms, ended_ms, error FROM runs";
/// A job row's columns, shared by every query that builds a [`JobRow`]
/// (see `job_row_at`). What went into its key is found by the key.
macro_rules! job_fields {
    () => {
        "jobs.job, jobs.name, jobs.deps, jobs.status, jobs.cache_key, jobs.started_ms, jobs.ended_ms,
         jobs.failure_kind, jobs.failure, jobs.stdout, jobs.stderr,
         (SELECT inputs FROM actions WHERE actions.key = jobs.cache_key), jobs.limits,
         (SELECT count(*) FROM attempts a WHERE a.run_id = jobs.run_id AND a.job = jobs.job)"
    };
}
const JOB_FIELDS: &str = job_fields!();
const JOB_COLUMNS: &str = concat!("SELECT ", job_fields!(), " FROM jobs");

fn json<T: serde::de::DeserializeOwned>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        workflow: r.get(1)?,
        workflow_path: r.get(2)?,
        workflow_digest: r.get(3)?,
        params: json(r, 4)?,
        inputs: json(r, 5)?,
        status: RunStatus::parse(&r.get::<_, String>(6)?),
        started_ms: r.get(7)?,
        ended_ms: r.get(8)?,
        error: r.get(9)?,
    })
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    job_row_at(r, 0)
}

fn job_row_at(r: &rusqlite::Row<'_>, o: usize) -> rusqlite::Result<JobRow> {
    let key_inputs: Option<String> = r.get(o + 11)?;
    Ok(JobRow {
        job: r.get(o)?,
        name: r.get(o + 1)?,
        deps: json(r, o + 2)?,
        status: r.get(o + 3)?,
        cache_key: r.get(o + 4)?,
        started_ms: r.get(o + 5)?,
        ended_ms: r.get(o + 6)?,
        failure_kind: r.get(o + 7)?,
        failure: r.get(o + 8)?,
        stdout: r.get(o + 9)?,
        stderr: r.get(o + 10)?,
        key_inputs: key_inputs.and_then(|k| serde_json::from_str(&k).ok()),
        limits: r
            .get::<_, Option<String>>(o + 12)?
            .and_then(|l| serde_json::from_str(&l).ok()),
        attempts: r.get(o + 13)?,
    })
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
    /// Its id (see [`new_run_id`]).
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
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

enum Update {
    Queued(usize),
    Running(usize, u32, i64),
    AttemptFailed(usize, u32, crate::outcome::Failure, i64),
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

/// The failure recorded for a job, if any, as a [`Failure`]-like line.
pub fn failure_line(job: &JobRow) -> Option<String> {
    match (&job.failure_kind, &job.failure) {
        (Some(k), Some(m)) => Some(format!("{}: {m}", k.replace('_', " "))),
        (None, Some(m)) => Some(m.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::SandboxKey;

    fn action(arg: &str) -> ActionInputs {
        ActionInputs {
            component: Digest::of(b"component"),
            argv: vec![arg.to_string()],
            inputs: BTreeMap::new(),
            outputs: vec!["out".to_string()],
            stdout: None,
            sandbox: SandboxKey::default().profile,
            call: None,
            args: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    /// A finished run of workflow `w`.
    fn insert_run(conn: &Connection, id: &str, started_ms: i64) {
        conn.execute(
            "INSERT INTO runs (id, workflow, workflow_path, workflow_digest, params, inputs, status, pid, started_ms)
             VALUES (?1, 'w', 'w.yaml', 'd', '{}', '{}', 'succeeded', 1, ?2)",
            params![id, started_ms],
        )
        .unwrap();
    }

    /// A database as version 3 left it, with one run of two jobs that
    /// recorded their key inputs in their own rows.
    fn version_3(root: &Path, a: &ActionInputs, b: &ActionInputs) {
        let conn = rusqlite::Connection::open(root.join("runs.db")).unwrap();
        for m in &MIGRATIONS[..3] {
            conn.execute_batch(m).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        insert_run(&conn, "r1", 1);
        for (job, action) in [a, b].into_iter().enumerate() {
            conn.execute(
                "INSERT INTO jobs (run_id, job, name, deps, status, cache_key, key_inputs)
                 VALUES ('r1', ?1, ?2, '[]', 'executed', ?3, ?4)",
                params![
                    job as i64,
                    format!("j{job}"),
                    action.key().to_hex(),
                    serde_json::to_string(action).unwrap()
                ],
            )
            .unwrap();
        }
    }

    #[test]
    fn key_inputs_move_into_their_own_table_once_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (action("a"), action("b"));
        version_3(dir.path(), &a, &b);

        let records = Records::open(dir.path()).unwrap();
        let jobs = records.jobs("r1").unwrap();
        let keys: Vec<_> = jobs
            .iter()
            .map(|j| j.key_inputs.as_ref().map(ActionInputs::key))
            .collect();
        assert_eq!(keys, [Some(a.key()), Some(b.key())]);
        let conn = records.conn.lock().unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let actions: i64 = conn
            .query_row("SELECT count(*) FROM actions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(actions, 2, "one row per key");
    }

    #[test]
    fn deleting_runs_deletes_the_key_inputs_only_they_named() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (action("a"), action("b"));
        version_3(dir.path(), &a, &b);
        let records = Records::open(dir.path()).unwrap();
        {
            // A second run shares `a`'s key.
            let conn = records.conn.lock().unwrap();
            insert_run(&conn, "r2", 2);
            conn.execute(
                "INSERT INTO jobs (run_id, job, name, deps, status, cache_key)
                 VALUES ('r2', 0, 'j0', '[]', 'cached', ?1)",
                [a.key().to_hex()],
            )
            .unwrap();
        }

        records.delete_runs(&["r1".to_string()]).unwrap();
        let kept: Vec<String> = {
            let conn = records.conn.lock().unwrap();
            let mut stmt = conn.prepare("SELECT key FROM actions").unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(kept, [a.key().to_hex()]);
        let jobs = records.jobs("r2").unwrap();
        assert_eq!(
            jobs[0].key_inputs.as_ref().map(ActionInputs::key),
            Some(a.key())
        );
    }
}
