//! What the web view (`cairn serve`) asks of the records, beyond what the
//! query commands ask: light job states for drawing and following a run of
//! many jobs, counts by state for the runs list, and one job's details
//! (attempts, labels, metrics, outputs) without reading the whole run.

use super::queries::{JOB_COLUMNS, job_row, json};
use super::{JobRow, MetricRow, OutputRow, RecordError, Records};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::collections::HashMap;

/// A job's place and state, without what went into its key: what drawing
/// and following a run needs, cheap to read for 10,000 jobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobState {
    /// The job's id within the run's plan.
    pub job: i64,
    /// Its display name.
    pub name: String,
    /// Ids of the jobs it waits for.
    pub deps: Vec<i64>,
    /// As in [`JobRow::status`].
    pub status: String,
    /// Start, Unix milliseconds.
    pub started_ms: Option<i64>,
    /// End, Unix milliseconds.
    pub ended_ms: Option<i64>,
}

/// How many of a run's jobs are in each final state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// Jobs that ran.
    pub executed: u64,
    /// Jobs answered from the cache.
    pub cached: u64,
    /// Jobs that failed.
    pub failed: u64,
    /// Jobs skipped (a condition, or a failed dependency).
    pub skipped: u64,
    /// Jobs in any other state: pending, queued, running, not run.
    pub other: u64,
}

impl StatusCounts {
    /// Counts one job in `status`.
    pub fn add(&mut self, status: &str, n: u64) {
        let slot = match status {
            "executed" => &mut self.executed,
            "cached" => &mut self.cached,
            "failed" => &mut self.failed,
            "skipped" => &mut self.skipped,
            _ => &mut self.other,
        };
        *slot += n;
    }

    /// All the jobs counted.
    pub fn total(&self) -> u64 {
        self.executed + self.cached + self.failed + self.skipped + self.other
    }
}

/// A job's state and times: (id, status, started, ended), Unix milliseconds.
pub type Progress = (i64, String, Option<i64>, Option<i64>);

/// One attempt at executing a job.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    /// 1 for the first.
    pub attempt: i64,
    /// `running`, `executed` or `failed`.
    pub status: String,
    /// Start, Unix milliseconds.
    pub started_ms: i64,
    /// End, Unix milliseconds.
    pub ended_ms: Option<i64>,
    /// The failure class, for a failed attempt.
    pub failure_kind: Option<String>,
    /// The failure message.
    pub failure: Option<String>,
    /// Fuel consumed, when metered.
    pub fuel: Option<i64>,
    /// The largest linear memory, in bytes.
    pub peak_memory: Option<i64>,
}

