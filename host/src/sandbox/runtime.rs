//! The wasmtime side: one engine per process (a second, fuel-metered one
//! only if a job asks for fuel), components compiled once and cached on
//! disk, and one fresh `Store` per job with its limits.
//!
//! WASI preview 1 command modules (a `main()` from a wasip1 toolchain) run
//! as core modules against wasmtime-wasi's own preview 1, in the same
//! sandbox. Wrapping them in the preview 1 adapter instead breaks runtimes
//! that own all of linear memory (Go; wasi-libc before 2023): the adapter
//! grows memory for its state and their allocators hand those pages out.

use crate::run::executor::{ComponentRef, ExecLimits};
use crate::run::outcome::{Failure, FailureKind, duration_words, size_words};
use crate::sandbox::task_host::{self, TaskCtx, TaskView};
use crate::store::digest::Digest;
use crate::workflow::typed::TaskKind;
use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable, Val};
use wasmtime::{
    Config, Enabled, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig,
    ResourceLimiter, Store, Trap, UpdateDeadline,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

/// How often the epoch advances: the granularity of the time and output limits.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Instances alive at once per engine: the pooling allocator's slots. More
/// jobs than this wait for a slot (see [`Runtime::run`]) instead of failing.
const SLOTS: u32 = 32;

/// What one slot holds at most. Generous, because the largest guests are
/// interpreters: a componentize-py component is dozens of core instances
/// sharing one memory and one function table of tens of thousands of entries.
const CORE_INSTANCES_PER_SLOT: u32 = 64;
const MEMORIES_PER_SLOT: u32 = 4;
const TABLES_PER_SLOT: u32 = 8;
const TABLE_ELEMENTS: usize = 1 << 18;

/// Bytes of a slot's memory (and table) that stay resident when the
/// instance is done: its dirty pages (found with `PAGEMAP_SCAN` where the
/// kernel has it) are reset in place instead of being handed back to the
/// kernel, so a small guest's next instance starts without page faults and
/// the host without TLB shootdowns.
const KEEP_RESIDENT: usize = 2 << 20;

/// What an execution measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecStats {
    /// The largest linear memory the guest asked for, in bytes.
    pub peak_memory: u64,
    /// Fuel consumed, when metered.
    pub fuel: Option<u64>,
}

/// What a job's outputs hold so far, as the sandbox measures them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputUsage {
    /// Bytes written as outputs.
    pub bytes: u64,
    /// Files and directories under `/out` (counted up to just past
    /// [`MAX_OUTPUT_ENTRIES`]).
    pub entries: u64,
    /// `/out` nests directories deeper than [`MAX_OUTPUT_DEPTH`].
    pub too_deep: bool,
}

/// The most files and directories a job's `/out` may hold: a list output
/// of 100,000 elements is large; a million empty files is an attack on
/// the host that must walk and store them.
pub const MAX_OUTPUT_ENTRIES: u64 = 100_000;

/// The deepest a job's `/out` may nest directories (a list of lists of
/// lists…): deeper trees are attacks on the host that walks them.
pub const MAX_OUTPUT_DEPTH: usize = 64;

/// The failure for outputs past a limit, if they are.
fn over_limits(u: OutputUsage, limit: u64) -> Option<Failure> {
    let shape =
        |what: String| Failure::new(FailureKind::OutputLimit, format!("output limit: {what}"));
    if u.bytes > limit {
        Some(output_limit(limit))
    } else if u.entries > MAX_OUTPUT_ENTRIES {
        Some(shape(format!(
            "/out holds more than {MAX_OUTPUT_ENTRIES} files and directories"
        )))
    } else if u.too_deep {
        Some(shape(format!(
            "/out nests directories more than {MAX_OUTPUT_DEPTH} deep"
        )))
    } else {
        None
    }
}

/// Watches a running job from the epoch callback.
pub struct Watch {
    /// When the job's time is up.
    deadline: Instant,
    /// What the job has written as outputs so far (measured by the sandbox).
    output_usage: Box<dyn Fn() -> OutputUsage + Send + Sync>,
    /// The output limit.
    output_limit: u64,
    /// When the outputs were last measured, and what that cost: a job that
    /// makes many files is measured less often, so that the walk costs the
    /// host at most a tenth of its time.
    measured: Option<(Instant, Duration)>,
    /// Why the job was stopped, if it was.
    stopped: Option<Failure>,
}

