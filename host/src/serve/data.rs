//! What the web view shows, read from the records and the store: the runs
//! list, a run with its jobs, and one job in full. The HTML pages render
//! these values and `/api/…` serves them as JSON, so both always agree.
//!
//! Secrets: the records hold a declared secret's name (and, for
//! `secrets-in-key`, a keyed hash), never its value, and logs were blanked
//! before they were stored; these views carry names only.

use super::dag::group_key;
use crate::run::why::{Why, why};
use crate::store::action::Value;
use crate::store::blobs::Store;
use crate::store::digest::Digest;
use crate::store::records::{
    AttemptRow, JobRow, JobState, RecordError, Records, RunRow, RunStatus, StatusCounts,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// Why a view could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// No such run, job, output or page.
    #[error("{0}")]
    NotFound(String),
    /// The request names something in a form that cannot be right.
    #[error("{0}")]
    BadRequest(String),
    /// The records or the store failed.
    #[error("{0}")]
    Internal(String),
}

impl From<RecordError> for ViewError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::NoSuchRun(_) | RecordError::NoSuchJob { .. } => {
                ViewError::NotFound(e.to_string())
            }
            RecordError::Ambiguous { .. } => ViewError::BadRequest(e.to_string()),
            e => ViewError::Internal(e.to_string()),
        }
    }
}

/// A run as the runs list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow file as given to `cairn run`.
    pub workflow_path: String,
    /// `running`, `succeeded`, `failed` or `interrupted`.
    pub status: RunStatus,
    /// Start, Unix milliseconds.
    pub started_ms: i64,
    /// End, Unix milliseconds, once it ended.
    pub ended_ms: Option<i64>,
    /// End minus start, once it ended.
    pub duration_ms: Option<i64>,
    /// How many jobs it has.
    pub jobs: u64,
    /// How many are in each state.
    pub counts: StatusCounts,
    /// Why the run ended before running its jobs, if it did.
    pub error: Option<String>,
}

impl RunSummary {
    /// A run row with its counts.
    pub fn new(row: &RunRow, counts: StatusCounts) -> RunSummary {
        RunSummary {
            id: row.id.clone(),
            workflow: row.workflow.clone(),
            workflow_path: row.workflow_path.clone(),
            status: row.status,
            started_ms: row.started_ms,
            ended_ms: row.ended_ms,
            duration_ms: row.ended_ms.map(|e| e - row.started_ms),
            jobs: counts.total(),
            counts,
            error: row.error.clone(),
        }
    }
}

/// One job of a run, as the run page draws it.
#[derive(Debug, Clone, Serialize)]
pub struct JobBrief {
    /// Its id within the run.
    pub id: i64,
    /// Its name (`count[part=0]` for a matrix instance).
    pub name: String,
    /// Its job key: the name without matrix values.
    pub group: String,
    /// Ids of the jobs it needs.
    pub deps: Vec<i64>,
    /// `pending`, `queued`, `running`, `executed`, `cached`, `failed`,
    /// `skipped`, `not run` or `interrupted`.
    pub status: String,
    /// Start, Unix milliseconds.
    pub started_ms: Option<i64>,
    /// End, Unix milliseconds.
    pub ended_ms: Option<i64>,
    /// End minus start.
    pub duration_ms: Option<i64>,
}

/// A run with its parameters, inputs and jobs.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// The run.
    pub run: RunSummary,
    /// Parameters as used.
    pub params: BTreeMap<String, String>,
    /// The workflow's inputs, by name.
    pub inputs: BTreeMap<String, ValueView>,
    /// Every job, in plan order.
    pub jobs: Vec<JobBrief>,
}

/// A value in the store: a blob with where to download it, or a list.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ValueView {
    /// One blob.
    Blob {
        /// Its blake3 digest.
        digest: String,
        /// Its size in bytes.
        size: u64,
        /// Where the web view serves its bytes, or `None` where it does not.
        url: Option<String>,
    },
    /// A list of values.
    List {
        /// The elements, in order.
        items: Vec<ValueView>,
    },
}

