//! Run records: every run, job, attempt, output and log, in SQLite
//! (`runs.db` in the store, WAL mode), so that any process can look a run up
//! by id, follow it, and wait for its results.
//!
//! Writers are batched: the scheduler's events go through a channel to one
//! writer thread that commits whatever has queued up in one transaction.
//! Liveness is a lock file per running run (`locks/<id>`), held by the
//! running process and released by the kernel if it dies: a `running` run
//! whose lock can be taken is `interrupted`.
//!
//! `schema` owns the tables and their migrations, `queries` what readers
//! ask, `browse` what the web view asks, and `writer` the batching writer
//! that records a run as it goes.

mod browse;
mod queries;
mod schema;
mod writer;

pub use browse::{AttemptRow, JobState, Progress, StatusCounts};
pub use writer::{NewRun, Recorder, RunLock};

use crate::run::outcome::{self, FailureKind};
use crate::store::action::{ActionInputs, Value};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Errors reading or writing records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The database failed.
    #[error("run records ({path}): {source}{}", damaged_hint(source, path))]
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
    /// Read-only records were written by another version of cairn.
    #[error("run records ({path}) are at format {found}, and this cairn reads {wanted}{hint}")]
    Format {
        /// `runs.db`.
        path: PathBuf,
        /// The database's format (its migration count).
        found: i64,
        /// This cairn's.
        wanted: i64,
        /// What to do about it.
        hint: &'static str,
    },
}

/// What to do about a damaged database: the records are lost, the blobs
/// and the cache are not, and cairn starts a new database where none is.
fn damaged_hint(e: &rusqlite::Error, path: &Path) -> String {
    let damaged = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    );
    if damaged {
        format!(
            "\nthe run records are damaged; blobs and cached results are not. To start new records, \
             move the file aside: mv {0} {0}.damaged (and its -wal and -shm files)",
            path.display()
        )
    } else {
        String::new()
    }
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
    /// The failure's cause as a stable name (see [`FailureKind::as_str`]),
    /// for failed jobs.
    pub failure_kind: Option<String>,
    /// The failure message or skip reason.
    pub failure: Option<String>,
    /// The cause in a user's words: the first line of the failure, for
    /// failed jobs (`stack overflow`, `exit code 3`, `timeout after 2s`).
    pub cause: Option<String>,
    /// The code a failed job's program exited with, if it exited with one.
    pub exit_code: Option<i64>,
    /// Standard output's blob.
    pub stdout: Option<String>,
    /// Standard error's blob.
    pub stderr: Option<String>,
    /// What went into its key.
    #[serde(skip)]
    pub key_inputs: Option<ActionInputs>,
    /// The limits it ran under.
    #[serde(skip)]
    pub limits: Option<crate::run::executor::ExecLimits>,
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
    /// Opened by a reader that must change nothing (`cairn serve`): a dead
    /// run is shown as interrupted but not stored as such.
    read_only: bool,
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
            read_only: false,
        };
        records.migrate()?;
        Ok(records)
    }

    /// Opens an existing `runs.db` for reading only: nothing is created,
    /// migrated or updated, so a reader such as `cairn serve` leaves the
    /// store exactly as it found it. Records of another format are an error
    /// that says which command upgrades them.
    pub fn open_read_only(store_root: &Path) -> Result<Records, RecordError> {
        let path = store_root.join("runs.db");
        let db = |source| RecordError::Db {
            path: path.clone(),
            source,
        };
        if !path.is_file() {
            return Err(RecordError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no run records at {}", path.display()),
            )));
        }
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(db)?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        let wanted = schema::MIGRATIONS.len() as i64;
        if found != wanted {
            return Err(RecordError::Format {
                path,
                found,
                wanted,
                hint: if found < wanted {
                    "; any other cairn command on this store (such as `cairn runs`) upgrades them"
                } else {
                    "; they were written by a newer cairn"
                },
            });
        }
        Ok(Records {
            path,
            locks: store_root.join("locks"),
            conn: Mutex::new(conn),
            read_only: true,
        })
    }

    /// What SQLite's `quick_check` finds wrong with the database: nothing
    /// when it is sound. Reads every page, so it is for `store verify`.
    pub fn check(&self) -> Result<Vec<String>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare("PRAGMA quick_check").map_err(|e| self.db(e))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.db(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db(e))?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    fn db(&self, source: rusqlite::Error) -> RecordError {
        RecordError::Db {
            path: self.path.clone(),
            source,
        }
    }
}

/// The failure recorded for a job, if any, as [`Failure::describe`] gives
/// it: the cause first, detail on later lines.
pub fn failure_line(job: &JobRow) -> Option<String> {
    match (&job.failure_kind, &job.failure) {
        (Some(k), Some(m)) => Some(match FailureKind::parse(k) {
            Some(kind) => outcome::describe(kind, m),
            // A kind this cairn does not know (a newer one wrote it).
            None => format!("{}: {m}", k.replace('_', " ")),
        }),
        (None, Some(m)) => Some(m.clone()),
        _ => None,
    }
}

/// A failed job's cause in words, from what the records hold.
fn cause_of(kind: Option<&str>, failure: Option<&str>) -> Option<String> {
    let (kind, failure) = (kind?, failure?);
    Some(match FailureKind::parse(kind) {
        Some(k) => outcome::cause(k, failure),
        None => failure.lines().next().unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::schema::MIGRATIONS;
    use super::*;
    use crate::store::action::SandboxKey;
    use crate::store::digest::Digest;
    use rusqlite::params;

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

    #[test]
    fn a_run_id_that_is_taken_is_replaced_by_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::open(dir.path()).unwrap();
        let plan = crate::workflow::plan::Plan {
            name: "w".into(),
            params: BTreeMap::new(),
            inputs: Vec::new(),
            jobs: Vec::new(),
        };
        let run = |id: &str| NewRun {
            id: id.to_string(),
            plan: &plan,
            workflow_path: "w.yaml".into(),
            workflow_digest: Digest::of(b"w"),
        };
        // Running: its lock is held. Finished: its lock file is gone.
        let running = records.begin_run(&run("02nwaaaaaaa")).unwrap();
        let finished = records.begin_run(&run("02nwbbbbbbb")).unwrap();
        drop(finished);
        let a = records.begin_run(&run("02nwaaaaaaa")).unwrap();
        let b = records.begin_run(&run("02nwbbbbbbb")).unwrap();
        for (lock, taken) in [(&a, "02nwaaaaaaa"), (&b, "02nwbbbbbbb")] {
            assert_ne!(lock.id(), taken);
            assert_eq!(lock.id().len(), taken.len());
            assert_eq!(records.run(lock.id()).unwrap().status, RunStatus::Running);
        }
        assert_eq!(
            records.run(running.id()).unwrap().status,
            RunStatus::Running
        );
    }
}