impl Records {
    /// Every job of a run, light: ids, names, dependencies and states.
    pub fn job_states(&self, run_id: &str) -> Result<Vec<JobState>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached(
                "SELECT job, name, deps, status, started_ms, ended_ms FROM jobs
                 WHERE run_id = ?1 ORDER BY job",
            )
            .map_err(|e| self.db(e))?;
        stmt.query_map([run_id], |r| {
            Ok(JobState {
                job: r.get(0)?,
                name: r.get(1)?,
                deps: json(r, 2)?,
                status: r.get(3)?,
                started_ms: r.get(4)?,
                ended_ms: r.get(5)?,
            })
        })
        .map_err(|e| self.db(e))?
        .collect::<Result<_, _>>()
        .map_err(|e| self.db(e))
    }

    /// Every job's state and times, without names or dependencies: what
    /// following a running run reads again and again.
    pub fn job_progress(&self, run_id: &str) -> Result<Vec<Progress>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached(
                "SELECT job, status, started_ms, ended_ms FROM jobs WHERE run_id = ?1 ORDER BY job",
            )
            .map_err(|e| self.db(e))?;
        stmt.query_map([run_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(|e| self.db(e))?
        .collect::<Result<_, _>>()
        .map_err(|e| self.db(e))
    }

    /// Counts of each run's jobs by state.
    pub fn status_counts(&self, run_id: &str) -> Result<StatusCounts, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT status, count(*) FROM jobs WHERE run_id = ?1 GROUP BY status")
            .map_err(|e| self.db(e))?;
        let mut counts = StatusCounts::default();
        let rows = stmt
            .query_map([run_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| self.db(e))?;
        for row in rows {
            let (status, n) = row.map_err(|e| self.db(e))?;
            counts.add(&status, n as u64);
        }
        Ok(counts)
    }

    /// The names of the workflows that have runs, in name order.
    pub fn workflows(&self) -> Result<Vec<String>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT DISTINCT workflow FROM runs ORDER BY workflow")
            .map_err(|e| self.db(e))?;
        stmt.query_map([], |r| r.get(0))
            .map_err(|e| self.db(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db(e))
    }

    /// One job of a run, by name, with what went into its key.
    pub fn job_named(&self, run_id: &str, name: &str) -> Result<Option<JobRow>, RecordError> {
        let conn = self.conn.lock().unwrap();
        conn.query_row(
            &format!("{JOB_COLUMNS} WHERE run_id = ?1 AND name = ?2"),
            params![run_id, name],
            job_row,
        )
        .optional()
        .map_err(|e| self.db(e))
    }

    /// A job's attempts, first to last.
    pub fn attempts(&self, run_id: &str, job: i64) -> Result<Vec<AttemptRow>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached(
                "SELECT attempt, status, started_ms, ended_ms, failure_kind, failure, fuel, peak_memory
                 FROM attempts WHERE run_id = ?1 AND job = ?2 ORDER BY attempt",
            )
            .map_err(|e| self.db(e))?;
        stmt.query_map(params![run_id, job], |r| {
            Ok(AttemptRow {
                attempt: r.get(0)?,
                status: r.get(1)?,
                started_ms: r.get(2)?,
                ended_ms: r.get(3)?,
                failure_kind: r.get(4)?,
                failure: r.get(5)?,
                fuel: r.get(6)?,
                peak_memory: r.get(7)?,
            })
        })
        .map_err(|e| self.db(e))?
        .collect::<Result<_, _>>()
        .map_err(|e| self.db(e))
    }

    /// A job's labels, by key (the last value set for each).
    pub fn labels(&self, run_id: &str, job: i64) -> Result<Vec<(String, String)>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached(
                "SELECT key, value FROM labels WHERE run_id = ?1 AND job = ?2 ORDER BY key, rowid",
            )
            .map_err(|e| self.db(e))?;
        let rows: Vec<(String, String)> = stmt
            .query_map(params![run_id, job], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.db(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db(e))?;
        // Later rows of a key win, as `label` calls do.
        let mut last: Vec<(String, String)> = Vec::with_capacity(rows.len());
        for (k, v) in rows {
            match last.last_mut() {
                Some((lk, lv)) if *lk == k => *lv = v,
                _ => last.push((k, v)),
            }
        }
        Ok(last)
    }

    /// Every label a run's jobs set: (job, key, value), by job and key,
    /// the last value set for each.
    pub fn run_labels(&self, run_id: &str) -> Result<Vec<(i64, String, String)>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached(
                "SELECT job, key, value FROM labels WHERE run_id = ?1 ORDER BY job, key, rowid",
            )
            .map_err(|e| self.db(e))?;
        let rows: Vec<(i64, String, String)> = stmt
            .query_map(params![run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.db(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db(e))?;
        let mut last: Vec<(i64, String, String)> = Vec::with_capacity(rows.len());
        for (j, k, v) in rows {
            match last.last_mut() {
                Some((lj, lk, lv)) if *lj == j && *lk == k => *lv = v,
                _ => last.push((j, k, v)),
            }
        }
        Ok(last)
    }

    /// The ids of runs in which some job set `key` to `value`.
    pub fn runs_with_label(
        &self,
        key: &str,
        value: &str,
    ) -> Result<std::collections::HashSet<String>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT DISTINCT run_id FROM labels WHERE key = ?1 AND value = ?2")
            .map_err(|e| self.db(e))?;
        stmt.query_map(params![key, value], |r| r.get(0))
            .map_err(|e| self.db(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db(e))
    }

    /// A job's metrics, by name and step, in the order reported within a step.
    pub fn job_metrics(&self, run_id: &str, job: i64) -> Result<Vec<MetricRow>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached(
                "SELECT jobs.name, metrics.name, metrics.step, metrics.value FROM metrics
                 JOIN jobs ON jobs.run_id = metrics.run_id AND jobs.job = metrics.job
                 WHERE metrics.run_id = ?1 AND metrics.job = ?2
                 ORDER BY metrics.name, metrics.step, metrics.rowid",
            )
            .map_err(|e| self.db(e))?;
        stmt.query_map(params![run_id, job], |r| {
            Ok(MetricRow {
                job: r.get(0)?,
                name: r.get(1)?,
                step: r.get(2)?,
                value: r.get(3)?,
            })
        })
        .map_err(|e| self.db(e))?
        .collect::<Result<_, _>>()
        .map_err(|e| self.db(e))
    }

    /// A job's outputs, by name.
    pub fn job_outputs(&self, run_id: &str, job: i64) -> Result<Vec<OutputRow>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached(
                "SELECT jobs.name, outputs.name, outputs.value FROM outputs
                 JOIN jobs ON jobs.run_id = outputs.run_id AND jobs.job = outputs.job
                 WHERE outputs.run_id = ?1 AND outputs.job = ?2 ORDER BY outputs.name",
            )
            .map_err(|e| self.db(e))?;
        stmt.query_map(params![run_id, job], |r| {
            Ok(OutputRow {
                job: r.get(0)?,
                name: r.get(1)?,
                value: json(r, 2)?,
            })
        })
        .map_err(|e| self.db(e))?
        .collect::<Result<_, _>>()
        .map_err(|e| self.db(e))
    }

    /// Job names by id for the given ids of a run (the names of a job's
    /// dependencies, say).
    pub fn job_names(
        &self,
        run_id: &str,
        ids: &[i64],
    ) -> Result<HashMap<i64, String>, RecordError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT name FROM jobs WHERE run_id = ?1 AND job = ?2")
            .map_err(|e| self.db(e))?;
        let mut out = HashMap::new();
        for &id in ids {
            let name: Option<String> = stmt
                .query_row(params![run_id, id], |r| r.get(0))
                .optional()
                .map_err(|e| self.db(e))?;
            out.extend(name.map(|n| (id, n)));
        }
        Ok(out)
    }
}