impl ValueView {
    /// The view of `value`, with download links under `url` (`url/0`, … for lists).
    pub fn new(value: &Value, url: Option<&str>) -> ValueView {
        match value {
            Value::Blob { digest, size } => ValueView::Blob {
                digest: digest.to_hex(),
                size: *size,
                url: url.map(str::to_string),
            },
            Value::List(items) => ValueView::List {
                items: items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ValueView::new(v, url.map(|u| format!("{u}/{i}")).as_deref()))
                    .collect(),
            },
        }
    }
}

/// A named value (an input or an output of a job).
#[derive(Debug, Clone, Serialize)]
pub struct Named {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: ValueView,
}

/// A log, with as much of its text as a page shows.
#[derive(Debug, Clone, Serialize)]
pub struct LogView {
    /// The log's blob.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its text (lossy UTF-8), cut at [`LOG_SHOWN`] bytes.
    pub text: String,
    /// Whether `text` was cut.
    pub truncated: bool,
    /// Where the whole log is served.
    pub url: String,
}

/// How much of a log a page and the job's JSON carry; the rest is a link away.
pub const LOG_SHOWN: usize = 256 << 10;

/// A line of the task log (`context.log`), which goes to stderr as `[level] message`.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
}

/// A job's logs.
#[derive(Debug, Clone, Serialize)]
pub struct Logs {
    /// Standard output.
    pub stdout: Option<LogView>,
    /// Standard error (the task log's lines are in it too).
    pub stderr: Option<LogView>,
    /// The task log's lines, from stderr.
    pub structured: Vec<LogLine>,
}

/// A metric's points.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    /// Its name.
    pub name: String,
    /// (step, value), in step order; without steps, in the order reported.
    pub points: Vec<(Option<i64>, f64)>,
}

/// The limits a job ran under.
#[derive(Debug, Clone, Serialize)]
pub struct LimitsView {
    /// Linear memory, bytes.
    pub memory: u64,
    /// Wall time, milliseconds.
    pub timeout_ms: u128,
    /// Fuel, when metered.
    pub fuel: Option<u64>,
    /// Output bytes.
    pub output: u64,
    /// Log bytes kept.
    pub log: u64,
}

/// Why a job failed (or was skipped).
#[derive(Debug, Clone, Serialize)]
pub struct FailureView {
    /// The class (`timeout`, `trap`, `exit`, …), for a failure.
    pub kind: Option<String>,
    /// The message, or why it was skipped.
    pub message: String,
}

/// One job in full.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// The run it belongs to.
    pub run: RunSummary,
    /// The job, as the run page has it.
    #[serde(flatten)]
    pub brief: JobBrief,
    /// The jobs it needs, by name.
    pub needs: Vec<String>,
    /// Whether its result came from the cache.
    pub cached: bool,
    /// Its action key, once known.
    pub cache_key: Option<String>,
    /// The component's digest.
    pub component: Option<String>,
    /// A typed task's export.
    pub call: Option<String>,
    /// A command task's arguments (argv after argv[0]).
    pub argv: Vec<String>,
    /// A typed task's literal arguments, by parameter name.
    pub args: BTreeMap<String, serde_json::Value>,
    /// Its inputs (files, or artifacts of a typed task), by name.
    pub inputs: Vec<Named>,
    /// Its outputs, by name.
    pub outputs: Vec<Named>,
    /// Names of the secrets it may read. Their values are never shown.
    pub secrets: Vec<String>,
    /// The limits it ran under.
    pub limits: Option<LimitsView>,
    /// Why it failed or was skipped.
    pub failure: Option<FailureView>,
    /// Its execution attempts.
    pub attempts: Vec<AttemptRow>,
    /// Its logs.
    pub logs: Logs,
    /// Its metrics, by name.
    pub metrics: Vec<Metric>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Why it executed rather than coming from the cache (`cairn why`).
    pub why: Why,
}

