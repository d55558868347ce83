//! The action cache: a job's result stored under a key computed from exactly
//! what went into it. Key computation is pure; the file-backed cache lives
//! beside the blobs in the store.

use crate::digest::{ActionKey, Digest};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// Bumped whenever the key encoding or the manifest format changes, so old
/// entries are simply never found again.
pub const CACHE_FORMAT: u32 = 1;

/// A value passed between jobs: a blob, or a list of values (a list output
/// written as a directory, or a fan-in over a matrix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Value {
    /// One blob.
    Blob {
        /// Its digest.
        digest: Digest,
        /// Its size in bytes.
        size: u64,
    },
    /// An ordered list.
    List(Vec<Value>),
}

impl Value {
    /// Every blob digest in this value.
    pub fn digests(&self) -> Vec<Digest> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<Digest>) {
        match self {
            Value::Blob { digest, .. } => out.push(*digest),
            Value::List(items) => items.iter().for_each(|v| v.collect(out)),
        }
    }
}

/// The sandbox settings that can change what a job computes. Limits are not
/// here: a job that succeeds within a limit gives the same bytes under any
/// larger one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SandboxKey {
    /// The version of the sandbox's observable behaviour (preopens at
    /// `/in` and `/out`, no environment, no network).
    pub profile: u32,
}

impl Default for SandboxKey {
    fn default() -> Self {
        SandboxKey { profile: 1 }
    }
}

/// Everything that determines a command job's result.
#[derive(Debug, Clone)]
pub struct KeyInputs<'a> {
    /// The component's digest.
    pub component: Digest,
    /// argv after argv[0].
    pub argv: &'a [String],
    /// Declared inputs and their values.
    pub inputs: &'a [(String, Value)],
    /// Declared outputs.
    pub outputs: &'a [String],
    /// The output that keeps standard output, if any.
    pub stdout: Option<&'a str>,
    /// Sandbox settings.
    pub sandbox: SandboxKey,
}

/// Computes a job's action key over a canonical, versioned, length-prefixed
/// encoding. Inputs and outputs are sorted by name: their order in the file
/// does not change what the job sees. Nothing from the host enters it.
pub fn action_key(k: &KeyInputs<'_>) -> ActionKey {
    let mut e = Encoder(blake3::Hasher::new());
    e.bytes(b"cairn action");
    e.u64(u64::from(CACHE_FORMAT));
    e.tag(b'c');
    e.bytes(&k.component.0);
    e.tag(b'a');
    e.u64(k.argv.len() as u64);
    for a in k.argv {
        e.bytes(a.as_bytes());
    }
    let mut inputs: Vec<&(String, Value)> = k.inputs.iter().collect();
    inputs.sort_by(|a, b| a.0.cmp(&b.0));
    e.tag(b'i');
    e.u64(inputs.len() as u64);
    for (name, value) in inputs {
        e.bytes(name.as_bytes());
        e.value(value);
    }
    let mut outputs: Vec<&String> = k.outputs.iter().collect();
    outputs.sort();
    e.tag(b'o');
    e.u64(outputs.len() as u64);
    for o in outputs {
        e.bytes(o.as_bytes());
    }
    e.tag(b's');
    match k.stdout {
        Some(s) => {
            e.tag(1);
            e.bytes(s.as_bytes());
        }
        None => e.tag(0),
    }
    e.tag(b'x');
    e.u64(u64::from(k.sandbox.profile));
    ActionKey(*e.0.finalize().as_bytes())
}

struct Encoder(blake3::Hasher);

impl Encoder {
    fn tag(&mut self, t: u8) {
        self.0.update(&[t]);
    }
    fn u64(&mut self, n: u64) {
        self.0.update(&n.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.update(b);
    }
    fn value(&mut self, v: &Value) {
        match v {
            Value::Blob { digest, .. } => {
                self.tag(b'b');
                self.0.update(&digest.0);
            }
            Value::List(items) => {
                self.tag(b'l');
                self.u64(items.len() as u64);
                items.iter().for_each(|i| self.value(i));
            }
        }
    }
}

/// What a successful job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`CACHE_FORMAT`] at the time of writing.
    pub format: u32,
    /// Output name → value.
    pub outputs: BTreeMap<String, Value>,
    /// Captured standard output.
    pub stdout: Digest,
    /// Captured standard error.
    pub stderr: Digest,
    /// How long the execution took, in milliseconds.
    pub exec_ms: u64,
}

