//! The wasmtime side: one `Engine` per process, components compiled once and
//! cached on disk, and one fresh `Store` per job with its limits.

use crate::digest::Digest;
use crate::outcome::{Failure, FailureKind};
use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

/// How often the epoch advances; the granularity of timeouts.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A component to run: where it is and what its bytes hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentRef {
    /// The component file (a built source directory points at its build output).
    pub path: PathBuf,
    /// The digest of its bytes.
    pub digest: Digest,
}

/// Limits on one job's execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecLimits {
    /// Linear memory per memory, in bytes.
    pub memory: u64,
    /// Wall-clock time.
    pub timeout: Duration,
}

/// What an execution measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecStats {
    /// The largest linear memory the guest asked for, in bytes.
    pub peak_memory: u64,
}

/// The per-job state a `Store` holds.
pub struct JobState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for JobState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Denies memory growth past the limit and remembers that it did, so the
/// failure is reported as out-of-memory rather than as the trap the guest's
/// allocator raises next.
struct MemoryLimiter {
    max: usize,
    hit: bool,
    peak: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

type Loaded = Arc<OnceCell<Result<CommandPre<JobState>, Failure>>>;

/// The process's wasmtime engine, linker and loaded components.
pub struct Runtime {
    engine: Engine,
    linker: Linker<JobState>,
    compiled_dir: PathBuf,
    loaded: Mutex<HashMap<Digest, Loaded>>,
}

impl Runtime {
    /// Creates the engine. Compiled components are cached under
    /// `compiled_root/<engine fingerprint>/`, so a wasmtime upgrade or a
    /// config change never loads incompatible code.
    pub fn new(compiled_root: &Path) -> wasmtime::Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;

        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let compiled_dir = compiled_root.join(format!("{:016x}", h.finish()));
        fs::create_dir_all(&compiled_dir)?;

        // Timeouts: a thread advances the epoch; it stops with the engine.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("cairn-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        Ok(Runtime {
            engine,
            linker,
            compiled_dir,
            loaded: Mutex::new(HashMap::new()),
        })
    }

    /// The component ready to instantiate: compiled (or loaded from the
    /// on-disk cache) once per process, however many jobs ask at once.
    pub async fn command(&self, c: &ComponentRef) -> Result<CommandPre<JobState>, Failure> {
        let cell = self
            .loaded
            .lock()
            .unwrap()
            .entry(c.digest)
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            let engine = self.engine.clone();
            let cwasm = self.compiled_dir.join(format!("{}.cwasm", c.digest));
            let path = c.path.clone();
            let component = tokio::task::spawn_blocking(move || load(&engine, &path, &cwasm))
                .await
                .map_err(|e| Failure::host("compiling", e))??;
            let pre = self.linker.instantiate_pre(&component).map_err(|e| {
                Failure::new(
                    FailureKind::Instantiation,
                    format!(
                        "{}: the host cannot satisfy its imports: {e:#}",
                        c.path.display()
                    ),
                )
            })?;
            CommandPre::new(pre).map_err(|e| {
                Failure::new(
                    FailureKind::Instantiation,
                    format!(
                        "{} is not a command component (no wasi:cli/run export): {e:#}",
                        c.path.display()
                    ),
                )
            })
        })
        .await
        .clone()
    }

    /// Runs a command component to completion in a fresh store.
    pub async fn run(
        &self,
        pre: &CommandPre<JobState>,
        wasi: WasiCtx,
        limits: ExecLimits,
    ) -> Result<ExecStats, Failure> {
        let state = JobState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max: usize::try_from(limits.memory).unwrap_or(usize::MAX),
                hit: false,
                peak: 0,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let ticks = (limits.timeout.as_millis() / EPOCH_TICK.as_millis()).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();

        let call = async {
            let cmd = pre.instantiate_async(&mut store).await?;
            cmd.wasi_cli_run().call_run(&mut store).await
        };
        // The epoch stops running wasm; this stops a guest blocked in a host
        // call (a long sleep) as well.
        let result = match tokio::time::timeout(limits.timeout + EPOCH_TICK * 10, call).await {
            Ok(r) => r,
            Err(_) => return Err(timeout(limits.timeout)),
        };
        let oom = store.data().limiter.hit;
        let stats = ExecStats {
            peak_memory: store.data().limiter.peak as u64,
        };
        match result {
            Ok(Ok(())) => Ok(stats),
            Ok(Err(())) if oom => Err(out_of_memory(limits.memory)),
            Ok(Err(())) => Err(Failure::new(
                FailureKind::Exit,
                "the program exited with a failure status",
            )),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(0)) => Ok(stats),
                Some(I32Exit(code)) => {
                    Err(Failure::new(FailureKind::Exit, format!("exit code {code}")))
                }
                None if oom => Err(out_of_memory(limits.memory)),
                None => Err(classify_trap(&e, limits)),
            },
        }
    }
}

fn timeout(limit: Duration) -> Failure {
    Failure::new(
        FailureKind::Timeout,
        format!("ran longer than the limit of {limit:?}"),
    )
}

fn out_of_memory(limit: u64) -> Failure {
    Failure::new(
        FailureKind::OutOfMemory,
        format!(
            "linear memory would have grown past the limit of {} MiB",
            limit >> 20
        ),
    )
}

fn classify_trap(e: &wasmtime::Error, limits: ExecLimits) -> Failure {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => timeout(limits.timeout),
        Some(Trap::StackOverflow) => Failure::new(FailureKind::StackOverflow, format!("{e:?}")),
        _ => Failure::new(FailureKind::Trap, format!("{e:?}")),
    }
}

/// Loads a precompiled component, or compiles and caches it.
fn load(engine: &Engine, wasm: &Path, cwasm: &Path) -> Result<Component, Failure> {
    if cwasm.exists() {
        // SAFETY: the file was written by `Component::serialize` of an engine
        // with the same compatibility hash (it is in the directory name), into
        // a store only cairn writes, and renamed into place whole.
        match unsafe { Component::deserialize_file(engine, cwasm) } {
            Ok(c) => return Ok(c),
            // A stale or damaged entry is recompiled below and replaced.
            Err(_) => drop(fs::remove_file(cwasm)),
        }
    }
    let bytes =
        fs::read(wasm).map_err(|e| Failure::host(&format!("reading {}", wasm.display()), e))?;
    let not_component = |why: &str| {
        Failure::new(
            FailureKind::Instantiation,
            format!("{} is not a WebAssembly component: {why}", wasm.display()),
        )
    };
    if wasmtime::wasmparser::Parser::is_core_wasm(&bytes) {
        return Err(not_component(
            "it is a core module; build it for wasm32-wasip2",
        ));
    }
    if !wasmtime::wasmparser::Parser::is_component(&bytes) {
        return Err(not_component("it does not start with the wasm magic bytes"));
    }
    let component = Component::new(engine, &bytes).map_err(|e| not_component(&format!("{e:#}")))?;
    // Cache failures only cost a recompile next time.
    if let Ok(serialized) = component.serialize() {
        let _ = write_atomically(cwasm, &serialized);
    }
    Ok(component)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache files have a parent");
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
