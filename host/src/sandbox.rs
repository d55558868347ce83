//! The sandbox: the one module that grants a job access to files. A job sees
//! exactly its read-only inputs at `/in`, a writable `/out`, its arguments,
//! and nothing else: no environment, no network, no other files.

use crate::cache::Value;
use crate::digest::Digest;
use crate::outcome::{Failure, FailureKind};
use crate::store::Store;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use wasmtime_wasi::cli::OutputFile;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// A job's private directory in the store's scratch space, removed on drop:
/// `in/` (inputs, hard-linked from the store), `out/`, and the captured
/// `stdout` and `stderr`.
#[derive(Debug)]
pub struct JobDir {
    dir: tempfile::TempDir,
}

/// What a finished job left behind.
#[derive(Debug)]
pub struct Collected {
    /// Declared outputs, now in the store.
    pub outputs: BTreeMap<String, Value>,
    /// Standard output, in the store.
    pub stdout: Digest,
    /// Standard error, in the store.
    pub stderr: Digest,
}

impl JobDir {
    /// Creates the directory and links each input into `in/`: a blob as the
    /// file `in/<name>`, a list as the directory `in/<name>/` holding `0`, `1`, ….
    pub fn create(store: &Store, inputs: &BTreeMap<String, Value>) -> io::Result<JobDir> {
        let dir = store.scratch("job-")?;
        let job = JobDir { dir };
        fs::create_dir(job.in_dir())?;
        fs::create_dir(job.out_dir())?;
        for (name, value) in inputs {
            stage(store, value, &job.in_dir().join(name))?;
        }
        Ok(job)
    }

    fn in_dir(&self) -> PathBuf {
        self.dir.path().join("in")
    }

    fn out_dir(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// The WASI context for this job. Secure by default: stdin closed, no
    /// environment variables, no sockets or name lookups, and only the two
    /// preopens below. `program` is argv[0].
    pub fn wasi(&self, program: &str, argv: &[String]) -> io::Result<WasiCtx> {
        let stdout = File::create(self.dir.path().join("stdout"))?;
        let stderr = File::create(self.dir.path().join("stderr"))?;
        let mut b = WasiCtxBuilder::new();
        b.arg(program)
            .args(argv)
            .stdout(OutputFile::new(stdout))
            .stderr(OutputFile::new(stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            // Small files: doing the I/O on the job's own thread beats a
            // round trip through tokio's blocking pool.
            .allow_blocking_current_thread(true);
        // Absolute guest paths: some toolchains (Go) resolve absolute paths
        // against preopens but not relative ones against `.`.
        b.preopened_dir(self.in_dir(), "/in", FsPerms::ReadOnly)
            .map_err(io::Error::other)?;
        b.preopened_dir(self.out_dir(), "/out", FsPerms::ReadWrite)
            .map_err(io::Error::other)?;
        Ok(b.build())
    }

    /// Moves the captured stdout and stderr into the store. Called on every
    /// path, so a failed job keeps its log.
    pub fn logs(&self, store: &Store) -> io::Result<(Digest, Digest)> {
        let take = |name: &str| -> io::Result<Digest> {
            let p = self.dir.path().join(name);
            if p.exists() {
                Ok(store.put_owned_file(&p)?.digest)
            } else {
                Ok(store.put_bytes(b"")?.digest)
            }
        };
        Ok((take("stdout")?, take("stderr")?))
    }

    /// Collects the declared outputs from `out/` into the store, never
    /// following links the job may have planted. `stdout` names the output
    /// that keeps standard output, if any.
    pub fn collect(
        &self,
        store: &Store,
        outputs: &[String],
        stdout: Option<&str>,
    ) -> Result<Collected, Failure> {
        let mut values = BTreeMap::new();
        for name in outputs {
            let v = collect_one(store, &self.out_dir().join(name), name)?;
            values.insert(name.clone(), v);
        }
        let (out, err) = self
            .logs(store)
            .map_err(|e| Failure::host("storing the job's log", e))?;
        if let Some(name) = stdout {
            let size = fs::metadata(store.blob_path(&out))
                .map_err(|e| Failure::host("reading stdout", e))?
                .len();
            values.insert(name.to_string(), Value::Blob { digest: out, size });
        }
        Ok(Collected {
            outputs: values,
            stdout: out,
            stderr: err,
        })
    }
}

fn stage(store: &Store, value: &Value, dest: &Path) -> io::Result<()> {
    match value {
        Value::Blob { digest, .. } => store.materialize(digest, dest),
        Value::List(items) => {
            fs::create_dir(dest)?;
            for (i, item) in items.iter().enumerate() {
                stage(store, item, &dest.join(i.to_string()))?;
            }
            Ok(())
        }
    }
}

fn collect_one(store: &Store, path: &Path, what: &str) -> Result<Value, Failure> {
    let bad = |msg: String| Failure::new(FailureKind::BadOutput, msg);
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Failure::new(
                FailureKind::MissingOutput,
                format!("declared output `{what}` was not written to /out/{what}"),
            ));
        }
        Err(e) => return Err(Failure::host(&format!("reading output `{what}`"), e)),
    };
    let ft = meta.file_type();
    if ft.is_file() {
        return store
            .put_owned_file(path)
            .map(|s| Value::Blob {
                digest: s.digest,
                size: s.size,
            })
            .map_err(|e| Failure::host(&format!("storing output `{what}`"), e));
    }
    if !ft.is_dir() {
        return Err(bad(format!(
            "output /out/{what} is not a regular file or directory (symbolic links are not followed)"
        )));
    }
    let mut names: Vec<String> = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| Failure::host("listing a list output", e))? {
        let entry = entry.map_err(|e| Failure::host("listing a list output", e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    let mut indexed: Vec<(usize, String)> = names
        .into_iter()
        .map(|n| match n.parse::<usize>() {
            Ok(i) if i.to_string() == n => Ok((i, n)),
            _ => Err(bad(format!(
                "list output /out/{what}/ holds `{n}`; a list holds only files named 0, 1, 2, …"
            ))),
        })
        .collect::<Result<_, _>>()?;
    indexed.sort();
    if let Some((pos, _)) = indexed.iter().enumerate().find(|(pos, (i, _))| pos != i) {
        return Err(bad(format!(
            "list output /out/{what}/ has no element {pos}; elements must be numbered 0 to n-1"
        )));
    }
    let items = indexed
        .into_iter()
        .map(|(_, n)| collect_one(store, &path.join(&n), &format!("{what}/{n}")))
        .collect::<Result<_, _>>()?;
    Ok(Value::List(items))
}
