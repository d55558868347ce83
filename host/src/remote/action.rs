//! A Cairn job as a REAPI `Action`, and its result as an `ActionResult`.
//!
//! The input root of a job's action is
//!
//! ```text
//! component.wasm        the component
//! cairn.json            the job: its ActionInputs (and, to execute, its name and limits)
//! in/<name>             each input blob; a list input is a directory in/<name>/0, 1, …
//! ```
//!
//! and its `Command` is `cairn action` in that directory, with output paths
//! `cairn.out.json` (the job's manifest or failure, with every blob's names)
//! and `out/<name>`. Platform properties name the runtime. So any REAPI
//! server can cache it, and any REAPI worker with `cairn` installed can
//! execute it. Everything here is a pure function of the job: the same job
//! gives the same action digest on every machine.
//!
//! The cache is keyed by the action of [`ActionInputs`] alone (no name, no
//! limits: they do not change a successful result, as locally). Executing
//! remotely sends a second action that adds them; its result is then also
//! stored under the key action.

use crate::run::executor::ExecLimits;
use crate::run::outcome::Failure;
use crate::store::action::{ActionInputs, CACHE_FORMAT, Manifest, Value};
use crate::store::digest::Digest;
use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The component's file in the input root.
pub const COMPONENT_FILE: &str = "component.wasm";
/// The job's description in the input root.
pub const SPEC_FILE: &str = "cairn.json";
/// What the job produced, among its outputs.
pub const RESULT_FILE: &str = "cairn.out.json";
/// Platform properties every Cairn action carries: a worker must offer them.
pub const PLATFORM: [(&str, &str); 2] = [("cairn-format", "1"), ("cairn-runtime", "wasm32-wasip2")];

/// `cairn.json`: the job as the worker needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// [`CACHE_FORMAT`].
    pub format: u32,
    /// What the key is computed from; blob digests are blake3.
    pub action: ActionInputs,
    /// To execute: the job's name (`argv[0]`) and limits. Absent in the
    /// key action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunSettings>,
}

/// What an execution needs beyond the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// The job's name, `argv[0]` inside the sandbox.
    pub name: String,
    /// Its limits.
    pub limits: ExecLimits,
}

/// `cairn.out.json`: what a job produced, or why it failed, with the
/// remote name of every blob it names, so that a client can fetch any of
/// them without another lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultFile {
    /// [`CACHE_FORMAT`].
    pub format: u32,
    /// The manifest of a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
    /// The failure, otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Remote names: blake3 hex → (remote hash, size).
    pub names: BTreeMap<Digest, (String, u64)>,
}

/// A blob in an action's tree: where it goes, and its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Its path in the tree (`in/text`, `out/counts/0`).
    pub path: String,
    /// Its local name.
    pub blake3: Digest,
    /// Its remote name.
    pub remote: re::Digest,
}

/// An encoded action: its digest, and every blob that makes it up (protos
/// and the job's file bytes in memory, and the store blobs it refers to).
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The `Action`'s digest: the remote cache key.
    pub digest: re::Digest,
    /// Serialised messages and files: `Action`, `Command`, `Directory`s, `cairn.json`.
    pub messages: Vec<(re::Digest, Vec<u8>)>,
    /// Store blobs the input root names: the component and every input.
    pub blobs: Vec<Placed>,
}

impl Encoded {
    /// The action's digest, and what uploading it sends: its messages and
    /// the store blobs its input root names.
    pub fn into_uploads(self) -> (re::Digest, Vec<(re::Digest, super::client::Source)>) {
        use super::client::Source;
        let mut blobs: Vec<(re::Digest, Source)> = self
            .messages
            .into_iter()
            .map(|(d, b)| (d, Source::Bytes(std::sync::Arc::new(b))))
            .collect();
        blobs.extend(
            self.blobs
                .into_iter()
                .map(|p| (p.remote, Source::Stored(p.blake3))),
        );
        (self.digest, blobs)
    }
}

/// The environment variable that tells `cairn action` how the server names
/// blobs (`sha256` or `blake3`), for the names in its `cairn.out.json`.
pub const DIGEST_ENV: &str = "CAIRN_DIGEST_FUNCTION";

