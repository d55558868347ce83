//! The queries over recorded runs: `runs`, `status`, `logs`, `results`,
//! `cat`, `get`, `metrics`, `why`. Any process may ask, while a run goes on.

use super::args::RemoteArgs;
use super::print::*;
use super::*;
use crate::run::recorded::{Run, Wait};
use crate::store::action::Value;
use crate::store::blobs::Store;
use crate::store::digest::Digest;
use crate::store::records::{JobRow, RecordError, RunRow, RunStatus, failure_line};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn open_run(store: &Path, run: &str) -> Result<Run, QueryError> {
    if !store.join("runs.db").exists() {
        return Err(QueryError::Usage(format!(
            "no runs recorded in {} (use --store or CAIRN_STORE to name the store)",
            store.display()
        )));
    }
    Ok(Run::open(store, run)?)
}

pub(super) fn job_named<'a>(
    run: &Run,
    jobs: &'a [JobRow],
    name: &str,
) -> Result<&'a JobRow, QueryError> {
    jobs.iter().find(|j| j.name == name).ok_or_else(|| {
        let mut msg = RecordError::NoSuchJob {
            run: run.id().to_string(),
            job: name.to_string(),
        }
        .to_string();
        if let Some(best) =
            crate::workflow::diag::did_you_mean(name, jobs.iter().map(|j| j.name.as_str()))
        {
            msg.push_str(&format!("; did you mean `{best}`?"));
        }
        QueryError::Usage(msg)
    })
}

pub(super) fn exit_for(row: &RunRow) -> i32 {
    match row.status {
        RunStatus::Succeeded => EXIT_OK,
        RunStatus::Running => EXIT_RUNNING,
        RunStatus::Failed | RunStatus::Interrupted => EXIT_JOB_FAILED,
    }
}

pub(super) fn runs(
    store: &Path,
    workflow: Option<&str>,
    status: Option<RunStatus>,
    labels: &[(String, String)],
    limit: usize,
    json: bool,
) -> Query {
    if !store.join("runs.db").exists() {
        if json {
            outln!("[]");
        } else {
            outln!("no runs in {}", store.display());
        }
        return Ok(EXIT_OK);
    }
    let records = crate::store::records::Records::open(store)?;
    let rows = records.runs_labelled(workflow, status, labels, limit)?;
    let style = Style::stdout();
    if json {
        print_json(&rows);
    } else {
        for r in &rows {
            outln!(
                "{}  {}  {:<20}  {:>9}  {}",
                r.id,
                style.state(r.status.as_str(), 11),
                r.workflow,
                took(Some(r.started_ms), r.ended_ms),
                ago(r.started_ms)
            );
        }
    }
    Ok(EXIT_OK)
}

