//! The sandbox: the one module that grants a job access to files. A job sees
//! exactly its read-only inputs at `/in`, a writable `/out`, its arguments,
//! and nothing else: no environment, no network, no other files.

use crate::run::outcome::{Failure, FailureKind};
use crate::sandbox::runtime::{MAX_OUTPUT_DEPTH, MAX_OUTPUT_ENTRIES, OutputUsage};
use crate::store::action::Value;
use crate::store::blobs::Store;
use crate::store::digest::Digest;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// A job's sandbox on the host side. A command task gets a private
/// directory in the store's scratch space, removed on drop: `in/` (inputs,
/// hard-linked from the store), `out/`, and standard output when it is a
/// declared output. Logs are kept in memory, within the log limit, so a
/// typed task (which takes no files) touches no file system at all.
pub struct JobDir {
    dir: Option<tempfile::TempDir>,
    redact: Vec<String>,
    log: Arc<Budget>,
    stdout: Sink,
    stdout_budget: Option<Arc<Budget>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stored_logs: Mutex<Option<(Digest, Digest)>>,
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

impl Drop for JobDir {
    fn drop(&mut self) {
        // Whatever the guest made of /out, however deep (the TempDir's own
        // removal, which follows, would give up on a deep tree).
        if let Some(d) = &self.dir {
            let _ = crate::store::blobs::remove_tree(d.path());
        }
    }
}

impl JobDir {
    /// The sandbox for a job with `settings`. With preopens, creates the
    /// directory and links each input into `in/`: a blob as the file
    /// `in/<name>`, a list as the directory `in/<name>/` holding `0`, `1`, ….
    pub fn create(
        store: &Store,
        inputs: &BTreeMap<String, Value>,
        settings: &SandboxSettings,
    ) -> io::Result<JobDir> {
        let dir = if settings.preopens || settings.stdout_is_output {
            let dir = store.scratch("job-")?;
            fs::create_dir(dir.path().join("in"))?;
            fs::create_dir(dir.path().join("out"))?;
            for (name, value) in inputs {
                stage(store, value, &dir.path().join("in").join(name))?;
            }
            Some(dir)
        } else {
            None
        };
        let log = Arc::new(Budget::new(settings.log_limit, false));
        // Standard output kept as an output counts against the output limit
        // and stops the job there; as a log, it is truncated instead.
        let (stdout, stdout_budget) = match &dir {
            Some(d) if settings.stdout_is_output => {
                let path = d.path().join("stdout");
                let file = Arc::new(File::create(&path)?);
                let budget = Arc::new(Budget::new(settings.output_limit, true));
                (Some(Sink::File(file, path)), Some(budget))
            }
            _ => (None, None),
        };
        Ok(JobDir {
            dir,
            redact: Vec::new(),
            log,
            stdout: stdout.unwrap_or_else(|| Sink::Memory(Arc::default())),
            stdout_budget,
            stderr: Arc::default(),
            stored_logs: Mutex::new(None),
        })
    }

