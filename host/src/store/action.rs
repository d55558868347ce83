//! What a job is to the cache: the values passed between jobs, everything
//! that determines a job's result ([`ActionInputs`]) and its key, and what a
//! successful job produced ([`Manifest`]). Pure: no I/O, no wasmtime, no
//! tokio; the key's encoding is canonical and versioned.

use crate::store::digest::{ActionKey, Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// A short description: a digest prefix and size, or a list length.
    pub fn describe(&self) -> String {
        match self {
            Value::Blob { digest, size } => format!("{} ({size} B)", short(digest)),
            Value::List(items) => format!("a list of {}", items.len()),
        }
    }

    /// Total bytes of the blobs in this value.
    pub fn size(&self) -> u64 {
        match self {
            Value::Blob { size, .. } => *size,
            Value::List(items) => items.iter().map(Value::size).sum(),
        }
    }

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

/// The sandbox settings that can change what a job computes, as a profile
/// number in the key. Limits are not there: a job that succeeds within a
/// limit gives the same bytes under any larger one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SandboxKey {
    /// Preopens at `/in` and `/out`, no environment, no network; then 1 for
    /// hermetic (fixed clocks, randomness from the key) and 2 for the host's
    /// clocks and randomness.
    pub profile: u32,
}

impl SandboxKey {
    /// The profile of a hermetic or non-hermetic job.
    pub fn new(hermetic: bool) -> Self {
        SandboxKey {
            profile: if hermetic { 1 } else { 2 },
        }
    }
}

impl Default for SandboxKey {
    fn default() -> Self {
        SandboxKey::new(true)
    }
}

/// Everything that determines a command job's result: the key is computed
/// from exactly this, and it is recorded so `cairn why` can say what changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionInputs {
    /// The component's digest.
    pub component: Digest,
    /// argv after `argv[0]`.
    pub argv: Vec<String>,
    /// Declared inputs and their values, by name.
    pub inputs: BTreeMap<String, Value>,
    /// Declared outputs.
    pub outputs: Vec<String>,
    /// The output that keeps standard output, if any.
    pub stdout: Option<String>,
    /// The sandbox profile (see `SandboxKey`).
    pub sandbox: u32,
    /// A typed task's export (`None` for command tasks).
    #[serde(default)]
    pub call: Option<String>,
    /// A typed task's literal arguments, canonical JSON by parameter name.
    /// (Arguments from the store are in `inputs`.)
    #[serde(default)]
    pub args: BTreeMap<String, serde_json::Value>,
    /// Declared secrets by name: `None`, or a store-keyed hash of the value
    /// when the job keys on it. Never the value itself.
    #[serde(default)]
    pub secrets: BTreeMap<String, Option<String>>,
}

impl ActionInputs {
    /// The action key over a canonical, versioned, length-prefixed encoding.
    /// Inputs and outputs are in name order: their order in the file does
    /// not change what the job sees. Nothing from the host enters it.
    pub fn key(&self) -> ActionKey {
        let mut e = Encoder(blake3::Hasher::new());
        e.bytes(b"cairn action");
        e.u64(u64::from(CACHE_FORMAT));
        e.tag(b'c');
        e.bytes(&self.component.0);
        e.tag(b'a');
        e.u64(self.argv.len() as u64);
        for a in &self.argv {
            e.bytes(a.as_bytes());
        }
        e.tag(b'i');
        e.u64(self.inputs.len() as u64);
        for (name, value) in &self.inputs {
            e.bytes(name.as_bytes());
            e.value(value);
        }
        let mut outputs: Vec<&String> = self.outputs.iter().collect();
        outputs.sort();
        e.tag(b'o');
        e.u64(outputs.len() as u64);
        for o in outputs {
            e.bytes(o.as_bytes());
        }
        e.tag(b's');
        match &self.stdout {
            Some(s) => {
                e.tag(1);
                e.bytes(s.as_bytes());
            }
            None => e.tag(0),
        }
        e.tag(b'x');
        e.u64(u64::from(self.sandbox));
        e.tag(b'f');
        match &self.call {
            Some(f) => {
                e.tag(1);
                e.bytes(f.as_bytes());
            }
            None => e.tag(0),
        }
        e.tag(b'p');
        e.u64(self.args.len() as u64);
        for (name, value) in &self.args {
            e.bytes(name.as_bytes());
            // serde_json writes object keys sorted: the text is canonical.
            e.bytes(value.to_string().as_bytes());
        }
        e.tag(b'k');
        e.u64(self.secrets.len() as u64);
        for (name, hash) in &self.secrets {
            e.bytes(name.as_bytes());
            e.bytes(hash.as_deref().unwrap_or_default().as_bytes());
        }
        ActionKey(*e.0.finalize().as_bytes())
    }