pub(super) fn status(store: &Path, run: &str, json: bool) -> Query {
    let run = open_run(store, run)?;
    let row = run.status()?;
    let jobs = run.jobs()?;
    // Labels by job; the run's are every distinct key=value its jobs set.
    let mut labels: BTreeMap<i64, BTreeMap<String, String>> = BTreeMap::new();
    for (job, k, v) in run.labels()? {
        labels.entry(job).or_default().insert(k, v);
    }
    let mut run_labels: Vec<(&str, &str)> = labels
        .values()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    run_labels.sort_unstable();
    run_labels.dedup();
    if json {
        let none = BTreeMap::new();
        let jobs: Vec<serde_json::Value> = jobs
            .iter()
            .map(|j| {
                let mut v = serde_json::to_value(j).unwrap_or_default();
                v["labels"] = serde_json::json!(labels.get(&j.job).unwrap_or(&none));
                v
            })
            .collect();
        let mut run_json = serde_json::to_value(&row).unwrap_or_default();
        run_json["labels"] = serde_json::Value::Array(
            run_labels
                .iter()
                .map(|(k, v)| serde_json::json!({ "key": k, "value": v }))
                .collect(),
        );
        print_json(&serde_json::json!({ "run": run_json, "jobs": jobs }));
        return Ok(exit_for(&row));
    }
    let joined = |pairs: &mut dyn Iterator<Item = (&str, &str)>| {
        pairs
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let style = Style::stdout();
    outln!(
        "run {}  {}  workflow {} ({})  started {}{}",
        row.id,
        style.state(row.status.as_str(), 0),
        row.workflow,
        row.workflow_path,
        ago(row.started_ms),
        row.ended_ms
            .map(|e| format!(", took {}", took(Some(row.started_ms), Some(e))))
            .unwrap_or_default()
    );
    if let Some(e) = &row.error {
        outln!("  error: {}", e.lines().next().unwrap_or_default());
    }
    if !run_labels.is_empty() {
        outln!("  labels  {}", joined(&mut run_labels.iter().copied()));
    }
    for j in &jobs {
        // One line a job: the cause; `--json` and `cairn logs` have the rest.
        let detail = j
            .cause
            .clone()
            .or_else(|| failure_line(j))
            .map(|f| format!("  {f}"))
            .unwrap_or_default();
        outln!(
            "  {} {:<24} {:>9}{detail}",
            style.state(&j.status, 12),
            j.name,
            took(j.started_ms, j.ended_ms)
        );
        if let Some(l) = labels.get(&j.job) {
            let mut pairs = l.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            outln!("               labels  {}", joined(&mut pairs));
        }
    }
    Ok(exit_for(&row))
}

pub(super) fn job_log(store: &Store, job: &JobRow) -> (String, String) {
    let text = |d: &Option<String>| {
        d.as_deref()
            .and_then(|d| d.parse::<Digest>().ok())
            .and_then(|d| store.read(&d).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    (text(&job.stdout), text(&job.stderr))
}

pub(super) fn print_job_log(store: &Store, job: &JobRow, json: bool) {
    let (stdout, stderr) = job_log(store, job);
    if json {
        let v = serde_json::json!({ "job": job.name, "status": job.status, "stdout": stdout, "stderr": stderr });
        outln!("{v}");
        return;
    }
    outln!("== {} ({})", job.name, job.status);
    let mut out = std::io::stdout().lock();
    for text in [stdout, stderr] {
        let _ = out.write_all(text.as_bytes());
        if !text.is_empty() && !text.ends_with('\n') {
            let _ = writeln!(out);
        }
    }
}

pub(super) fn logs(
    store_dir: &Path,
    remote: &RemoteArgs,
    run: &str,
    job: Option<&str>,
    follow: bool,
    json: bool,
) -> Query {
    let run = open_run(store_dir, run)?;
    let blobs = Blobs::open(store_dir, remote)?;
    let store = blobs.store.clone();
    if let Some(name) = job {
        job_named(&run, &run.jobs()?, name)?;
    }
    let finished = |s: &str| !matches!(s, "pending" | "queued" | "running");
    let mut shown = std::collections::HashSet::new();
    loop {
        let row = run.status()?;
        for j in run.jobs()? {
            if job.is_some_and(|n| n != j.name) || !finished(&j.status) || shown.contains(&j.job) {
                continue;
            }
            shown.insert(j.job);
            let logs: Vec<Digest> = [&j.stdout, &j.stderr]
                .into_iter()
                .flatten()
                .filter_map(|d| d.parse().ok())
                .collect();
            blobs.ensure(&logs)?;
            print_job_log(&store, &j, json);
        }
        if !follow || row.status.is_final() {
            return Ok(if follow { exit_for(&row) } else { EXIT_OK });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(super) fn results(
    store_dir: &Path,
    remote: &RemoteArgs,
    run: &str,
    wait: Wait,
    all: bool,
    json: bool,
) -> Query {
    let run = open_run(store_dir, run)?;
    let (row, mut outputs) = run.results(wait)?;
    if !all {
        let jobs = run.jobs()?;
        let consumed: std::collections::HashSet<i64> =
            jobs.iter().flat_map(|j| j.deps.iter().copied()).collect();
        let finals: std::collections::HashSet<&str> = jobs
            .iter()
            .filter(|j| !consumed.contains(&j.job))
            .map(|j| j.name.as_str())
            .collect();
        outputs.retain(|o| finals.contains(o.job.as_str()));
    }
    // The paths printed are paths in this store: what is only on the
    // remote comes here first.
    let digests: Vec<Digest> = outputs.iter().flat_map(|o| o.value.digests()).collect();
    Blobs::open(store_dir, remote)?.ensure(&digests)?;
    if json {
        print_json(&serde_json::json!({ "run": row, "outputs": outputs }));
        return Ok(exit_for(&row));
    }
    outln!("run {}  {}", row.id, row.status);
    let blobs = blobs_dir(store_dir);
    let mut lines = Vec::new();
    for o in &outputs {
        write_output_lines(
            &mut lines,
            &format!("{}.{}", o.job, o.name),
            &o.value,
            &blobs,
        );
    }
    let _ = std::io::stdout().lock().write_all(&lines);
    Ok(exit_for(&row))
}

pub(super) fn cat(store_dir: &Path, remote: &RemoteArgs, digest: &str) -> Query {
    let digest: Digest = digest.parse().map_err(QueryError::Usage)?;
    let blobs = Blobs::open(store_dir, remote)?;
    blobs.ensure(&[digest])?;
    let bytes = blobs.store.read(&digest).map_err(|e| {
        // A blob that is not there is the caller's digest to check; one
        // that is there and cannot be read is the machine's fault.
        let msg = format!("blob {digest} in {}: {e}", store_dir.display());
        if e.kind() == std::io::ErrorKind::NotFound {
            QueryError::Usage(format!("no blob {digest} in {}", store_dir.display()))
        } else {
            QueryError::Host(msg)
        }
    })?;
    let _ = std::io::stdout().write_all(&bytes);
    Ok(EXIT_OK)
}

pub(super) fn get(
    store_dir: &Path,
    remote: &RemoteArgs,
    run: &str,
    job: &str,
    output: &str,
    dest: &Path,
) -> Query {
    let run = open_run(store_dir, run)?;
    job_named(&run, &run.jobs()?, job)?;
    let outputs = run.records().outputs(run.id())?;
    let Some(found) = outputs.iter().find(|o| o.job == job && o.name == output) else {
        let names: Vec<&str> = outputs
            .iter()
            .filter(|o| o.job == job)
            .map(|o| o.name.as_str())
            .collect();
        return Err(QueryError::Usage(format!(
            "job `{job}` of run {} has no output `{output}` (it has: {})",
            run.id(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    let blobs = Blobs::open(store_dir, remote)?;
    blobs.ensure(&found.value.digests())?;
    write_value(&blobs.store, &found.value, dest)
        .map_err(|e| QueryError::Host(format!("writing {}: {e}", dest.display())))?;
    Ok(EXIT_OK)
}

pub(super) fn write_value(store: &Store, value: &Value, dest: &Path) -> std::io::Result<()> {
    match value {
        Value::Blob { digest, .. } => std::fs::write(dest, store.read(digest)?),
        Value::List(items) => {
            std::fs::create_dir_all(dest)?;
            for (i, v) in items.iter().enumerate() {
                write_value(store, v, &dest.join(i.to_string()))?;
            }
            Ok(())
        }
    }
}

pub(super) fn metrics(store_dir: &Path, run: &str, job: Option<&str>, json: bool) -> Query {
    let run = open_run(store_dir, run)?;
    if let Some(name) = job {
        job_named(&run, &run.jobs()?, name)?;
    }
    let rows: Vec<_> = run
        .records()
        .metrics(run.id())?
        .into_iter()
        .filter(|m| job.is_none_or(|j| j == m.job))
        .collect();
    if json {
        print_json(&rows);
    } else if rows.is_empty() {
        outln!("no metrics recorded");
    } else {
        for m in rows {
            let step = m.step.map(|s| format!(" step {s}")).unwrap_or_default();
            outln!("{}  {}{step}  {}", m.job, m.name, m.value);
        }
    }
    Ok(EXIT_OK)
}

pub(super) fn why(store_dir: &Path, run: &str, job: &str, json: bool) -> Query {
    let run = open_run(store_dir, run)?;
    let row = run.status()?;
    let jobs = run.jobs()?;
    let this = job_named(&run, &jobs, job)?;
    let why = crate::run::why::why(run.records(), &row, this)?;
    if json {
        print_json(&why);
    } else {
        outln!("{}", why.answer);
        for d in why.differences {
            outln!("  - {d}");
        }
    }
    Ok(EXIT_OK)
}

/// The store, with the remote the command names behind it: blobs only on
/// the remote (outputs of jobs its cache answered) are fetched on demand.
pub(super) struct Blobs {
    pub(super) store: Arc<Store>,
    remote: Option<(Arc<crate::remote::client::Remote>, tokio::runtime::Runtime)>,
}

impl Blobs {
    pub(super) fn open(store_dir: &Path, args: &RemoteArgs) -> Result<Blobs, QueryError> {
        let store = Arc::new(Store::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?);
        let remote = match args.target().map_err(QueryError::Usage)? {
            None => None,
            Some(t) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| QueryError::Host(e.to_string()))?;
                let remote = rt
                    .block_on(crate::remote::client::Remote::connect(
                        t.spec,
                        store.clone(),
                    ))
                    .map_err(|e| QueryError::Host(e.to_string()))?;
                Some((remote, rt))
            }
        };
        Ok(Blobs { store, remote })
    }

    /// Fetches whichever of these blobs the store lacks, from the remote.
    pub(super) fn ensure(&self, digests: &[Digest]) -> Result<(), QueryError> {
        if let Some((remote, rt)) = &self.remote
            && digests.iter().any(|d| !self.store.contains(d))
        {
            rt.block_on(remote.fetch(digests))
                .map_err(|e| QueryError::Host(e.to_string()))?;
        }
        Ok(())
    }
}