/// A job's WASI context: WASI 0.2 for a component, preview 1 for a core
/// module. Both are built from the same sandbox settings.
pub enum Wasi {
    /// For a component.
    P2(WasiCtx),
    /// For a preview 1 command module.
    P1(WasiP1Ctx),
}

/// The per-job state a `Store` holds.
pub struct JobState {
    wasi: WasiCtx,
    /// Preview 1's context, for a core module (then `wasi` is empty).
    p1: Option<WasiP1Ctx>,
    table: ResourceTable,
    limiter: MemoryLimiter,
    watch: Watch,
    task: TaskCtx,
}

impl JobState {
    /// The job's resource table (artifacts passed to and from a typed task).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// What the typed task reported through `cairn:task/context`.
    pub fn reported(&self) -> &crate::store::action::Reported {
        &self.task.reported
    }
}

/// How to call into a component once it is instantiated.
pub enum Entry<'a> {
    /// Run `wasi:cli/run`.
    Command(&'a CommandPre<JobState>),
    /// Run a preview 1 module's `_start`.
    Preview1(&'a wasmtime::InstancePre<JobState>),
    /// Call a typed task's export.
    Typed(&'a InstancePre<JobState>, &'a mut dyn TypedInvoke),
}

/// The typed side of a call: builds the arguments (which may need the store,
/// to hand artifacts over as resources) and takes the results.
pub trait TypedInvoke: Send {
    /// The export to call.
    fn export(&self) -> &str;
    /// The arguments, in parameter order.
    fn args(&mut self, store: &mut Store<JobState>) -> Result<Vec<Val>, Failure>;
    /// Takes the results; an `Err` fails the job (a guest error).
    fn results(&mut self, store: &mut Store<JobState>, results: Vec<Val>) -> Result<(), Failure>;
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

/// A loaded task: a component, or a preview 1 command module.
#[derive(Clone)]
pub enum Program {
    /// A component, pre-instantiated.
    Component(Component, InstancePre<JobState>),
    /// A core module, pre-instantiated against preview 1.
    Module(wasmtime::Module, wasmtime::InstancePre<JobState>),
}

/// A command, ready to instantiate.
pub enum CommandTask {
    /// A `wasi:cli/command` component.
    Component(CommandPre<JobState>),
    /// A preview 1 module with `_start`.
    Preview1(wasmtime::InstancePre<JobState>),
}

impl CommandTask {
    /// How to run it.
    pub fn entry(&self) -> Entry<'_> {
        match self {
            CommandTask::Component(c) => Entry::Command(c),
            CommandTask::Preview1(m) => Entry::Preview1(m),
        }
    }
}

type Loaded = Arc<OnceCell<Result<Program, Failure>>>;

/// One engine configuration with its linker and loaded components.
struct Flavor {
    engine: Engine,
    linker: Linker<JobState>,
    p1_linker: wasmtime::Linker<JobState>,
    compiled_dir: PathBuf,
    loaded: Mutex<HashMap<Digest, Loaded>>,
    /// Free slots of the engine's instance pool.
    slots: tokio::sync::Semaphore,
}

impl Flavor {
    fn new(compiled_root: &Path, fuel: bool) -> wasmtime::Result<Flavor> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(fuel);
        config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
        // Same inputs, same bytes: NaNs and relaxed SIMD behave identically
        // on every machine, and guests get no threads.
        config.cranelift_nan_canonicalization(true);
        config.relaxed_simd_deterministic(true);
        // (Threads are compiled out: wasmtime is built without `threads`.)
        config.shared_memory(false);
        // Instances come from a pool of preallocated slots, and memories
        // start as copy-on-write mappings of the module's initial image:
        // no mmap, munmap or TLB shootdown per job (the profile in
        // bench/RESULTS.md showed those dominating a no-op task).
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(SLOTS)
            .total_core_instances(SLOTS * CORE_INSTANCES_PER_SLOT)
            .total_memories(SLOTS * MEMORIES_PER_SLOT)
            .max_memories_per_module(MEMORIES_PER_SLOT)
            .total_tables(SLOTS * TABLES_PER_SLOT)
            .max_tables_per_module(TABLES_PER_SLOT)
            .table_elements(TABLE_ELEMENTS)
            .total_stacks(SLOTS)
            // A wasm32 memory's whole range; the job's own limit is the
            // `MemoryLimiter`'s.
            .max_memory_size(4 << 30)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .async_stack_keep_resident(64 << 10)
            .pagemap_scan(Enabled::Auto);
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        add_exit_to_linker(&mut linker)?;
        task_host::add_to_linker(&mut linker, |s: &mut JobState| TaskView {
            ctx: &mut s.task,
            table: &mut s.table,
        })?;
        let mut p1_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1_linker, |s: &mut JobState| {
            s.p1.as_mut()
                .expect("a preview 1 module runs with a preview 1 context")
        })?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let compiled_dir = compiled_root.join(format!("{:016x}", h.finish()));
        fs::create_dir_all(&compiled_dir)?;
        sweep_partial_writes(&compiled_dir);
        Ok(Flavor {
            engine,
            linker,
            p1_linker,
            compiled_dir,
            loaded: Mutex::new(HashMap::new()),
            slots: tokio::sync::Semaphore::new(SLOTS as usize),
        })
    }
}