/// How blobs are named on the server.
pub trait Namer {
    /// The digest function's name: `sha256` or `blake3`.
    fn function(&self) -> &'static str;
    /// The remote digest of bytes in hand.
    fn of_bytes(&self, bytes: &[u8]) -> re::Digest;
    /// The remote digest of a stored blob.
    fn of_blob(&self, d: &Digest) -> Result<re::Digest, String>;
}

fn platform() -> re::Platform {
    re::Platform {
        properties: PLATFORM
            .iter()
            .map(|(k, v)| re::platform::Property {
                name: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
    }
}

/// The `Command` of every job that declares these outputs. The platform
/// is on the `Action` (REAPI 2.2) and, for older servers, on the `Command`.
#[allow(deprecated)]
pub fn command(outputs: &[String], function: &str) -> re::Command {
    let mut paths: Vec<String> = outputs.iter().map(|o| format!("out/{o}")).collect();
    paths.push(RESULT_FILE.to_string());
    paths.sort();
    paths.dedup();
    re::Command {
        arguments: vec!["cairn".into(), "action".into()],
        environment_variables: vec![re::command::EnvironmentVariable {
            name: DIGEST_ENV.into(),
            value: function.into(),
        }],
        output_paths: paths,
        platform: Some(platform()),
        ..Default::default()
    }
}

/// A directory being built: files and subdirectories by name.
#[derive(Default)]
struct Tree {
    files: BTreeMap<String, re::Digest>,
    dirs: BTreeMap<String, Tree>,
}

impl Tree {
    fn put(&mut self, path: &[&str], digest: re::Digest) {
        match path {
            [file] => {
                self.files.insert(file.to_string(), digest);
            }
            [dir, rest @ ..] => self
                .dirs
                .entry(dir.to_string())
                .or_default()
                .put(rest, digest),
            [] => {}
        }
    }

    /// Serialises bottom-up (names sorted, as REAPI requires), pushing
    /// every directory message, and returns this one's digest.
    fn encode(&self, namer: &dyn Namer, out: &mut Vec<(re::Digest, Vec<u8>)>) -> re::Digest {
        let dir = re::Directory {
            files: self
                .files
                .iter()
                .map(|(name, d)| re::FileNode {
                    name: name.clone(),
                    digest: Some(d.clone()),
                    ..Default::default()
                })
                .collect(),
            directories: self
                .dirs
                .iter()
                .map(|(name, t)| re::DirectoryNode {
                    name: name.clone(),
                    digest: Some(t.encode(namer, out)),
                })
                .collect(),
            ..Default::default()
        };
        let bytes = dir.encode_to_vec();
        let d = namer.of_bytes(&bytes);
        out.push((d.clone(), bytes));
        d
    }
}

fn place(prefix: &str, value: &Value, out: &mut Vec<(String, Digest)>) {
    match value {
        Value::Blob { digest, .. } => out.push((prefix.to_string(), *digest)),
        Value::List(items) => {
            for (i, v) in items.iter().enumerate() {
                place(&format!("{prefix}/{i}"), v, out);
            }
        }
    }
}

/// Every blob of `outputs`, at `out/<name>` (lists as `out/<name>/<i>`).
pub fn output_paths(outputs: &BTreeMap<String, Value>) -> Vec<(String, Digest)> {
    let mut out = Vec::new();
    for (name, v) in outputs {
        place(&format!("out/{name}"), v, &mut out);
    }
    out
}

/// Encodes a job's action: the key action when `run` is `None`, the action
/// to execute otherwise.
pub fn encode(
    action: &ActionInputs,
    run: Option<RunSettings>,
    namer: &dyn Namer,
) -> Result<Encoded, String> {
    let mut messages = Vec::new();
    let mut tree = Tree::default();
    let mut blobs = Vec::new();
    let mut files = vec![(COMPONENT_FILE.to_string(), action.component)];
    for (name, v) in &action.inputs {
        place(&format!("in/{name}"), v, &mut files);
    }
    for (path, d) in files {
        let remote = namer.of_blob(&d)?;
        let parts: Vec<&str> = path.split('/').collect();
        tree.put(&parts, remote.clone());
        blobs.push(Placed {
            path,
            blake3: d,
            remote,
        });
    }
    // The action to execute is not a cache key (it names the job and its
    // limits): its result is stored under the key action instead.
    let do_not_cache = run.is_some();
    let spec = Spec {
        format: CACHE_FORMAT,
        action: action.clone(),
        run,
    };
    let spec_bytes = serde_json::to_vec(&spec).expect("serialisable");
    let spec_digest = namer.of_bytes(&spec_bytes);
    tree.put(&[SPEC_FILE], spec_digest.clone());
    messages.push((spec_digest, spec_bytes));
    let root = tree.encode(namer, &mut messages);
    let mut outputs = action.outputs.clone();
    outputs.extend(action.stdout.clone());
    let command = command(&outputs, namer.function()).encode_to_vec();
    let command_digest = namer.of_bytes(&command);
    messages.push((command_digest.clone(), command));
    let a = re::Action {
        command_digest: Some(command_digest),
        input_root_digest: Some(root),
        platform: Some(platform()),
        do_not_cache,
        ..Default::default()
    }
    .encode_to_vec();
    let digest = namer.of_bytes(&a);
    messages.push((digest.clone(), a));
    Ok(Encoded {
        digest,
        messages,
        blobs,
    })
}

/// The file a run summary's action produces.
pub const SUMMARY_FILE: &str = "cairn.summary.json";

/// A run summary as stored remotely: the jobs, and the remote name of
/// every blob their manifests name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteSummary {
    /// [`CACHE_FORMAT`].
    pub format: u32,
    /// Each job's key and manifest.
    pub jobs: Vec<(crate::store::digest::ActionKey, Manifest)>,
    /// Remote names: blake3 → (remote hash, size).
    pub names: BTreeMap<Digest, (String, u64)>,
}

/// The action a run summary is stored under: `cairn summary` over a
/// `run.key` file holding the run key. Not meant to be executed; it makes
/// the summary an ordinary action-cache entry that any REAPI server keeps.
pub fn summary_action(run: &crate::store::digest::RunKey, namer: &dyn Namer) -> Encoded {
    let mut messages = Vec::new();
    let key = run.to_hex().into_bytes();
    let key_digest = namer.of_bytes(&key);
    messages.push((key_digest.clone(), key));
    let mut tree = Tree::default();
    tree.put(&["run.key"], key_digest);
    let root = tree.encode(namer, &mut messages);
    #[allow(deprecated)]
    let command = re::Command {
        arguments: vec!["cairn".into(), "summary".into()],
        output_paths: vec![SUMMARY_FILE.into()],
        platform: Some(platform()),
        ..Default::default()
    }
    .encode_to_vec();
    let command_digest = namer.of_bytes(&command);
    messages.push((command_digest.clone(), command));
    let a = re::Action {
        command_digest: Some(command_digest),
        input_root_digest: Some(root),
        platform: Some(platform()),
        ..Default::default()
    }
    .encode_to_vec();
    let digest = namer.of_bytes(&a);
    messages.push((digest.clone(), a));
    Encoded {
        digest,
        messages,
        blobs: Vec::new(),
    }
}

/// The `ActionResult` of a job, pointing at its outputs, its logs and its
/// result file (whose bytes and digest are returned too).
pub fn action_result(
    result: &ResultFile,
    namer: &dyn Namer,
) -> Result<(re::ActionResult, (re::Digest, Vec<u8>)), String> {
    let bytes = serde_json::to_vec(result).expect("serialisable");
    let file_digest = namer.of_bytes(&bytes);
    let remote = |d: &Digest| -> Result<re::Digest, String> {
        let (hash, size) = result
            .names
            .get(d)
            .ok_or_else(|| format!("blob {d} has no remote name"))?;
        Ok(re::Digest {
            hash: hash.clone(),
            size_bytes: *size as i64,
        })
    };
    let mut files = vec![re::OutputFile {
        path: RESULT_FILE.into(),
        digest: Some(file_digest.clone()),
        ..Default::default()
    }];
    let (logs, exit_code) = match (&result.manifest, &result.failure) {
        (Some(m), _) => {
            for (path, d) in output_paths(&m.outputs) {
                files.push(re::OutputFile {
                    path,
                    digest: Some(remote(&d)?),
                    ..Default::default()
                });
            }
            ((Some(m.stdout), Some(m.stderr)), 0)
        }
        (None, Some(f)) => ((f.stdout, f.stderr), 1),
        (None, None) => ((None, None), 1),
    };
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let ar = re::ActionResult {
        output_files: files,
        exit_code,
        stdout_digest: logs.0.as_ref().map(remote).transpose()?,
        stderr_digest: logs.1.as_ref().map(remote).transpose()?,
        ..Default::default()
    };
    Ok((ar, (file_digest, bytes)))
}

/// The result file's digest in an `ActionResult`, if it names one.
pub fn result_file(ar: &re::ActionResult) -> Option<&re::OutputFile> {
    ar.output_files.iter().find(|f| f.path == RESULT_FILE)
}

/// Decodes and checks a result file's bytes.
pub fn decode_result(bytes: &[u8]) -> Result<ResultFile, String> {
    let r: ResultFile =
        serde_json::from_slice(bytes).map_err(|e| format!("unreadable {RESULT_FILE}: {e}"))?;
    if r.format != CACHE_FORMAT {
        return Err(format!(
            "{RESULT_FILE} is of cache format {}, this cairn reads {CACHE_FORMAT}",
            r.format
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::action::SandboxKey;
    use crate::store::digest::Sha256;

    struct Sha;
    impl Namer for Sha {
        fn function(&self) -> &'static str {
            "sha256"
        }
        fn of_bytes(&self, bytes: &[u8]) -> re::Digest {
            re::Digest {
                hash: Sha256::of(bytes).to_hex(),
                size_bytes: bytes.len() as i64,
            }
        }
        fn of_blob(&self, d: &Digest) -> Result<re::Digest, String> {
            Ok(re::Digest {
                hash: format!("sha-of-{}", &d.to_hex()[..8]),
                size_bytes: 1,
            })
        }
    }

    fn action(arg: &str) -> ActionInputs {
        ActionInputs {
            component: Digest::of(b"component"),
            argv: vec![arg.to_string()],
            inputs: [
                (
                    "text".to_string(),
                    Value::Blob {
                        digest: Digest::of(b"t"),
                        size: 1,
                    },
                ),
                (
                    "parts".to_string(),
                    Value::List(vec![
                        Value::Blob {
                            digest: Digest::of(b"a"),
                            size: 1,
                        },
                        Value::Blob {
                            digest: Digest::of(b"b"),
                            size: 1,
                        },
                    ]),
                ),
            ]
            .into(),
            outputs: vec!["counts".into()],
            stdout: None,
            sandbox: SandboxKey::default().profile,
            call: None,
            args: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    #[test]
    fn the_same_job_is_the_same_action_and_any_change_is_another() {
        let a = encode(&action("x"), None, &Sha).unwrap();
        let b = encode(&action("x"), None, &Sha).unwrap();
        assert_eq!(a.digest, b.digest);
        assert_ne!(a.digest, encode(&action("y"), None, &Sha).unwrap().digest);
        let run = RunSettings {
            name: "count".into(),
            limits: ExecLimits::default(),
        };
        assert_ne!(
            a.digest,
            encode(&action("x"), Some(run), &Sha).unwrap().digest
        );
        let paths: Vec<&str> = a.blobs.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["component.wasm", "in/parts/0", "in/parts/1", "in/text"]
        );
    }

    #[test]
    fn the_input_root_is_a_valid_sorted_tree() {
        let e = encode(&action("x"), None, &Sha).unwrap();
        let action = re::Action::decode(&e.messages.last().unwrap().1[..]).unwrap();
        let root_digest = action.input_root_digest.unwrap();
        let find = |d: &re::Digest| {
            e.messages
                .iter()
                .find(|(m, _)| m == d)
                .map(|(_, b)| re::Directory::decode(&b[..]).unwrap())
                .unwrap()
        };
        let root = find(&root_digest);
        let names: Vec<&str> = root.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, [SPEC_FILE, COMPONENT_FILE], "sorted by name");
        assert_eq!(root.directories[0].name, "in");
        let input = find(root.directories[0].digest.as_ref().unwrap());
        assert_eq!(input.files[0].name, "text");
        assert_eq!(input.directories[0].name, "parts");
        let command = e
            .messages
            .iter()
            .find(|(d, _)| Some(d) == action.command_digest.as_ref())
            .map(|(_, b)| re::Command::decode(&b[..]).unwrap())
            .unwrap();
        assert_eq!(command.arguments, ["cairn", "action"]);
        assert_eq!(command.output_paths, [RESULT_FILE, "out/counts"]);
    }
}
