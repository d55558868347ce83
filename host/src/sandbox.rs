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
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// A job's private directory in the store's scratch space, removed on drop:
/// `in/` (inputs, hard-linked from the store), `out/`, and the captured
/// `stdout` and `stderr`.
pub struct JobDir {
    dir: tempfile::TempDir,
    redact: Vec<String>,
    log: Option<Arc<Budget>>,
    stdout_budget: Option<Arc<Budget>>,
    log_stream: Option<CappedStream>,
}

/// How a job's sandbox behaves beyond its files.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// `Some(seed)` for hermetic jobs: fixed clocks, randomness from the seed.
    pub hermetic_seed: Option<[u8; 32]>,
    /// Bytes of stdout and stderr kept.
    pub log_limit: u64,
    /// Total bytes of outputs.
    pub output_limit: u64,
    /// Standard output is a declared output.
    pub stdout_is_output: bool,
    /// Preopen `/in` and `/out` (command tasks); typed tasks get no files.
    pub preopens: bool,
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
        let job = JobDir {
            dir,
            redact: Vec::new(),
            log: None,
            stdout_budget: None,
            log_stream: None,
        };
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

    /// The WASI context for this job, to build for WASI 0.2 or preview 1.
    /// Secure by default: stdin closed, no
    /// environment variables, no sockets or name lookups, and only the two
    /// preopens below. `program` is argv[0]. Hermetic jobs get a fixed wall
    /// clock, a virtual monotonic clock and randomness seeded by `seed`
    /// (their action key); others get the host's.
    pub fn wasi(
        &mut self,
        program: &str,
        argv: &[String],
        settings: &SandboxSettings,
    ) -> io::Result<WasiCtxBuilder> {
        let stdout = Arc::new(File::create(self.dir.path().join("stdout"))?);
        let stderr = Arc::new(File::create(self.dir.path().join("stderr"))?);
        let stderr_file = stderr.clone();
        let log = Arc::new(Budget::new(settings.log_limit, false));
        // Standard output kept as an output counts against the output limit
        // and stops the job there; as a log, it is truncated instead.
        let out_budget = if settings.stdout_is_output {
            Arc::new(Budget::new(settings.output_limit, true))
        } else {
            log.clone()
        };
        self.log = Some(log.clone());
        self.stdout_budget = settings.stdout_is_output.then(|| out_budget.clone());
        let mut b = WasiCtxBuilder::new();
        b.arg(program)
            .args(argv)
            .stdout(CappedStream {
                file: stdout,
                budget: out_budget,
            })
            .stderr(CappedStream {
                file: stderr,
                budget: log,
            })
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            // Small files: doing the I/O on the job's own thread beats a
            // round trip through tokio's blocking pool.
            .allow_blocking_current_thread(true);
        if let Some(seed) = settings.hermetic_seed {
            b.wall_clock(FixedWallClock)
                .monotonic_clock(VirtualClock::default())
                .secure_random(SeededRng::new(&seed, b"secure"))
                .insecure_random(SeededRng::new(&seed, b"insecure"))
                .insecure_random_seed(u128::from_le_bytes(
                    seed[..16].try_into().expect("16 bytes"),
                ));
        }
        self.log_stream = self.log.clone().map(|budget| CappedStream {
            file: stderr_file.clone(),
            budget,
        });
        if settings.preopens {
            // Absolute guest paths: some toolchains (Go) resolve absolute paths
            // against preopens but not relative ones against `.`.
            b.preopened_dir(self.in_dir(), "/in", FsPerms::ReadOnly)
                .map_err(io::Error::other)?;
            b.preopened_dir(self.out_dir(), "/out", FsPerms::ReadWrite)
                .map_err(io::Error::other)?;
        }
        Ok(b)
    }

    /// Where a typed task's artifact writers put their bytes: counted
    /// against the output limit like a command task's `/out`.
    pub fn writer_dir(&self) -> PathBuf {
        self.out_dir()
    }

    /// The job's log, for `cairn:task/context.log` lines.
    pub fn task_log(&self) -> Option<Box<dyn OutputStream>> {
        self.log_stream
            .clone()
            .map(|s| Box::new(s) as Box<dyn OutputStream>)
    }

    /// A function that measures the bytes written as outputs so far, for
    /// the runtime to enforce the output limit while the job runs.
    pub fn output_usage(&self) -> Box<dyn Fn() -> u64 + Send + Sync> {
        let out = self.out_dir();
        let stdout = self.stdout_budget.clone();
        Box::new(move || tree_size(&out) + stdout.as_ref().map_or(0, |b| b.used()))
    }

    /// Appends a marker to the log if the job wrote more than the log limit.
    fn mark_truncation(&self) -> io::Result<()> {
        if let Some(log) = &self.log
            && log.used() > log.cap
        {
            let mut f = File::options()
                .append(true)
                .open(self.dir.path().join("stderr"))?;
            writeln!(
                f,
                "\n[cairn: log truncated: the job wrote {} bytes of log, more than the limit of {}]",
                log.used(),
                log.cap
            )?;
        }
        Ok(())
    }

    /// Secret values to blank out of the job's log before it is stored.
    pub fn redact(&mut self, values: Vec<String>) {
        self.redact = values.into_iter().filter(|v| !v.is_empty()).collect();
    }

    /// Moves the captured stdout and stderr into the store. Called on every
    /// path, so a failed job keeps its log.
    pub fn logs(&self, store: &Store) -> io::Result<(Digest, Digest)> {
        self.mark_truncation()?;
        for name in ["stdout", "stderr"] {
            let path = self.dir.path().join(name);
            if self.redact.is_empty() || !path.exists() {
                continue;
            }
            let mut text = fs::read(&path)?;
            for secret in &self.redact {
                text = replace_all(&text, secret.as_bytes(), b"[secret]");
            }
            fs::write(&path, text)?;
        }
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

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// The bytes of regular files below `dir` (links are not followed).
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// A byte budget shared by the streams of one log (or one output).
#[derive(Debug)]
struct Budget {
    used: AtomicU64,
    cap: u64,
    /// Past the cap, fail the write (stopping the guest) instead of dropping it.
    strict: bool,
    over: AtomicBool,
}

impl Budget {
    fn new(cap: u64, strict: bool) -> Self {
        Budget {
            used: AtomicU64::new(0),
            cap,
            strict,
            over: AtomicBool::new(false),
        }
    }

    fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// How many of `n` new bytes may be written; an error stops the guest.
    fn admit(&self, n: usize) -> Result<usize, StreamError> {
        let before = self.used.fetch_add(n as u64, Ordering::Relaxed);
        let room = self.cap.saturating_sub(before) as usize;
        if room < n {
            self.over.store(true, Ordering::Relaxed);
            if self.strict {
                return Err(StreamError::Trap(wasmtime::format_err!(
                    "standard output exceeded the output limit of {} bytes",
                    self.cap
                )));
            }
        }
        Ok(room.min(n))
    }
}

/// Standard output or error into a file, within a byte budget. A chatty
/// job's log is cut at the limit (and marked) rather than the job killed.
#[derive(Clone)]
struct CappedStream {
    file: Arc<File>,
    budget: Arc<Budget>,
}

impl CappedStream {
    fn write_bytes(&self, bytes: &[u8]) -> Result<(), StreamError> {
        let n = self.budget.admit(bytes.len())?;
        (&*self.file)
            .write_all(&bytes[..n])
            .map_err(|e| StreamError::LastOperationFailed(wasmtime::format_err!(e)))
    }
}

impl IsTerminal for CappedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedStream {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 20)
    }
}

impl tokio::io::AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.write_bytes(buf)
                .map(|()| buf.len())
                .map_err(io::Error::other),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The wall clock of hermetic jobs: always 2020-01-01T00:00:00Z.
struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::from_secs(1_577_836_800)
    }
}

/// The monotonic clock of hermetic jobs: starts at zero and advances one
/// millisecond each time it is read, so elapsed times are positive and the
/// same on every run.
#[derive(Default)]
struct VirtualClock {
    ns: AtomicU64,
}

impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        self.ns.fetch_add(1_000_000, Ordering::Relaxed)
    }
}

/// Randomness for hermetic jobs: blake3's output stream keyed by the job's
/// action key, so the same job draws the same bytes on every run.
struct SeededRng(blake3::OutputReader);

impl SeededRng {
    fn new(seed: &[u8; 32], purpose: &[u8]) -> Self {
        let mut h = blake3::Hasher::new_keyed(seed);
        h.update(b"cairn sandbox randomness: ");
        h.update(purpose);
        SeededRng(h.finalize_xof())
    }
}

impl rand_core::TryRng for SeededRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst);
        Ok(())
    }
}