/// A job's state as shown: a run whose process died has no running jobs.
pub fn shown_status(run: RunStatus, status: &str) -> String {
    match (run, status) {
        (RunStatus::Interrupted, "pending" | "queued" | "running") => "interrupted".to_string(),
        _ => status.to_string(),
    }
}

/// The brief of a job.
pub fn brief(run: RunStatus, j: &JobState) -> JobBrief {
    JobBrief {
        id: j.job,
        name: j.name.clone(),
        group: group_key(&j.name).to_string(),
        deps: j.deps.clone(),
        status: shown_status(run, &j.status),
        started_ms: j.started_ms,
        ended_ms: j.ended_ms,
        duration_ms: j.started_ms.zip(j.ended_ms).map(|(s, e)| e - s),
    }
}

/// Percent-encodes a path segment: everything but unreserved characters.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL of a job's page (`/runs/…`) or JSON (`/api/runs/…`).
pub fn job_url(api: bool, run: &str, job: &str) -> String {
    format!(
        "{}/runs/{run}/jobs/{}",
        if api { "/api" } else { "" },
        enc(job)
    )
}

/// The run and its jobs.
pub fn run_view(records: &Records, run: &RunRow) -> Result<RunView, ViewError> {
    let states = records.job_states(&run.id)?;
    let jobs: Vec<JobBrief> = states.iter().map(|j| brief(run.status, j)).collect();
    let counts = count(&jobs);
    Ok(RunView {
        run: RunSummary::new(run, counts),
        params: run.params.clone(),
        inputs: run
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), ValueView::new(v, None)))
            .collect(),
        jobs,
    })
}

/// Counts of jobs by state.
pub fn count(jobs: &[JobBrief]) -> StatusCounts {
    let mut c = StatusCounts::default();
    for j in jobs {
        c.add(&j.status, 1);
    }
    c
}

/// One job in full.
pub fn job_view(
    records: &Records,
    store: &Store,
    run: &RunRow,
    counts: StatusCounts,
    name: &str,
) -> Result<JobView, ViewError> {
    let job = records
        .job_named(&run.id, name)?
        .ok_or_else(|| ViewError::NotFound(format!("run {} has no job `{name}`", run.id)))?;
    let api = job_url(true, &run.id, &job.name);
    let needs = {
        let names = records.job_names(&run.id, &job.deps)?;
        job.deps
            .iter()
            .map(|d| names.get(d).cloned().unwrap_or_else(|| format!("#{d}")))
            .collect()
    };
    let key = job.key_inputs.as_ref();
    let inputs = key
        .map(|k| {
            k.inputs
                .iter()
                .map(|(n, v)| Named {
                    name: n.clone(),
                    value: ValueView::new(v, Some(&format!("{api}/inputs/{}", enc(n)))),
                })
                .collect()
        })
        .unwrap_or_default();
    let outputs = records
        .job_outputs(&run.id, job.job)?
        .into_iter()
        .map(|o| Named {
            value: ValueView::new(&o.value, Some(&format!("{api}/outputs/{}", enc(&o.name)))),
            name: o.name,
        })
        .collect();
    let mut metrics: Vec<Metric> = Vec::new();
    for m in records.job_metrics(&run.id, job.job)? {
        match metrics.last_mut() {
            Some(last) if last.name == m.name => last.points.push((m.step, m.value)),
            _ => metrics.push(Metric {
                name: m.name,
                points: vec![(m.step, m.value)],
            }),
        }
    }
    let failure = job.failure.as_ref().map(|m| FailureView {
        kind: job.failure_kind.as_ref().map(|k| k.replace('_', " ")),
        message: m.clone(),
    });
    let stdout = log(store, &job.stdout, format!("{api}/logs/stdout"))?;
    let stderr = log(store, &job.stderr, format!("{api}/logs/stderr"))?;
    let structured = stderr
        .as_ref()
        .map(|l| task_log(&l.text))
        .unwrap_or_default();
    Ok(JobView {
        brief: brief(
            run.status,
            &JobState {
                job: job.job,
                name: job.name.clone(),
                deps: job.deps.clone(),
                status: job.status.clone(),
                started_ms: job.started_ms,
                ended_ms: job.ended_ms,
            },
        ),
        run: RunSummary::new(run, counts),
        needs,
        cached: job.status == "cached",
        cache_key: job.cache_key.clone(),
        component: key.map(|k| k.component.to_hex()),
        call: key.and_then(|k| k.call.clone()),
        argv: key.map(|k| k.argv.clone()).unwrap_or_default(),
        args: key.map(|k| k.args.clone()).unwrap_or_default(),
        inputs,
        outputs,
        // Names only: the values are not in the records, and stay out of views.
        secrets: key
            .map(|k| k.secrets.keys().cloned().collect())
            .unwrap_or_default(),
        limits: job.limits.map(|l| LimitsView {
            memory: l.memory,
            timeout_ms: l.timeout.as_millis(),
            fuel: l.fuel,
            output: l.output,
            log: l.log,
        }),
        failure,
        attempts: records.attempts(&run.id, job.job)?,
        logs: Logs {
            stdout,
            stderr,
            structured,
        },
        metrics,
        labels: records.labels(&run.id, job.job)?.into_iter().collect(),
        why: why(records, run, &job)?,
    })
}