/// The process's wasmtime engines and loaded components.
pub struct Runtime {
    plain: Flavor,
    fueled: OnceLock<Result<Flavor, String>>,
    compiled_root: PathBuf,
    ticking: Arc<Mutex<Vec<EngineWeak>>>,
}

impl Runtime {
    /// Creates the engine. Compiled components are cached under
    /// `compiled_root/<engine fingerprint>/`, so a wasmtime upgrade or a
    /// config change never loads incompatible code.
    pub fn new(compiled_root: &Path) -> wasmtime::Result<Runtime> {
        let plain = Flavor::new(compiled_root, false)?;
        // Limits: a thread advances the engines' epochs; it stops when they are gone.
        let ticking = Arc::new(Mutex::new(vec![plain.engine.weak()]));
        let engines = ticking.clone();
        std::thread::Builder::new()
            .name("cairn-epoch".into())
            .spawn(move || {
                loop {
                    let live: Vec<Engine> = engines
                        .lock()
                        .unwrap()
                        .iter()
                        .filter_map(EngineWeak::upgrade)
                        .collect();
                    if live.is_empty() {
                        return;
                    }
                    live.iter().for_each(Engine::increment_epoch);
                    drop(live);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        Ok(Runtime {
            plain,
            fueled: OnceLock::new(),
            compiled_root: compiled_root.to_path_buf(),
            ticking,
        })
    }

    fn flavor(&self, fuel: bool) -> Result<&Flavor, Failure> {
        if !fuel {
            return Ok(&self.plain);
        }
        self.fueled
            .get_or_init(|| {
                let f = Flavor::new(&self.compiled_root, true).map_err(|e| format!("{e:#}"))?;
                self.ticking.lock().unwrap().push(f.engine.weak());
                Ok(f)
            })
            .as_ref()
            .map_err(|e| Failure::host("creating the fuel-metered engine", e))
    }

    /// The component (or preview 1 module), compiled (or loaded from the
    /// on-disk cache) and pre-instantiated once per process, however many
    /// jobs ask at once.
    async fn load(&self, c: &ComponentRef, fuel: bool) -> Result<Program, Failure> {
        let flavor = self.flavor(fuel)?;
        let cell = flavor
            .loaded
            .lock()
            .unwrap()
            .entry(c.digest)
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            let engine = flavor.engine.clone();
            let cwasm = flavor.compiled_dir.join(format!("{}.cwasm", c.digest));
            let path = c.path.clone();
            let compiled = tokio::task::spawn_blocking(move || load(&engine, &path, &cwasm))
                .await
                .map_err(|e| Failure::host("compiling", e))??;
            let unsatisfied = |e: wasmtime::Error| {
                Failure::new(
                    FailureKind::Instantiation,
                    format!("the host cannot satisfy the component's imports: {e:#}"),
                )
            };
            Ok(match compiled {
                Compiled::Component(component) => {
                    let pre = flavor
                        .linker
                        .instantiate_pre(&component)
                        .map_err(unsatisfied)?;
                    Program::Component(component, pre)
                }
                Compiled::Module(module) => {
                    let pre = flavor
                        .p1_linker
                        .instantiate_pre(&module)
                        .map_err(unsatisfied)?;
                    Program::Module(module, pre)
                }
            })
        })
        .await
        .clone()
    }

    /// A command task, ready to run.
    pub async fn command(&self, c: &ComponentRef, fuel: bool) -> Result<CommandTask, Failure> {
        match self.load(c, fuel).await? {
            Program::Component(_, pre) => {
                CommandPre::new(pre)
                    .map(CommandTask::Component)
                    .map_err(|e| {
                        Failure::new(
                            FailureKind::Instantiation,
                            format!("not a command component (no wasi:cli/run export): {e:#}"),
                        )
                    })
            }
            Program::Module(module, _) if module.get_export("_start").is_none() => Err(
                Failure::new(FailureKind::Instantiation, not_a_command(&c.path)),
            ),
            Program::Module(_, pre) => Ok(CommandTask::Preview1(pre)),
        }
    }

    /// A typed component, ready to instantiate.
    pub async fn typed(
        &self,
        c: &ComponentRef,
        fuel: bool,
    ) -> Result<InstancePre<JobState>, Failure> {
        match self.load(c, fuel).await? {
            Program::Component(_, pre) => Ok(pre),
            Program::Module(..) => Err(Failure::new(
                FailureKind::Instantiation,
                "a preview 1 core module is a command task, not a typed one",
            )),
        }
    }

    /// The component's imports, each with whether this host provides it.
    pub async fn imports(&self, c: &ComponentRef) -> Result<Vec<(String, bool)>, Failure> {
        let engine = self.plain.engine.clone();
        let cwasm = self.plain.compiled_dir.join(format!("{}.cwasm", c.digest));
        let path = c.path.clone();
        let compiled = tokio::task::spawn_blocking(move || load(&engine, &path, &cwasm))
            .await
            .map_err(|e| Failure::host("compiling", e))??;
        let component = match compiled {
            Compiled::Component(c) => c,
            Compiled::Module(m) => {
                // Preview 1 is all a command module may import.
                return Ok(m
                    .imports()
                    .map(|i| {
                        let provided = i.module() == "wasi_snapshot_preview1";
                        (format!("{}::{}", i.module(), i.name()), provided)
                    })
                    .collect());
            }
        };
        let provided = |name: &str| {
            // The host provides WASI 0.2 (any patch version) and cairn:task 0.1.
            name.starts_with("wasi:") && name.contains("@0.2.")
                || name.starts_with("cairn:task/") && name.ends_with("@0.1.0")
        };
        // Interfaces only: a world's `use` of a type shows up as an import of
        // that type, which the interface providing it satisfies.
        Ok(component
            .component_type()
            .imports(&self.plain.engine)
            .filter(|(_, item)| {
                matches!(
                    item.ty,
                    wasmtime::component::types::ComponentItem::ComponentInstance(_)
                        | wasmtime::component::types::ComponentItem::ComponentFunc(_)
                )
            })
            .map(|(name, _)| (name.to_string(), provided(name)))
            .collect())
    }

    /// What kind of task a component is (command, or typed with which
    /// signature). `call` names the export when there are several.
    pub async fn inspect(&self, c: &ComponentRef, call: Option<&str>) -> Result<TaskKind, Failure> {
        match self.load(c, false).await? {
            Program::Component(component, _) => {
                crate::workflow::typed::task_kind(&component, &self.plain.engine, call)
                    .map_err(|e| Failure::new(FailureKind::Instantiation, e))
            }
            Program::Module(module, _) => Ok(if module.get_export("_start").is_some() {
                TaskKind::Command
            } else {
                TaskKind::Unusable(not_a_command(&c.path))
            }),
        }
    }

    /// Runs a command component to completion in a fresh store.
    /// `output_usage` reports what has been written to outputs so far.
    pub async fn run(
        &self,
        entry: Entry<'_>,
        wasi: Wasi,
        task: TaskCtx,
        limits: ExecLimits,
        output_usage: Box<dyn Fn() -> OutputUsage + Send + Sync>,
    ) -> Result<(ExecStats, crate::store::action::Reported), Failure> {
        let flavor = self.flavor(limits.fuel.is_some())?;
        // Held until the store (declared after it) is dropped.
        let _slot = flavor
            .slots
            .acquire()
            .await
            .map_err(|e| Failure::host("waiting for an instance slot", e))?;
        let engine = flavor.engine.clone();
        let (wasi, p1) = match wasi {
            Wasi::P2(ctx) => (ctx, None),
            Wasi::P1(ctx) => (WasiCtx::builder().build(), Some(ctx)),
        };
        let state = JobState {
            wasi,
            p1,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max: usize::try_from(limits.memory).unwrap_or(usize::MAX),
                hit: false,
                peak: 0,
            },
            watch: Watch {
                deadline: Instant::now() + limits.timeout,
                output_usage,
                output_limit: limits.output,
                measured: None,
                stopped: None,
            },
            task,
        };
        let mut store = Store::new(&engine, state);
        store.limiter(|s| &mut s.limiter);
        if let Some(fuel) = limits.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| Failure::host("setting fuel", e))?;
        }
        // Every tick: stop the guest if it is out of time or over its output limit.
        store.set_epoch_deadline(1);
        let time_limit = limits.timeout;
        store.epoch_deadline_callback(move |mut cx| {
            let w = &mut cx.data_mut().watch;
            let now = Instant::now();
            if now >= w.deadline {
                w.stopped = Some(timeout(time_limit));
                return Ok(UpdateDeadline::Interrupt);
            }
            let due = w
                .measured
                .is_none_or(|(at, cost)| now - at >= (cost * 10).max(EPOCH_TICK));
            if due {
                let usage = (w.output_usage)();
                w.measured = Some((now, now.elapsed()));
                if let Some(f) = over_limits(usage, w.output_limit) {
                    w.stopped = Some(f);
                    return Ok(UpdateDeadline::Interrupt);
                }
            }
            Ok(UpdateDeadline::Continue(1))
        });

        let call = async {
            match entry {
                Entry::Command(pre) => {
                    let cmd = pre.instantiate_async(&mut store).await?;
                    let exited = cmd.wasi_cli_run().call_run(&mut store).await?;
                    Ok(exited.map_err(|()| {
                        Failure::new(
                            FailureKind::Exit,
                            "exit status failure: `wasi:cli/run` returned an error, which carries no exit code",
                        )
                    }))
                }
                Entry::Preview1(pre) => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                    // `proc_exit` surfaces as an `I32Exit` error, below.
                    start.call_async(&mut store, ()).await?;
                    Ok(Ok(()))
                }
                Entry::Typed(pre, invoke) => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let Some(func) = instance.get_func(&mut store, invoke.export()) else {
                        return Ok(Err(Failure::new(
                            FailureKind::Instantiation,
                            format!("the component exports no function `{}`", invoke.export()),
                        )));
                    };
                    let args = match invoke.args(&mut store) {
                        Ok(a) => a,
                        Err(f) => return Ok(Err(f)),
                    };
                    let mut results = vec![Val::Bool(false); func.ty(&store).results().len()];
                    func.call_async(&mut store, &args, &mut results).await?;
                    Ok(invoke.results(&mut store, results))
                }
            }
        };
        // The epoch stops running wasm; this stops a guest blocked in a host
        // call (a long sleep) as well.
        let result: wasmtime::Result<Result<(), Failure>> =
            match tokio::time::timeout(limits.timeout + EPOCH_TICK * 10, call).await {
                Ok(r) => r,
                Err(_) => return Err(timeout(limits.timeout)),
            };
        let data = store.data();
        let stats = ExecStats {
            peak_memory: data.limiter.peak as u64,
            fuel: limits
                .fuel
                .map(|f| f.saturating_sub(store.get_fuel().unwrap_or(0))),
        };
        let oom = data.limiter.hit;
        let reported = data.task.reported.clone();
        let done = Ok((stats, reported));
        // Standard output kept as an output stops the guest with a trap of
        // its own when it passes the limit, maybe before the epoch notices.
        let stopped = data
            .watch
            .stopped
            .clone()
            .or_else(|| over_limits((data.watch.output_usage)(), data.watch.output_limit));
        match (result, stopped) {
            (_, Some(f)) => Err(f),
            (Ok(Ok(())), None) => done,
            (Ok(Err(_)), None) if oom => Err(out_of_memory(limits.memory)),
            (Ok(Err(f)), None) => Err(f),
            (Err(e), None) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(0)) => done,
                Some(I32Exit(code)) => Err(Failure::exit(*code)),
                None if e.downcast_ref::<ExitFailure>().is_some() => Err(exit_failure()),
                None if oom => Err(out_of_memory(limits.memory)),
                None => Err(classify_trap(&e, limits)),
            },
        }
    }
}

