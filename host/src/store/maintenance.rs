//! Keeping a store honest: re-executing a recorded run to check that its
//! outputs are reproducible (`cairn verify`), re-hashing every blob and
//! checking every cache entry (`cairn store verify`), and removing what no
//! kept run can reach (`cairn store gc`).

use crate::cache::{ActionCache, LocalCache, Manifest, Value};
use crate::digest::{ActionKey, Digest};
use crate::exec::WasmExecutor;
use crate::outcome::Outcome;
use crate::records::{RecordError, Records, RunStatus};
use crate::runtime::{ComponentRef, Runtime};
use crate::scheduler::{Executor, JobRequest};
use crate::store::Store;
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What re-executing one job showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every output is byte-identical to the recorded one.
    Same,
    /// These outputs differ: (name, recorded, now).
    Differs(Vec<(String, Option<Value>, Option<Value>)>),
    /// The job failed this time.
    Failed(String),
    /// Not re-executed (it never ran, or its component is gone), and why.
    NotRun(String),
}

/// Re-executes every job of a recorded run without the cache, in the same
/// sandbox and under the same limits, and compares its outputs with the
/// recorded ones. Jobs are independent here (their inputs are recorded), so
/// up to `jobs` run at once.
pub async fn verify_run(
    store: Arc<Store>,
    runtime: Arc<Runtime>,
    records: &Records,
    run_id: &str,
    jobs: usize,
) -> Result<Vec<(String, Verdict)>, RecordError> {
    let executor = Arc::new(WasmExecutor::new(runtime.clone(), store.clone()));
    let rows = records.jobs(run_id)?;
    let mut recorded: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for o in records.outputs(run_id)? {
        recorded.entry(o.job).or_default().insert(o.name, o.value);
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let mut verdicts = Vec::new();
    for (i, j) in rows.into_iter().enumerate() {
        let Some(action) = j
            .key_inputs
            .clone()
            .filter(|_| matches!(j.status.as_str(), "executed" | "cached"))
        else {
            verdicts.push((
                i,
                j.name.clone(),
                Verdict::NotRun(format!("it is {}", j.status)),
            ));
            continue;
        };
        if !store.contains(&action.component) {
            verdicts.push((
                i,
                j.name.clone(),
                Verdict::NotRun("its component is no longer in the store".into()),
            ));
            continue;
        }
        let component = ComponentRef {
            path: store.blob_path(&action.component),
            digest: action.component,
        };
        let req = JobRequest {
            id: j.job as usize,
            name: j.name.clone(),
            component: component.clone(),
            key: action.key(),
            hermetic: action.sandbox == crate::cache::SandboxKey::new(true).profile,
            typed: match &action.call {
                None => None,
                Some(call) => match runtime.inspect(&component, Some(call)).await {
                    Ok(crate::typed::TaskKind::Typed(sig)) => Some(sig),
                    Ok(_) | Err(_) => {
                        verdicts.push((
                            i,
                            j.name.clone(),
                            Verdict::NotRun(format!("its component no longer exports `{call}`")),
                        ));
                        continue;
                    }
                },
            },
            action,
            limits: j.limits.unwrap_or_default(),
            // Secret values are never recorded, so verify runs without them.
            secrets: BTreeMap::new(),
        };
        let before = recorded.remove(&j.name).unwrap_or_default();
        let (executor, permits) = (executor.clone(), permits.clone());
        set.spawn(async move {
            let _permit = permits.acquire().await.expect("never closed");
            let verdict = match executor.execute(req).await {
                Outcome::Success(m) => compare(&before, &m.outputs),
                Outcome::Failure(f) => Verdict::Failed(f.to_string()),
            };
            (i, j.name, verdict)
        });
    }
    while let Some(r) = set.join_next().await {
        verdicts.push(r.expect("verification tasks do not panic"));
    }
    verdicts.sort_by_key(|(i, _, _)| *i);
    Ok(verdicts.into_iter().map(|(_, n, v)| (n, v)).collect())
}

fn compare(before: &BTreeMap<String, Value>, now: &BTreeMap<String, Value>) -> Verdict {
    let names: HashSet<&String> = before.keys().chain(now.keys()).collect();
    let mut diffs: Vec<_> = names
        .into_iter()
        .filter(|n| before.get(*n) != now.get(*n))
        .map(|n| (n.clone(), before.get(n).cloned(), now.get(n).cloned()))
        .collect();
    diffs.sort_by(|a, b| a.0.cmp(&b.0));
    if diffs.is_empty() {
        Verdict::Same
    } else {
        Verdict::Differs(diffs)
    }
}

/// A problem `store verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreProblem {
    /// A blob's bytes no longer match its name.
    CorruptBlob(Digest),
    /// A file in `blobs/` that is not named like a blob.
    StrayFile(PathBuf),
    /// A cache entry that cannot be read.
    BadEntry(PathBuf),
    /// A cache entry naming a blob that is not there.
    MissingBlob {
        /// The entry.
        key: ActionKey,
        /// The blob.
        blob: Digest,
    },
}