/// The log whose digest a job row holds, read (and checked) from the store.
fn log(store: &Store, digest: &Option<String>, url: String) -> Result<Option<LogView>, ViewError> {
    let Some(digest) = digest else {
        return Ok(None);
    };
    let d: Digest = digest
        .parse()
        .map_err(|e| ViewError::Internal(format!("a log digest in the records: {e}")))?;
    let bytes = store
        .read(&d)
        .map_err(|e| ViewError::Internal(format!("log blob {d}: {e}")))?;
    let shown = &bytes[..bytes.len().min(LOG_SHOWN)];
    Ok(Some(LogView {
        digest: digest.clone(),
        size: bytes.len() as u64,
        text: String::from_utf8_lossy(shown).into_owned(),
        truncated: shown.len() < bytes.len(),
        url,
    }))
}

/// The task log's lines in a stderr text.
pub fn task_log(text: &str) -> Vec<LogLine> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('[')?;
            let (level, message) = rest.split_once("] ")?;
            ["trace", "debug", "info", "warn", "error"]
                .contains(&level)
                .then(|| LogLine {
                    level: level.to_string(),
                    message: message.to_string(),
                })
        })
        .collect()
}

/// A job row's value at `path` (an output or input name, then list indexes).
pub fn value_at<'a>(value: &'a Value, indexes: &[&str]) -> Result<&'a Value, ViewError> {
    let mut v = value;
    for ix in indexes {
        let Value::List(items) = v else {
            return Err(ViewError::NotFound(format!(
                "`{ix}`: the value is a single blob, not a list"
            )));
        };
        let i: usize = ix
            .parse()
            .map_err(|_| ViewError::BadRequest(format!("`{ix}` is not a list index")))?;
        v = items.get(i).ok_or_else(|| {
            ViewError::NotFound(format!(
                "index {i} is past the list's {} items",
                items.len()
            ))
        })?;
    }
    Ok(v)
}

/// The job row named `name`, or a not-found error.
pub fn job_row(records: &Records, run: &RunRow, name: &str) -> Result<JobRow, ViewError> {
    records
        .job_named(&run.id, name)?
        .ok_or_else(|| ViewError::NotFound(format!("run {} has no job `{name}`", run.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(enc("count[part=0]"), "count%5Bpart%3D0%5D");
        assert_eq!(enc("../x y"), "..%2Fx%20y");
        assert_eq!(enc("é"), "%C3%A9");
    }

    #[test]
    fn task_log_lines_are_found_in_stderr() {
        let lines = task_log("plain\n[info] hello a\n[nope] x\n[warn] careful] now\n");
        let got: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| (l.level.as_str(), l.message.as_str()))
            .collect();
        assert_eq!(got, [("info", "hello a"), ("warn", "careful] now")]);
    }
}
