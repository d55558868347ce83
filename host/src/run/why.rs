//! Why a recorded job executed instead of hitting the cache: what changed
//! in its key since the same job's most recent earlier run. `cairn why`
//! prints it; the web view shows it on the job's page.

use crate::store::records::{JobRow, RecordError, Records, RunRow};
use serde::Serialize;

/// The answer to "why did this job run?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Why {
    /// The job's name.
    pub job: String,
    /// Whether it executed (false: cached, skipped, not run yet).
    pub executed: bool,
    /// One sentence.
    pub answer: String,
    /// The earlier run its key was compared with, if any.
    pub compared_with: Option<String>,
    /// What differs from that run's key, one sentence each.
    pub differences: Vec<String>,
}

/// Why `job` of `run` executed, from the records alone.
pub fn why(records: &Records, run: &RunRow, job: &JobRow) -> Result<Why, RecordError> {
    let name = &job.name;
    let mut compared_with = None;
    let mut differences = Vec::new();
    let (executed, answer) = match (job.status.as_str(), &job.key_inputs) {
        ("cached", _) => (
            false,
            format!("{name} did not execute: its result came from the cache"),
        ),
        ("executed" | "failed", Some(now)) => match records
            .previous_job(run, name)?
            .and_then(|(id, earlier)| Some((id, earlier.key_inputs?)))
        {
            None => (
                true,
                format!(
                    "{name} executed: no earlier run of workflow `{}` has a job `{name}`",
                    run.workflow
                ),
            ),
            Some((earlier_run, before)) => {
                differences = now.differences(&before);
                let answer = if differences.is_empty() {
                    format!(
                        "{name} executed although its key is the same as in run {earlier_run}: the result was not in the cache \
                         (--no-cache, a failure there, the job is not cacheable, or the entry or one of its blobs was removed)"
                    )
                } else {
                    format!("{name} executed: compared with run {earlier_run},")
                };
                compared_with = Some(earlier_run);
                (true, answer)
            }
        },
        ("executed" | "failed", None) => (
            true,
            format!("{name} executed before its inputs were known; nothing to compare"),
        ),
        (other, _) => (false, format!("{name} did not execute: it is {other}")),
    };
    Ok(Why {
        job: name.clone(),
        executed,
        answer,
        compared_with,
        differences,
    })
}