/// Why the core module at `path`, which has no `_start`, is no task: only
/// a module that could not be adapted into a component stays a reactor.
fn not_a_command(path: &Path) -> String {
    let why = match fs::read(path).map(|b| crate::sandbox::adapt::adapt(&b)) {
        Ok(Err(e)) => e.to_string(),
        _ => "it could not be adapted into a component".into(),
    };
    format!(
        "a core module without `_start` is not a command, nor a typed task (a reactor with \
         wit-bindgen's component type): {why}"
    )
}

fn timeout(limit: Duration) -> Failure {
    Failure::new(
        FailureKind::Timeout,
        format!("timeout after {}", duration_words(limit)),
    )
}

/// The failure for outputs over the limit.
pub fn output_limit(limit: u64) -> Failure {
    Failure::new(
        FailureKind::OutputLimit,
        format!(
            "output limit {}: the job's outputs grew past it",
            size_words(limit)
        ),
    )
}

fn out_of_memory(limit: u64) -> Failure {
    Failure::new(
        FailureKind::OutOfMemory,
        format!(
            "memory limit {}: linear memory would have grown past it",
            size_words(limit)
        ),
    )
}

/// A guest called WASI 0.2.0's `exit(err)`: failure, without a code.
#[derive(Debug)]
struct ExitFailure;

