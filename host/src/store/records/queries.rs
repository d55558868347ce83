//! What readers ask of the records: runs, jobs, outputs, metrics, and what
//! `cairn why` and `cairn store gc` need.

use super::{JobRow, MetricRow, OutputRow, RecordError, Records, RunRow, RunStatus, now_ms};
use crate::store::action::Value;
use crate::store::digest::{ActionKey, Digest};
use rusqlite::{OptionalExtension, params};
use std::fs::{self, File};

impl Records {
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
        self.runs_labelled(workflow, status, &[], limit)
    }

    /// As [`Records::runs`], keeping only runs in which jobs set every one
    /// of `labels` (key, value); each may come from a different job.
    pub fn runs_labelled(
        &self,
        workflow: Option<&str>,
        status: Option<RunStatus>,
        labels: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<RunRow>, RecordError> {
        let mut labelled: Option<std::collections::HashSet<String>> = None;
        for (key, value) in labels {
            let ids = self.runs_with_label(key, value)?;
            labelled = Some(match labelled {
                None => ids,
                Some(had) => had.intersection(&ids).cloned().collect(),
            });
        }
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
            if labelled.as_ref().is_some_and(|ids| !ids.contains(&row.id)) {
                continue;
            }
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
        if !alive && self.read_only {
            // A reader that may not write shows the truth without storing it.
            row.status = RunStatus::Interrupted;
            return Ok(row);
        }
        if !alive {
            // Only a run still `running` becomes interrupted: the process may
            // have finished it between our read and now.
            let conn = self.conn.lock().unwrap();
            let marked = conn
                .execute(
                    "UPDATE runs SET status = 'interrupted', ended_ms = COALESCE(ended_ms, ?2) WHERE id = ?1 AND status = 'running'",
                    params![row.id, now_ms()],
                )
                .and_then(|_| {
                    conn.execute(
                        "UPDATE jobs SET status = 'interrupted' WHERE run_id = ?1 AND status IN ('pending', 'queued', 'running')",
                        [&row.id],
                    )
                });
            // A reader that cannot write (a full disk, read-only media)
            // still tells the truth: the run is not going on.
            if marked.is_err() {
                row.status = RunStatus::Interrupted;
                row.ended_ms = row.ended_ms.or(Some(now_ms()));
                return Ok(row);
            }
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
         (SELECT count(*) FROM attempts a WHERE a.run_id = jobs.run_id AND a.job = jobs.job),
         jobs.exit_code"
    };
}
const JOB_FIELDS: &str = job_fields!();
pub(super) const JOB_COLUMNS: &str = concat!("SELECT ", job_fields!(), " FROM jobs");

pub(super) fn json<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<T> {
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

pub(super) fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    job_row_at(r, 0)
}

fn job_row_at(r: &rusqlite::Row<'_>, o: usize) -> rusqlite::Result<JobRow> {
    let key_inputs: Option<String> = r.get(o + 11)?;
    let failure_kind: Option<String> = r.get(o + 7)?;
    let failure: Option<String> = r.get(o + 8)?;
    Ok(JobRow {
        cause: super::cause_of(failure_kind.as_deref(), failure.as_deref()),
        job: r.get(o)?,
        name: r.get(o + 1)?,
        deps: json(r, o + 2)?,
        status: r.get(o + 3)?,
        cache_key: r.get(o + 4)?,
        started_ms: r.get(o + 5)?,
        ended_ms: r.get(o + 6)?,
        failure_kind,
        failure,
        stdout: r.get(o + 9)?,
        stderr: r.get(o + 10)?,
        key_inputs: key_inputs.and_then(|k| serde_json::from_str(&k).ok()),
        limits: r
            .get::<_, Option<String>>(o + 12)?
            .and_then(|l| serde_json::from_str(&l).ok()),
        attempts: r.get(o + 13)?,
        exit_code: r.get(o + 14)?,
    })
}
