//! Keeping a store honest: `cairn verify RUN`, `cairn store verify`,
//! `cairn store gc`.

use super::print::*;
use super::query::*;
use super::*;
use crate::run::session::{self};
use crate::store::action::Value;
use crate::store::blobs::Store;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn verify(store_dir: &Path, run: &str, jobs: Option<usize>) -> Query {
    use crate::run::verify::Verdict;
    let run = open_run(store_dir, run)?;
    let (store, runtime) = session::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?;
    let jobs = jobs.unwrap_or_else(cores).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(jobs + 1)
        .enable_all()
        .build()
        .map_err(|e| QueryError::Host(e.to_string()))?;
    let verdicts = rt.block_on(crate::run::verify::verify_run(
        store,
        runtime,
        run.records(),
        run.id(),
        jobs,
    ))?;
    let mut bad = 0;
    for (name, v) in &verdicts {
        match v {
            Verdict::Same => outln!("same     {name}"),
            Verdict::NotRun(why) => outln!("skipped  {name} ({why})"),
            Verdict::Failed(f) => {
                bad += 1;
                outln!("FAILED   {name}: {f}");
            }
            Verdict::Differs(diffs) => {
                bad += 1;
                for (output, before, now) in diffs {
                    let show = |v: &Option<Value>| {
                        v.as_ref().map_or("missing".to_string(), Value::describe)
                    };
                    outln!(
                        "DIFFERS  {name} output `{output}`: recorded {}, now {}",
                        show(before),
                        show(now)
                    );
                }
            }
        }
    }
    outln!(
        "verified run {}: {} jobs, {} reproduced, {bad} not",
        run.id(),
        verdicts.len(),
        verdicts.iter().filter(|(_, v)| *v == Verdict::Same).count()
    );
    Ok(if bad == 0 { EXIT_OK } else { EXIT_JOB_FAILED })
}

pub(super) fn store_verify(store_dir: &Path) -> Query {
    use crate::store::maintenance::StoreProblem;
    let store = Arc::new(Store::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?);
    let report = crate::store::maintenance::verify_store(&store)
        .map_err(|e| QueryError::Host(e.to_string()))?;
    for p in &report.problems {
        match p {
            StoreProblem::CorruptBlob(d) => {
                outln!("corrupt blob {d}: its bytes do not match its digest")
            }
            StoreProblem::StrayFile(f) => outln!("stray file {}", f.display()),
            StoreProblem::BadEntry(f, why) => {
                outln!("untrusted cache entry {}: {why}", f.display())
            }
            StoreProblem::Records(why) => outln!("damaged run records: {why}"),
            StoreProblem::MissingBlob { key, blob } => {
                outln!("cache entry {key} names missing blob {blob}")
            }
        }
    }
    outln!(
        "{}: {} blobs re-hashed, {} cache entries checked, {} problem{}",
        store_dir.display(),
        report.blobs,
        report.entries,
        report.problems.len(),
        if report.problems.len() == 1 { "" } else { "s" }
    );
    Ok(if report.problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_JOB_FAILED
    })
}

pub(super) fn store_gc(store_dir: &Path, last: Option<usize>, since: Option<Duration>) -> Query {
    if last.is_none() && since.is_none() {
        return Err(QueryError::Usage(
            "say which runs to keep: --keep-last N and/or --keep-since DUR".into(),
        ));
    }
    let store = Arc::new(Store::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?);
    let records = crate::store::records::Records::open(store_dir)?;
    let r = crate::store::maintenance::gc(
        &store,
        &records,
        crate::store::maintenance::Keep { last, since },
    )?;
    outln!(
        "kept {} runs; removed {} runs, {} blobs ({} bytes), {} cache entries",
        r.runs_kept,
        r.runs_removed,
        r.blobs_removed,
        r.bytes_removed,
        r.entries_removed
    );
    Ok(EXIT_OK)
}
