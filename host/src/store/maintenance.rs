//! Keeping a store honest: re-hashing every blob and checking every cache
//! entry (`cairn store verify`), and removing what no kept run can reach
//! (`cairn store gc`).

use crate::store::blobs::Store;
use crate::store::cache::{LocalCache, SUMMARIES, Summary};
use crate::store::digest::{ActionKey, Digest, RunKey};
use crate::store::records::{RecordError, Records, RunStatus};
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A problem `store verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreProblem {
    /// A blob's bytes no longer match its name.
    CorruptBlob(Digest),
    /// A file in `blobs/` that is not named like a blob.
    StrayFile(PathBuf),
    /// A cache entry that cannot be trusted, and why.
    BadEntry(PathBuf, &'static str),
    /// The run records (`runs.db`) cannot be read, or SQLite finds them
    /// damaged.
    Records(String),
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

/// Re-hashes every blob, checks every cache entry (its check line, and
/// that its blobs exist) and the run records' integrity.
pub fn verify_store(store: &Arc<Store>) -> io::Result<StoreReport> {
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
    // Summaries are hints (each entry is checked again when used), but one
    // that cannot be read is reported like a damaged entry.
    for (path, name) in files_below(&store.root().join(SUMMARIES))? {
        report.entries += 1;
        let readable = name.parse::<RunKey>().is_ok()
            && fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Summary>(&b).ok())
                .is_some();
        if !readable {
            report.problems.push(StoreProblem::BadEntry(
                path,
                "it is not a readable run summary",
            ));
        }
    }
    // Only records that exist: opening makes a new database otherwise.
    if store.root().join("runs.db").exists() {
        let problems = match Records::open(store.root()) {
            Ok(records) => records.check().unwrap_or_else(|e| vec![e.to_string()]),
            Err(e) => vec![e.to_string()],
        };
        report
            .problems
            .extend(problems.into_iter().map(StoreProblem::Records));
    }
    let cache = LocalCache::new(store.clone());
    for (path, name) in files_below(&store.root().join("ac"))? {
        report.entries += 1;
        let entry = match name.parse::<ActionKey>() {
            Err(_) => Err("its name is not an action key"),
            Ok(k) => fs::read(&path)
                .map_err(|_| "it cannot be read")
                .and_then(|bytes| cache.decode(&k, &bytes))
                .map(|m| (k, m)),
        };
        match entry {
            Err(why) => report.problems.push(StoreProblem::BadEntry(path, why)),
            Ok((key, m)) => {
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
        if let Some(m) = cache.get(key) {
            blobs.extend(m.digests());
        }
    }
    let mut report = GcReport {
        runs_kept: kept.len(),
        runs_removed: removed.len(),
        ..GcReport::default()
    };
    records.delete_runs(&removed)?;
    // By ctime, not mtime: a blob's mtime is its seal, set long in the
    // past (see `blobs`), and renaming it into place sets its ctime.
    let older = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(p).is_ok_and(|m| {
            let changed = SystemTime::UNIX_EPOCH
                + Duration::new(
                    m.ctime().max(0) as u64,
                    m.ctime_nsec().clamp(0, 999_999_999) as u32,
                );
            // File times come from the kernel's coarse clock, a tick
            // behind `started`'s: keep a margin.
            changed + Duration::from_millis(50) < started
        })
    };
    for (path, name) in files_below(&store.root().join("ac"))? {
        let wanted = name.parse::<ActionKey>().is_ok_and(|k| keys.contains(&k));
        if !wanted && older(&path) && fs::remove_file(&path).is_ok() {
            report.entries_removed += 1;
        }
    }
    // Summaries are only hints: collected whole (the next run of a kept
    // workflow looks its jobs up one by one and writes a new one).
    for (path, _) in files_below(&store.root().join(SUMMARIES))? {
        if older(&path) && fs::remove_file(&path).is_ok() {
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
    use crate::store::action::{Manifest, Value};

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
            format: crate::store::action::CACHE_FORMAT,
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
        cache.put(&key, &m).unwrap();
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