impl Manifest {
    /// Every blob the manifest names.
    pub fn digests(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = self.outputs.values().flat_map(Value::digests).collect();
        out.push(self.stdout);
        out.push(self.stderr);
        out
    }
}

/// Where job results are remembered. The scheduler knows only this trait;
/// a remote cache can stand in front of or behind the local one.
pub trait ActionCache: Send + Sync {
    /// The manifest for `key`, only if every blob it names is still present.
    fn lookup(&self, key: &ActionKey) -> Option<Manifest>;
    /// Remembers a successful result.
    fn insert(&self, key: &ActionKey, manifest: &Manifest) -> io::Result<()>;
}

/// The action cache kept in the store's `ac/` directory, one JSON file per key.
#[derive(Debug, Clone)]
pub struct LocalCache {
    store: Arc<Store>,
}

impl LocalCache {
    /// A cache over `store`.
    pub fn new(store: Arc<Store>) -> Self {
        LocalCache { store }
    }

    fn path(&self, key: &ActionKey) -> PathBuf {
        let hex = key.to_hex();
        self.store.root().join("ac").join(&hex[..2]).join(&hex[2..])
    }
}

impl ActionCache for LocalCache {
    fn lookup(&self, key: &ActionKey) -> Option<Manifest> {
        // Unreadable or torn entries are misses, never errors: the job runs again.
        let bytes = fs::read(self.path(key)).ok()?;
        let m: Manifest = serde_json::from_slice(&bytes).ok()?;
        (m.format == CACHE_FORMAT && m.digests().iter().all(|d| self.store.contains(d)))
            .then_some(m)
    }

    fn insert(&self, key: &ActionKey, manifest: &Manifest) -> io::Result<()> {
        let path = self.path(key);
        fs::create_dir_all(path.parent().expect("cache paths have a parent"))?;
        let mut tmp = tempfile::NamedTempFile::new_in(self.store.root().join("tmp"))?;
        tmp.write_all(&serde_json::to_vec(manifest)?)?;
        // Not fsynced: an entry lost or torn in a crash is a miss on the
        // next run, which is safe; the blobs it names are durable.
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(b: &[u8]) -> Value {
        Value::Blob {
            digest: Digest::of(b),
            size: b.len() as u64,
        }
    }

    fn key(argv: &[&str], inputs: &[(&str, Value)], outputs: &[&str]) -> ActionKey {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let inputs: Vec<(String, Value)> = inputs
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        let outputs: Vec<String> = outputs.iter().map(|s| s.to_string()).collect();
        action_key(&KeyInputs {
            component: Digest::of(b"component"),
            argv: &argv,
            inputs: &inputs,
            outputs: &outputs,
            stdout: None,
            sandbox: SandboxKey::default(),
        })
    }

    #[test]
    fn keys_depend_on_exactly_what_goes_in() {
        let base = key(
            &["a", "b"],
            &[("x", blob(b"1")), ("y", blob(b"2"))],
            &["o", "p"],
        );
        // Declaration order of inputs and outputs does not matter.
        assert_eq!(
            base,
            key(
                &["a", "b"],
                &[("y", blob(b"2")), ("x", blob(b"1"))],
                &["p", "o"]
            )
        );
        // Everything else does.
        assert_ne!(
            base,
            key(
                &["ab"],
                &[("x", blob(b"1")), ("y", blob(b"2"))],
                &["o", "p"]
            )
        );
        assert_ne!(
            base,
            key(
                &["a", "b"],
                &[("x", blob(b"1")), ("y", blob(b"3"))],
                &["o", "p"]
            )
        );
        assert_ne!(
            base,
            key(
                &["a", "b"],
                &[("x", blob(b"1")), ("z", blob(b"2"))],
                &["o", "p"]
            )
        );
        assert_ne!(
            base,
            key(&["a", "b"], &[("x", blob(b"1")), ("y", blob(b"2"))], &["o"])
        );
        let list = Value::List(vec![blob(b"1"), blob(b"2")]);
        assert_ne!(
            key(&[], &[("x", list)], &[]),
            key(&[], &[("x", blob(b"1"))], &[])
        );
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
        };
        let k = key(&[], &[], &["o"]);
        assert_eq!(cache.lookup(&k), None);
        cache.insert(&k, &m).unwrap();
        assert_eq!(cache.lookup(&k), Some(m));
        let p = store.blob_path(&out.digest);
        std::fs::remove_file(p).unwrap();
        assert_eq!(cache.lookup(&k), None);
    }
}
