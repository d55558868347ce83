//! The tables of `runs.db` and their migrations.

use super::{RecordError, Records};

/// Schema migrations, applied in order; `PRAGMA user_version` counts them.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 5: the code a failed job's program exited with (its cause is the
    // failure kind, its words the failure's first line).
    "ALTER TABLE jobs ADD COLUMN exit_code INTEGER;",
    // 6: `cairn runs --label KEY=VALUE` finds runs by a label. Few jobs set
    // labels, so the index costs little where migration 3's did.
    "CREATE INDEX labels_by_key ON labels (key, value);",
];

impl Records {
    pub(super) fn migrate(&self) -> Result<(), RecordError> {
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
}