/// What `store verify` checked.
#[derive(Debug, Default)]
pub struct StoreReport {
    /// Blobs re-hashed.
    pub blobs: usize,
    /// Cache entries checked.
    pub entries: usize,
    /// What is wrong.
    pub problems: Vec<StoreProblem>,
}

/// Re-hashes every blob and checks that every cache entry's blobs exist.
pub fn verify_store(store: &Store) -> io::Result<StoreReport> {
    let mut report = StoreReport::default();
    for (path, name) in files_below(&store.root().join("blobs"))? {
        match name.parse::<Digest>() {
            Ok(d) => {
                report.blobs += 1;
                let mut h = blake3::Hasher::new();
                h.update_reader(fs::File::open(&path)?)?;
                if Digest::from(h.finalize()) != d {
                    report.problems.push(StoreProblem::CorruptBlob(d));
                }
            }
            Err(_) => report.problems.push(StoreProblem::StrayFile(path)),
        }
    }
    for (path, name) in files_below(&store.root().join("ac"))? {
        report.entries += 1;
        let entry = name.parse::<ActionKey>().ok().and_then(|k| {
            Some((
                k,
                serde_json::from_slice::<Manifest>(&fs::read(&path).ok()?).ok()?,
            ))
        });
        match entry {
            None => report.problems.push(StoreProblem::BadEntry(path)),
            Some((key, m)) => {
                for blob in m.digests().into_iter().filter(|d| !store.contains(d)) {
                    report
                        .problems
                        .push(StoreProblem::MissingBlob { key, blob });
                }
            }
        }
    }
    Ok(report)
}

/// Which runs `gc` keeps besides running ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keep {
    /// The newest N runs.
    pub last: Option<usize>,
    /// Runs started within this long.
    pub since: Option<Duration>,
}

/// What `gc` removed.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Runs kept (including running ones).
    pub runs_kept: usize,
    /// Run records removed.
    pub runs_removed: usize,
    /// Blobs removed.
    pub blobs_removed: usize,
    /// Bytes those blobs held.
    pub bytes_removed: u64,
    /// Cache entries removed.
    pub entries_removed: usize,
}

