//! The action cache: a job's result stored under its key. The scheduler
//! knows only [`ActionCache`]; the local, file-backed one lives beside the
//! blobs in the store, and a remote one stacks in front of it.

use crate::store::action::{ActionInputs, CACHE_FORMAT, Manifest};
use crate::store::blobs::Store;
use crate::store::digest::{ActionKey, RunKey};
use serde::{Deserialize, Serialize};
use std::fs;
use std::future::Future;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

/// The directory of run summaries, beside `ac/`.
pub const SUMMARIES: &str = "summaries";

/// What a lookup found: an answer now, or one on its way.
pub enum Lookup {
    /// The result is cached.
    Hit(Manifest),
    /// It is not.
    Miss,
    /// The answer takes a round trip (a remote cache): the scheduler waits
    /// for it in the job's own task, so other jobs go on meanwhile.
    Pending(Pin<Box<dyn Future<Output = Option<Manifest>> + Send>>),
}

/// Every cacheable job's key and result in one run: what a rerun of the
/// same workflow asks for first, so that an unchanged run is answered with
/// one lookup instead of one per job (and a remote one in a handful of
/// round trips, not one per job of a 1,000-deep chain).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`CACHE_FORMAT`].
    pub format: u32,
    /// Each job's action key and manifest, in plan order.
    pub jobs: Vec<(ActionKey, Manifest)>,
}

/// A summary on its way.
pub type SummaryLookup = Pin<Box<dyn Future<Output = Option<Summary>> + Send>>;

/// Where job results are remembered. The scheduler knows only this trait;
/// a remote cache stacks in front of the local one.
pub trait ActionCache: Send + Sync {
    /// The summary of the last run stored under `run`, if any, holding only
    /// entries the cache vouches for (every blob present where it keeps
    /// them). Each is only a candidate: the scheduler uses one only for a
    /// job whose key it computes equal.
    fn summary(&self, run: &RunKey) -> SummaryLookup {
        let _ = run;
        Box::pin(std::future::ready(None))
    }
    /// Remembers a run's summary under `run`.
    fn remember(&self, run: &RunKey, summary: &Summary) -> io::Result<()> {
        let _ = (run, summary);
        Ok(())
    }
    /// The manifest for `key` (whose inputs are `action`), only if every
    /// blob it names is still present where it is kept.
    fn lookup(&self, key: &ActionKey, action: &ActionInputs) -> Lookup;
    /// Remembers a successful result.
    fn insert(&self, key: &ActionKey, action: &ActionInputs, manifest: &Manifest)
    -> io::Result<()>;
}

/// The action cache kept in the store's `ac/` directory, one file per key:
/// the manifest's JSON, then a line with a MAC of the key and the JSON
/// under the store's secret key, so an entry that was damaged or edited
/// (another result swapped in) is a miss, never a wrong hit.
#[derive(Debug, Clone)]
pub struct LocalCache {
    store: Arc<Store>,
    /// The store's secret key, read once (`None`: unreadable, every get misses).
    mac_key: Arc<std::sync::OnceLock<Option<[u8; 32]>>>,
}

impl LocalCache {
    /// A cache over `store`.
    pub fn new(store: Arc<Store>) -> Self {
        LocalCache {
            store,
            mac_key: Arc::default(),
        }
    }

    fn mac(&self, key: &ActionKey, json: &[u8]) -> Option<blake3::Hash> {
        let secret = (*self.mac_key.get_or_init(|| self.store.secret_key().ok()))?;
        let mut h = blake3::Hasher::new_keyed(&secret);
        h.update(b"cairn action cache entry 1\0");
        h.update(&key.0);
        h.update(json);
        Some(h.finalize())
    }

    /// The manifest in an entry's bytes, or why it cannot be trusted.
    pub fn decode(&self, key: &ActionKey, bytes: &[u8]) -> Result<Manifest, &'static str> {
        let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let split = text
            .iter()
            .rposition(|&b| b == b'\n')
            .ok_or("it has no check line")?;
        let (json, mac) = (&text[..split], &text[split + 1..]);
        let expected = self
            .mac(key, json)
            .ok_or("the store's secret key cannot be read")?;
        let mac = std::str::from_utf8(mac)
            .ok()
            .and_then(|m| blake3::Hash::from_hex(m).ok());
        // blake3::Hash compares in constant time.
        if mac != Some(expected) {
            return Err("its check does not match: it was damaged or edited");
        }
        let m: Manifest = serde_json::from_slice(json).map_err(|_| "it is not a manifest")?;
        if m.format != CACHE_FORMAT {
            return Err("it is of another cache format");
        }
        Ok(m)
    }

    fn summary_path(&self, run: &RunKey) -> PathBuf {
        let hex = run.to_hex();
        self.store.root().join(SUMMARIES).join(hex)
    }

    /// Whether every blob a manifest names is in the store.
    pub fn complete(&self, m: &Manifest) -> bool {
        m.format == CACHE_FORMAT && m.digests().iter().all(|d| self.store.contains(d))
    }

    fn path(&self, key: &ActionKey) -> PathBuf {
        let hex = key.to_hex();
        self.store.root().join("ac").join(&hex[..2]).join(&hex[2..])
    }
}

impl LocalCache {
    /// The manifest for `key`, only if every blob it names is present.
    pub fn get(&self, key: &ActionKey) -> Option<Manifest> {
        // Unreadable, torn or edited entries are misses, never errors: the
        // job runs again.
        let bytes = read_small(&self.path(key)).ok()?;
        let m = self.decode(key, &bytes).ok()?;
        self.complete(&m).then_some(m)
    }