    /// How `self` differs from `earlier` (the same job in an earlier run),
    /// one sentence per difference; empty when the keys are equal.
    pub fn differences(&self, earlier: &ActionInputs) -> Vec<String> {
        let mut out = Vec::new();
        if self.component != earlier.component {
            out.push(format!(
                "the component changed: {} → {}",
                short(&earlier.component),
                short(&self.component)
            ));
        }
        for i in 0..self.argv.len().max(earlier.argv.len()) {
            match (earlier.argv.get(i), self.argv.get(i)) {
                (Some(a), Some(b)) if a != b => {
                    out.push(format!("argument {} changed: {a:?} → {b:?}", i + 1))
                }
                (None, Some(b)) => out.push(format!("argument {} was added: {b:?}", i + 1)),
                (Some(a), None) => out.push(format!("argument {} was removed: {a:?}", i + 1)),
                _ => {}
            }
        }
        for (name, v) in &self.inputs {
            match earlier.inputs.get(name) {
                None => out.push(format!("input `{name}` was added")),
                Some(old) if old != v => out.push(format!(
                    "input `{name}` changed: {} → {}",
                    old.describe(),
                    v.describe()
                )),
                Some(_) => {}
            }
        }
        for name in earlier
            .inputs
            .keys()
            .filter(|n| !self.inputs.contains_key(*n))
        {
            out.push(format!("input `{name}` was removed"));
        }
        let declared = |a: &ActionInputs| {
            let mut o: Vec<String> = a.outputs.iter().chain(&a.stdout).cloned().collect();
            o.sort();
            o
        };
        if declared(self) != declared(earlier) {
            out.push(format!(
                "declared outputs changed: {:?} → {:?}",
                declared(earlier),
                declared(self)
            ));
        }
        if self.call != earlier.call {
            out.push(format!(
                "the function called changed: {:?} → {:?}",
                earlier.call, self.call
            ));
        }
        for (name, v) in &self.args {
            match earlier.args.get(name) {
                Some(old) if old == v => {}
                Some(old) => out.push(format!("argument `{name}` changed: {old} → {v}")),
                None => out.push(format!("argument `{name}` was added: {v}")),
            }
        }
        for name in earlier.args.keys().filter(|n| !self.args.contains_key(*n)) {
            out.push(format!("argument `{name}` was removed"));
        }
        if self.sandbox != earlier.sandbox {
            out.push(format!(
                "the sandbox profile changed: {} → {}",
                earlier.sandbox, self.sandbox
            ));
        }
        // By name only: the recorded hash is the value's, and never shown.
        for (name, hash) in &self.secrets {
            match (earlier.secrets.get(name), hash) {
                (None, _) => out.push(format!("secret `{name}` was added")),
                (Some(None), Some(_)) => {
                    out.push(format!("secret `{name}` is now part of the key"))
                }
                (Some(Some(_)), None) => {
                    out.push(format!("secret `{name}` is no longer part of the key"))
                }
                (Some(Some(old)), Some(new)) if old != new => {
                    out.push(format!("secret `{name}`'s value changed"))
                }
                _ => {}
            }
        }
        for name in earlier
            .secrets
            .keys()
            .filter(|n| !self.secrets.contains_key(*n))
        {
            out.push(format!("secret `{name}` was removed"));
        }
        out
    }
}

fn short(d: &Digest) -> String {
    d.to_hex()[..12].to_string()
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
    /// `CACHE_FORMAT` at the time of writing.
    pub format: u32,
    /// Output name → value.
    pub outputs: BTreeMap<String, Value>,
    /// Captured standard output.
    pub stdout: Digest,
    /// Captured standard error.
    pub stderr: Digest,
    /// How long the execution took, in milliseconds.
    pub exec_ms: u64,
    /// The largest linear memory the job asked for, in bytes.
    #[serde(default)]
    pub peak_memory: u64,
    /// Fuel consumed, when the job was metered.
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Metrics and labels a typed task reported.
    #[serde(default)]
    pub reported: Reported,
}

impl Manifest {
    /// The same outputs, logs and reports: only how it ran (time, memory,
    /// fuel) may differ.
    pub fn same_result(&self, other: &Manifest) -> bool {
        self.format == other.format
            && self.outputs == other.outputs
            && self.stdout == other.stdout
            && self.stderr == other.stderr
            && self.reported == other.reported
    }

    /// Every blob the manifest names, each once.
    pub fn digests(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = self.outputs.values().flat_map(Value::digests).collect();
        out.push(self.stdout);
        out.push(self.stderr);
        // Each once: most jobs' two logs are the same (empty) blob, and a
        // cache hit checks every digest on disk.
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// What a typed task told the host about itself, besides its result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reported {
    /// `metric` calls: (name, step, value).
    pub metrics: Vec<(String, Option<u64>, f64)>,
    /// `label` calls, last value per key.
    pub labels: BTreeMap<String, String>,
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
        action(argv, inputs, outputs).key()
    }

    fn action(argv: &[&str], inputs: &[(&str, Value)], outputs: &[&str]) -> ActionInputs {
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
    fn differences_name_what_changed() {
        let before = action(
            &["--top", "3"],
            &[("a", blob(b"1")), ("b", blob(b"2"))],
            &["o"],
        );
        assert!(before.differences(&before).is_empty());
        let after = action(
            &["--top", "4"],
            &[("a", blob(b"1")), ("c", blob(b"2"))],
            &["o"],
        );
        assert_eq!(
            after.differences(&before),
            [
                "argument 2 changed: \"3\" → \"4\"",
                "input `c` was added",
                "input `b` was removed"
            ]
        );
    }
}