/// Removes blobs, cache entries, compiled components and run records that
/// no kept run can reach. A run in progress is always kept, and nothing
/// written since the collection started is removed, so a run that starts
/// meanwhile loses nothing.
pub fn gc(store: &Arc<Store>, records: &Records, keep: Keep) -> Result<GcReport, RecordError> {
    let started = SystemTime::now();
    let runs = records.runs(None, None, usize::MAX)?;
    let now_ms = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let (mut kept, mut removed) = (Vec::new(), Vec::new());
    for (i, r) in runs.iter().enumerate() {
        let recent = keep
            .since
            .is_some_and(|d| now_ms - r.started_ms <= d.as_millis() as i64);
        if r.status == RunStatus::Running || keep.last.is_some_and(|n| i < n) || recent {
            kept.push(r.id.clone());
        } else {
            removed.push(r.id.clone());
        }
    }
    let mut blobs: HashSet<Digest> = HashSet::new();
    let mut keys: HashSet<ActionKey> = HashSet::new();
    for id in &kept {
        let (b, k) = records.references(id)?;
        blobs.extend(b);
        keys.extend(k);
    }
    let cache = LocalCache::new(store.clone());
    for key in &keys {
        if let Some(m) = cache.lookup(key) {
            blobs.extend(m.digests());
        }
    }
    let mut report = GcReport {
        runs_kept: kept.len(),
        runs_removed: removed.len(),
        ..GcReport::default()
    };
    records.delete_runs(&removed)?;
    let older = |p: &Path| {
        fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < started)
    };
    for (path, name) in files_below(&store.root().join("ac"))? {
        let wanted = name.parse::<ActionKey>().is_ok_and(|k| keys.contains(&k));
        if !wanted && older(&path) && fs::remove_file(&path).is_ok() {
            report.entries_removed += 1;
        }
    }
    for (path, name) in files_below(&store.root().join("blobs"))? {
        let wanted = name.parse::<Digest>().is_ok_and(|d| blobs.contains(&d));
        if !wanted && older(&path) {
            let size = fs::metadata(&path).map_or(0, |m| m.len());
            if fs::remove_file(&path).is_ok() {
                report.blobs_removed += 1;
                report.bytes_removed += size;
            }
        }
    }
    store.forget_seen();
    // Compiled code and build records of components that are gone.
    for dir in ["compiled", "build/index"] {
        for (path, name) in files_below(&store.root().join(dir))? {
            let digest = match dir {
                "compiled" => name
                    .strip_suffix(".cwasm")
                    .and_then(|d| d.parse::<Digest>().ok()),
                _ => fs::read_to_string(&path)
                    .ok()
                    .and_then(|d| d.trim().parse::<Digest>().ok()),
            };
            if digest.is_some_and(|d| !store.contains(&d)) && older(&path) {
                let _ = fs::remove_file(&path);
            }
        }
    }
    Ok(report)
}

/// Every file below `dir` with its name as the digest it should be: for
/// `blobs/ab/cdef…` the name is `abcdef…`; for other layouts, the file name.
fn files_below(dir: &Path) -> io::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries {
        let e = e?;
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_dir() {
            for (p, n) in files_below(&path)? {
                let joined = if name.len() == 2 && n.len() == 62 {
                    format!("{name}{n}")
                } else {
                    n
                };
                out.push((p, joined));
            }
        } else {
            out.push((path, name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_store_finds_corruption_and_dangling_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let good = store.put_bytes(b"good").unwrap();
        let bad = store.put_bytes(b"bad").unwrap();
        let p = store.blob_path(&bad.digest);
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"evil").unwrap();
        let cache = LocalCache::new(store.clone());
        let gone = Digest::of(b"never stored");
        let m = Manifest {
            format: crate::cache::CACHE_FORMAT,
            outputs: [(
                "o".to_string(),
                Value::Blob {
                    digest: gone,
                    size: 1,
                },
            )]
            .into(),
            stdout: good.digest,
            stderr: good.digest,
            exec_ms: 0,
            peak_memory: 0,
            fuel: None,
            reported: Default::default(),
        };
        let key = ActionKey([7; 32]);
        cache.insert(&key, &m).unwrap();
        let report = verify_store(&store).unwrap();
        assert_eq!(report.blobs, 2);
        assert_eq!(report.entries, 1);
        assert_eq!(
            report.problems,
            [
                StoreProblem::CorruptBlob(bad.digest),
                StoreProblem::MissingBlob { key, blob: gone }
            ]
        );
    }
}