    /// The run summary stored under `run`, if it is readable.
    pub fn get_summary(&self, run: &RunKey) -> Option<Summary> {
        // A torn or unreadable summary is no summary: each job looks itself up.
        let bytes = fs::read(self.summary_path(run)).ok()?;
        let s: Summary = serde_json::from_slice(&bytes).ok()?;
        (s.format == CACHE_FORMAT).then_some(s)
    }

    /// Stores a run summary (atomically; not fsynced: losing it costs one
    /// lookup per job on the next run).
    pub fn put_summary(&self, run: &RunKey, summary: &Summary) -> io::Result<()> {
        self.store
            .write_atomic(&self.summary_path(run), &serde_json::to_vec(summary)?)
    }

    /// Remembers a successful result.
    pub fn put(&self, key: &ActionKey, manifest: &Manifest) -> io::Result<()> {
        let path = self.path(key);
        // A rerun (`--no-cache`) that produced the same result keeps the
        // entry: replacing a file costs far more than reading it.
        if let Ok(bytes) = read_small(&path)
            && let Ok(old) = self.decode(key, &bytes)
        {
            if old.same_result(manifest) {
                return Ok(());
            }
            // Renaming over a file makes ext4 write the new one out at once
            // (`auto_da_alloc`); a missing entry is only a miss meanwhile.
            let _ = fs::remove_file(&path);
        }
        // Not fsynced: an entry lost or torn in a crash is a miss on the
        // next run, which is safe; the blobs it names are durable.
        let mut entry = serde_json::to_vec(manifest)?;
        let mac = self
            .mac(key, &entry)
            .ok_or_else(|| io::Error::other("the store's secret key cannot be read"))?;
        entry.push(b'\n');
        entry.extend_from_slice(mac.to_hex().as_bytes());
        entry.push(b'\n');
        self.store.write_atomic(&path, &entry)
    }
}

impl ActionCache for LocalCache {
    fn lookup(&self, key: &ActionKey, _action: &ActionInputs) -> Lookup {
        match self.get(key) {
            Some(m) => Lookup::Hit(m),
            None => Lookup::Miss,
        }
    }

    fn insert(
        &self,
        key: &ActionKey,
        _action: &ActionInputs,
        manifest: &Manifest,
    ) -> io::Result<()> {
        self.put(key, manifest)
    }
}

/// Reads a file of a few hundred bytes: open, read, close. `fs::read`
/// also asks for the file's size first, one system call in six on the
/// path of a cache hit.
fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = fs::File::open(path)?;
    let (mut bytes, mut len) = (vec![0; 1024], 0);
    loop {
        if len == bytes.len() {
            bytes.resize(2 * len, 0);
        }
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(len);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::action::{ActionInputs, SandboxKey, Value};
    use crate::store::digest::Digest;
    use std::collections::BTreeMap;

    fn key(argv: &[&str], inputs: &[(&str, Value)], outputs: &[&str]) -> ActionKey {
        ActionInputs {
            component: Digest::of(b"component"),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            inputs: inputs
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            stdout: None,
            sandbox: SandboxKey::default().profile,
            call: None,
            args: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
        .key()
    }

    #[test]
    fn a_hit_needs_every_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let cache = LocalCache::new(store.clone());
        let out = store.put_bytes(b"out").unwrap();
        let empty = store.put_bytes(b"").unwrap();
        let m = Manifest {
            format: CACHE_FORMAT,
            outputs: [(
                "o".to_string(),
                Value::Blob {
                    digest: out.digest,
                    size: 3,
                },
            )]
            .into(),
            stdout: empty.digest,
            stderr: empty.digest,
            exec_ms: 1,
            peak_memory: 65536,
            fuel: None,
            reported: Default::default(),
        };
        let k = key(&[], &[], &["o"]);
        assert_eq!(cache.get(&k), None);
        cache.put(&k, &m).unwrap();
        assert_eq!(cache.get(&k), Some(m));
        let p = store.blob_path(&out.digest);
        std::fs::remove_file(p).unwrap();
        assert_eq!(cache.get(&k), None);
    }

    #[test]
    fn an_edited_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let cache = LocalCache::new(store.clone());
        let a = store.put_bytes(b"a").unwrap();
        let b = store.put_bytes(b"b").unwrap();
        let m = |d: Digest| Manifest {
            format: CACHE_FORMAT,
            outputs: [("o".to_string(), Value::Blob { digest: d, size: 1 })].into(),
            stdout: d,
            stderr: d,
            exec_ms: 1,
            peak_memory: 0,
            fuel: None,
            reported: Default::default(),
        };
        let k = key(&["x"], &[], &["o"]);
        cache.put(&k, &m(a.digest)).unwrap();
        assert_eq!(cache.get(&k), Some(m(a.digest)));
        // Another result swapped in, its blobs all present: still a miss.
        let path = cache.path(&k);
        let text = std::fs::read_to_string(&path).unwrap();
        let forged = text.replace(&a.digest.to_hex(), &b.digest.to_hex());
        std::fs::write(&path, forged).unwrap();
        assert_eq!(cache.get(&k), None);
        assert!(
            cache
                .decode(&k, std::fs::read(&path).unwrap().as_slice())
                .is_err()
        );
        // The same entry under another key is a miss too.
        let other = key(&["y"], &[], &["o"]);
        assert!(cache.decode(&other, text.as_bytes()).is_err());
        assert!(cache.decode(&k, text.as_bytes()).is_ok());
    }
}