    fn in_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("in"))
    }

    fn out_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("out"))
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
        let mut b = WasiCtxBuilder::new();
        b.arg(program)
            .args(argv)
            .stdout(CappedStream {
                sink: self.stdout.clone(),
                budget: self.stdout_budget.clone().unwrap_or(self.log.clone()),
            })
            .stderr(self.stderr_stream())
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
        if settings.preopens
            && let (Some(input), Some(out)) = (self.in_dir(), self.out_dir())
        {
            // Absolute guest paths: some toolchains (Go) resolve absolute paths
            // against preopens but not relative ones against `.`.
            b.preopened_dir(input, "/in", FsPerms::ReadOnly)
                .map_err(io::Error::other)?;
            b.preopened_dir(out, "/out", FsPerms::ReadWrite)
                .map_err(io::Error::other)?;
        }
        Ok(b)
    }

    fn stderr_stream(&self) -> CappedStream {
        CappedStream {
            sink: Sink::Memory(self.stderr.clone()),
            budget: self.log.clone(),
        }
    }

    /// The job's log, for `cairn:task/context.log` lines.
    pub fn task_log(&self) -> Box<dyn OutputStream> {
        Box::new(self.stderr_stream())
    }

    /// A function that measures what has been written as outputs so far
    /// (`/out`, standard output kept as an output, and `written`: the
    /// artifact writers' bytes), for the runtime to enforce the output
    /// limits while the job runs.
    pub fn output_usage(
        &self,
        written: Arc<AtomicU64>,
    ) -> Box<dyn Fn() -> OutputUsage + Send + Sync> {
        let out = self.out_dir();
        let stdout = self.stdout_budget.clone();
        Box::new(move || {
            let mut u = out.as_deref().map(measure).unwrap_or_default();
            u.bytes += stdout.as_ref().map_or(0, |b| b.used()) + written.load(Ordering::Relaxed);
            u
        })
    }

    /// Removes what a failed job wrote to `/out`: it is never collected.
    /// With `stdout_too`, standard output kept as an output goes as well
    /// (its log is then empty): for a disk it filled.
    pub fn discard_outputs(&self, stdout_too: bool) {
        if let Some(out) = self.out_dir() {
            let _ = crate::store::blobs::remove_tree(&out);
        }
        if let (true, Sink::File(f, _)) = (stdout_too, &self.stdout) {
            let _ = f.set_len(0);
        }
    }

    /// Secret values to blank out of the job's log before it is stored.
    pub fn redact(&mut self, values: Vec<String>) {
        self.redact = values.into_iter().filter(|v| !v.is_empty()).collect();
    }

    /// `text` with every secret value the job was given shown as
    /// `[secret]`, as in its logs: for what a job reports besides its logs
    /// (labels, metric names, an error's message), which is printed and
    /// recorded too.
    pub fn blank(&self, text: &str) -> String {
        if !self.redact.iter().any(|s| text.contains(s.as_str())) {
            return text.to_string();
        }
        let blanked = self.redact.iter().fold(text.as_bytes().to_vec(), |t, s| {
            replace_all(&t, s.as_bytes(), b"[secret]")
        });
        // Replacing whole UTF-8 strings inside a UTF-8 string keeps it UTF-8.
        String::from_utf8(blanked).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }

    /// A log as stored: secrets blanked out and, for standard error, a
    /// marker if the job wrote more than the log limit.
    fn finished_log(&self, bytes: &[u8], marked: bool) -> Vec<u8> {
        let mut text = bytes.to_vec();
        for secret in &self.redact {
            text = replace_all(&text, secret.as_bytes(), b"[secret]");
        }
        if marked && self.log.used() > self.log.cap {
            text.extend_from_slice(
                format!(
                    "\n[cairn: log truncated: the job wrote {} bytes of log, more than the limit of {}]\n",
                    self.log.used(),
                    self.log.cap
                )
                .as_bytes(),
            );
        }
        text
    }

    /// Puts the captured stdout and stderr into the store, once. Called on
    /// every path, so a failed job keeps its log.
    pub fn logs(&self, store: &Store) -> io::Result<(Digest, Digest)> {
        let mut stored = self.stored_logs.lock().unwrap();
        if let Some(logs) = *stored {
            return Ok(logs);
        }
        let stdout = match &self.stdout {
            Sink::Memory(m) => {
                store
                    .put_bytes(&self.finished_log(&m.lock().unwrap(), false))?
                    .digest
            }
            Sink::File(_, path) => {
                if !self.redact.is_empty() {
                    let text = self.finished_log(&fs::read(path)?, false);
                    fs::write(path, text)?;
                }
                store.put_owned_file(path)?.digest
            }
        };
        let stderr = self.finished_log(&self.stderr.lock().unwrap(), true);
        let logs = (stdout, store.put_bytes(&stderr)?.digest);
        *stored = Some(logs);
        Ok(logs)
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
        if let Some(out) = self.out_dir() {
            for name in outputs {
                let v = collect_one(store, &out.join(name), name, 0)?;
                values.insert(name.clone(), v);
            }
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

fn collect_one(store: &Store, path: &Path, what: &str, depth: usize) -> Result<Value, Failure> {
    let bad = |msg: String| Failure::new(FailureKind::BadOutput, msg);
    // The runtime refused deeper trees already; this keeps the recursion
    // bounded whatever happens between its look and this one.
    if depth > MAX_OUTPUT_DEPTH {
        return Err(bad(format!(
            "output /out/{what} nests directories more than {MAX_OUTPUT_DEPTH} deep"
        )));
    }
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
        .map(|(_, n)| collect_one(store, &path.join(&n), &format!("{what}/{n}"), depth + 1))
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

/// The bytes of regular files below `dir` and how many entries it holds,
/// links not followed. Iterative and bounded: it stops counting just past
/// [`MAX_OUTPUT_ENTRIES`] entries or [`MAX_OUTPUT_DEPTH`] levels, which a
/// guest can reach much faster than a recursive walk could survive.
fn measure(dir: &Path) -> OutputUsage {
    let mut u = OutputUsage::default();
    let mut todo = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            u.entries += 1;
            if u.entries > MAX_OUTPUT_ENTRIES {
                return u;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() && depth + 1 >= MAX_OUTPUT_DEPTH => {
                    u.too_deep = true;
                    return u;
                }
                Ok(t) if t.is_dir() => todo.push((e.path(), depth + 1)),
                Ok(t) if t.is_file() => u.bytes += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    u
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

/// Where a job's standard stream goes: memory for a log (bounded by its
/// budget), a file for standard output kept as an output.
#[derive(Clone)]
enum Sink {
    Memory(Arc<Mutex<Vec<u8>>>),
    File(Arc<File>, PathBuf),
}

/// Standard output or error, within a byte budget. A chatty job's log is
/// cut at the limit (and marked) rather than the job killed.
#[derive(Clone)]
struct CappedStream {
    sink: Sink,
    budget: Arc<Budget>,
}

impl CappedStream {
    fn write_bytes(&self, bytes: &[u8]) -> Result<(), StreamError> {
        let n = self.budget.admit(bytes.len())?;
        match &self.sink {
            Sink::Memory(m) => {
                m.lock().unwrap().extend_from_slice(&bytes[..n]);
                Ok(())
            }
            Sink::File(f, _) => (&**f)
                .write_all(&bytes[..n])
                .map_err(|e| StreamError::LastOperationFailed(wasmtime::format_err!(e))),
        }
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
