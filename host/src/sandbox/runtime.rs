//! The wasmtime side: one engine per process (a second, fuel-metered one
//! only if a job asks for fuel), components compiled once and cached on
//! disk, and one fresh `Store` per job with its limits.
//!
//! WASI preview 1 command modules (a `main()` from a wasip1 toolchain) run
//! as core modules against wasmtime-wasi's own preview 1, in the same
//! sandbox. Wrapping them in the preview 1 adapter instead breaks runtimes
//! that own all of linear memory (Go; wasi-libc before 2023): the adapter
//! grows memory for its state and their allocators hand those pages out.

use crate::digest::Digest;
use crate::outcome::{Failure, FailureKind};
use crate::task_host::{self, TaskCtx, TaskView};
use crate::typed::TaskKind;
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

/// A component to run: where it is and what its bytes hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentRef {
    /// The component file (in the store's CAS once prepared).
    pub path: PathBuf,
    /// The digest of its bytes.
    pub digest: Digest,
}

/// Limits on one job's execution. The defaults are the CLI's documented ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecLimits {
    /// Linear memory per memory, in bytes.
    pub memory: u64,
    /// Wall-clock time.
    pub timeout: Duration,
    /// Fuel; `None` runs unmetered (and faster).
    pub fuel: Option<u64>,
    /// Total bytes of declared outputs.
    pub output: u64,
    /// Bytes of stdout and stderr kept as the log.
    pub log: u64,
}

impl Default for ExecLimits {
    fn default() -> Self {
        ExecLimits {
            memory: 2 << 30,
            timeout: Duration::from_secs(600),
            fuel: None,
            output: 1 << 30,
            log: 8 << 20,
        }
    }
}

/// What an execution measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecStats {
    /// The largest linear memory the guest asked for, in bytes.
    pub peak_memory: u64,
    /// Fuel consumed, when metered.
    pub fuel: Option<u64>,
}

/// Watches a running job from the epoch callback.
pub struct Watch {
    /// When the job's time is up.
    deadline: Instant,
    /// Bytes the job has written as outputs so far (measured by the sandbox).
    output_usage: Box<dyn Fn() -> u64 + Send + Sync>,
    /// The output limit.
    output_limit: u64,
    /// Why the job was stopped, if it was.
    stopped: Option<FailureKind>,
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
    pub fn reported(&self) -> &crate::task_host::Reported {
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
                crate::typed::task_kind(&component, &self.plain.engine, call)
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
    /// `output_usage` reports the bytes written to outputs so far.
    pub async fn run(
        &self,
        entry: Entry<'_>,
        wasi: Wasi,
        task: TaskCtx,
        limits: ExecLimits,
        output_usage: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> Result<(ExecStats, crate::task_host::Reported), Failure> {
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
        store.epoch_deadline_callback(|mut cx| {
            let w = &mut cx.data_mut().watch;
            if Instant::now() >= w.deadline {
                w.stopped = Some(FailureKind::Timeout);
                return Ok(UpdateDeadline::Interrupt);
            }
            if (w.output_usage)() > w.output_limit {
                w.stopped = Some(FailureKind::OutputLimit);
                return Ok(UpdateDeadline::Interrupt);
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
                            "the program exited with a failure status (WASI 0.2 carries no exit code)",
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
        match (result, data.watch.stopped) {
            (_, Some(FailureKind::OutputLimit)) => Err(output_limit(limits.output)),
            (_, Some(_)) => Err(timeout(limits.timeout)),
            (Ok(Ok(())), None) => done,
            (Ok(Err(_)), None) if oom => Err(out_of_memory(limits.memory)),
            (Ok(Err(f)), None) => Err(f),
            (Err(e), None) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(0)) => done,
                Some(I32Exit(code)) => {
                    Err(Failure::new(FailureKind::Exit, format!("exit code {code}")))
                }
                None if oom => Err(out_of_memory(limits.memory)),
                None => Err(classify_trap(&e, limits)),
            },
        }
    }
}

/// Why the core module at `path`, which has no `_start`, is no task: only
/// a module that could not be adapted into a component stays a reactor.
fn not_a_command(path: &Path) -> String {
    let why = match fs::read(path).map(|b| crate::adapt::adapt(&b)) {
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
        format!("ran longer than the limit of {limit:?}"),
    )
}

/// The failure for outputs over the limit.
pub fn output_limit(limit: u64) -> Failure {
    Failure::new(
        FailureKind::OutputLimit,
        format!("outputs exceeded the limit of {} bytes", limit),
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
        Some(Trap::StackOverflow) => Failure::new(FailureKind::StackOverflow, trap_message(e)),
        // Toolchains keep a shadow stack at the bottom of linear memory that
        // grows down; overflowing it wraps the stack pointer to the top of
        // the 32-bit space, and the next access faults there.
        Some(Trap::MemoryOutOfBounds) if shadow_stack_overflow(e) => Failure::new(
            FailureKind::StackOverflow,
            format!(
                "the guest's stack in linear memory overflowed (unbounded recursion?): {}",
                trap_message(e)
            ),
        ),
        Some(Trap::OutOfFuel) => Failure::new(
            FailureKind::OutOfFuel,
            format!("used all of its {} fuel", limits.fuel.unwrap_or(0)),
        ),
        _ => Failure::new(FailureKind::Trap, trap_message(e)),
    }
}

/// The trap's cause and its wasm backtrace (function names where the
/// component has them), without the host's own backtrace, trimmed.
fn trap_message(e: &wasmtime::Error) -> String {
    const FRAMES: usize = 12;
    let text = format!("{e:#}");
    let mut out = Vec::new();
    let mut frames = 0;
    for line in text.lines() {
        let is_frame = line
            .trim_start()
            .split(':')
            .next()
            .is_some_and(|n| n.parse::<u32>().is_ok());
        if is_frame {
            frames += 1;
            if frames > FRAMES {
                continue;
            }
        }
        out.push(line);
    }
    let mut msg = out.join("\n");
    if frames > FRAMES {
        msg.push_str(&format!("\n    … {} more frames", frames - FRAMES));
    }
    msg
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
    let header = crate::adapt::header(wasm)
        .map_err(|e| Failure::host(&format!("reading {}", wasm.display()), e))?;
    let is_module = match crate::adapt::classify(&header) {
        crate::adapt::Binary::Component => false,
        crate::adapt::Binary::Module => true,
        crate::adapt::Binary::Other => {
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

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache files have a parent");
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