impl std::fmt::Display for ExitFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the guest exited with a failure status")
    }
}

impl std::error::Error for ExitFailure {}

/// wasmtime-wasi reports `exit(err)` as exit code 1, which a guest that
/// called `exit(3)` never said: its libc had only "failure" to pass on.
/// Cairn's own `exit` keeps the two apart; `exit-with-code` (WASI 0.2.12)
/// and preview 1's `proc_exit` carry the code and stay wasmtime-wasi's.
fn add_exit_to_linker(linker: &mut Linker<JobState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance("wasi:cli/exit@0.2.12")?.func_wrap(
        "exit",
        |_, (status,): (Result<(), ()>,)| -> wasmtime::Result<()> {
            match status {
                Ok(()) => Err(wasmtime::Error::new(I32Exit(0))),
                Err(()) => Err(wasmtime::Error::new(ExitFailure)),
            }
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn exit_failure() -> Failure {
    Failure::new(
        FailureKind::Exit,
        "exit status failure, without a code (WASI 0.2's `exit(err)` carries none)\n\
         a Rust or C program built for wasm32-wasip2 exits so whatever code it gave; built \
         for wasm32-wasip1, or calling WASI 0.2.12's `exit-with-code`, its code is reported",
    )
}

fn classify_trap(e: &wasmtime::Error, limits: ExecLimits) -> Failure {
    let trap = e.downcast_ref::<Trap>().copied();
    let kind = match trap {
        Some(Trap::Interrupt) => return timeout(limits.timeout),
        Some(Trap::OutOfFuel) => {
            return Failure::new(
                FailureKind::OutOfFuel,
                format!(
                    "out of fuel: the job used all of its {} fuel",
                    limits.fuel.unwrap_or(0)
                ),
            );
        }
        Some(Trap::StackOverflow) => FailureKind::StackOverflow,
        // Toolchains keep a shadow stack at the bottom of linear memory that
        // grows down; overflowing it wraps the stack pointer to the top of
        // the 32-bit space, and the next access faults there.
        Some(Trap::MemoryOutOfBounds) if shadow_stack_overflow(e) => FailureKind::StackOverflow,
        Some(Trap::MemoryOutOfBounds) => FailureKind::MemoryOutOfBounds,
        Some(Trap::UnreachableCodeReached) => FailureKind::Unreachable,
        Some(Trap::IntegerDivisionByZero) => FailureKind::DivideByZero,
        Some(Trap::IntegerOverflow) => FailureKind::IntegerOverflow,
        Some(Trap::BadConversionToInteger) => FailureKind::BadConversion,
        Some(Trap::TableOutOfBounds) => FailureKind::TableOutOfBounds,
        Some(Trap::IndirectCallToNull) => FailureKind::NullCall,
        Some(Trap::BadSignature) => FailureKind::BadSignature,
        Some(Trap::HeapMisaligned) => FailureKind::Misaligned,
        _ => FailureKind::Trap,
    };
    // The cause in words; a trap without a class of its own (or an error a
    // host function raised) says what wasmtime said, without the backtrace.
    let cause = match (kind, trap) {
        (FailureKind::Trap, Some(t)) => format!("trap: {t}"),
        (FailureKind::Trap, None) => format!("trap: {}", e.root_cause()),
        (k, _) => k.words().to_string(),
    };
    let mut message = cause;
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        for line in guest_frames(bt.frames()) {
            message.push_str("\n  ");
            message.push_str(&line);
        }
    }
    Failure::new(kind, message)
}

/// Frames of the language's runtime (Rust's std and panic machinery,
/// libc's start code, allocators, bindings glue): not the guest's own code,
/// and what a person reading a failure skips.
const RUNTIME_FRAMES: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "<std::",
    "<core::",
    "<alloc::",
    "<&",
    "panic_abort::",
    "panic_unwind::",
    "__rust",
    "rust_begin_unwind",
    "rust_panic",
    "__rdl_",
    "__rg_",
    "dlmalloc",
    "wit_bindgen",
    "cabi_",
    "_start",
    "__main_void",
    "__original_main",
    "__main_argc_argv",
    "__wasm_call_ctors",
    "__wasilibc",
    "__wasi_",
    "wasi:",
    "abort",
    "_Exit",
    "exit",
];

/// The guest's own frames, innermost first, as `at NAME (FILE:LINE)` or
/// `at NAME (wasm offset 0x…)`; a frame repeated (a recursion) is shown
/// once with its count. Frames of the language's runtime are left out,
/// unless nothing else is named.
fn guest_frames(frames: &[wasmtime::FrameInfo]) -> Vec<String> {
    let named: Vec<(String, Option<String>, Option<usize>)> = frames
        .iter()
        .map(|f| {
            let symbol = f.symbols().first();
            let mut name = String::new();
            match symbol.and_then(|s| s.name()).or(f.func_name()) {
                Some(n) => {
                    let _ = demangle(&mut name, n);
                }
                None => name = format!("<wasm function {}>", f.func_index()),
            }
            let place = symbol.and_then(|s| {
                let file = s.file()?;
                Some(match (s.line(), s.column()) {
                    (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
                    (Some(l), None) => format!("{file}:{l}"),
                    _ => file.to_string(),
                })
            });
            (name, place, f.module_offset())
        })
        .collect();
    let runtime = |n: &str| RUNTIME_FRAMES.iter().any(|p| n.starts_with(p));
    let own: Vec<_> = named.iter().filter(|(n, ..)| !runtime(n)).collect();
    let shown: Vec<_> = if own.is_empty() {
        named.iter().collect()
    } else {
        own
    };
    let hidden = named.len() - shown.len();
    let mut lines: Vec<String> = Vec::new();
    let mut i = 0;
    while i < shown.len() {
        let (name, place, offset) = shown[i];
        let mut n = 1;
        while i + n < shown.len() && shown[i + n].0 == *name {
            n += 1;
        }
        let at = match (place, offset) {
            (Some(p), _) => format!(" ({p})"),
            (None, Some(o)) => format!(" (wasm offset {o:#x})"),
            (None, None) => String::new(),
        };
        let times = if n > 1 {
            format!(" ×{n}")
        } else {
            String::new()
        };
        lines.push(format!("at {name}{at}{times}"));
        i += n;
    }
    if hidden > 0 {
        lines.push(format!(
            "({hidden} frames of the language runtime not shown)"
        ));
    }
    lines
}

/// Rust and C++ names as written in source (`recurse::dive`, not `_ZN…`).
fn demangle(out: &mut String, name: &str) -> std::fmt::Result {
    use std::fmt::Write;
    match rustc_demangle::try_demangle(name) {
        Ok(d) => write!(out, "{d:#}"),
        Err(_) => out.write_str(name),
    }
}

fn shadow_stack_overflow(e: &wasmtime::Error) -> bool {
    let text = format!("{e:#}");
    let Some(at) = text.find("memory fault at wasm address 0x") else {
        return false;
    };
    let hex: String = text[at + 31..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u64::from_str_radix(&hex, 16).is_ok_and(|a| a >= 0xffff_0000)
}

/// What a task file compiles to.
enum Compiled {
    Component(Component),
    Module(wasmtime::Module),
}

/// Loads a precompiled component or module, or compiles and caches it.
fn load(engine: &Engine, wasm: &Path, cwasm: &Path) -> Result<Compiled, Failure> {
    let header = crate::sandbox::adapt::header(wasm)
        .map_err(|e| Failure::host(&format!("reading {}", wasm.display()), e))?;
    let is_module = match crate::sandbox::adapt::classify(&header) {
        crate::sandbox::adapt::Binary::Component => false,
        crate::sandbox::adapt::Binary::Module => true,
        crate::sandbox::adapt::Binary::Other => {
            return Err(Failure::new(
                FailureKind::Instantiation,
                "not a WebAssembly component or module: it does not start with the wasm magic bytes",
            ));
        }
    };
    if cwasm.exists() {
        // SAFETY: the file was written by `serialize` of an engine with the
        // same compatibility hash (it is in the directory name), into a
        // store only cairn writes, and renamed into place whole.
        let loaded = if is_module {
            unsafe { wasmtime::Module::deserialize_file(engine, cwasm) }.map(Compiled::Module)
        } else {
            unsafe { Component::deserialize_file(engine, cwasm) }.map(Compiled::Component)
        };
        match loaded {
            Ok(c) => return Ok(c),
            // A stale or damaged entry is recompiled below and replaced.
            Err(_) => drop(fs::remove_file(cwasm)),
        }
    }
    let bytes =
        fs::read(wasm).map_err(|e| Failure::host(&format!("reading {}", wasm.display()), e))?;
    let invalid = |what: &str, e: wasmtime::Error| {
        Failure::new(
            FailureKind::Instantiation,
            format!("not a valid WebAssembly {what}: {e:#}"),
        )
    };
    let (compiled, serialized) = if is_module {
        let m = wasmtime::Module::new(engine, &bytes).map_err(|e| invalid("module", e))?;
        let s = m.serialize();
        (Compiled::Module(m), s)
    } else {
        let c = Component::new(engine, &bytes).map_err(|e| invalid("component", e))?;
        let s = c.serialize();
        (Compiled::Component(c), s)
    };
    // Cache failures only cost a recompile next time.
    if let Ok(serialized) = serialized {
        let _ = write_atomically(cwasm, &serialized);
    }
    Ok(compiled)
}

/// The prefix of a compiled component being written (see [`write_atomically`]).
const PARTIAL: &str = ".partial-";

/// Removes compiled components a killed process was writing: written in
/// one go right after compiling, a partial file older than a minute has no
/// writer left.
fn sweep_partial_writes(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e.file_name().to_string_lossy().starts_with(PARTIAL)
            && e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(60)));
        if stale {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache files have a parent");
    let mut tmp = tempfile::Builder::new().prefix(PARTIAL).tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
