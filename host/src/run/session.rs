//! The library's front door: load a workflow file (parse, plan, check the
//! files it names), prepare it (build source directories, hash components,
//! ingest inputs) and execute it. The CLI is a thin layer over this.

use crate::builder::{self, BuildError};
use crate::cache::{LocalCache, Value};
use crate::check::{self, Call};
use crate::diag::{Diagnostic, Diagnostics, Source};
use crate::digest::Digest;
use crate::exec::WasmExecutor;
use crate::plan::{self, Overrides, Plan};
use crate::records::{self, JobRow, OutputRow, RecordError, Recorder, Records, RunRow, RunStatus};
use crate::runtime::{ComponentRef, Runtime};
use crate::scheduler::Event;
use crate::scheduler::{self, EventSink, RunOptions, RunReport, Services};
use crate::spec;
use crate::store::Store;
use crate::typed::TaskKind;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Errors before any job runs. Whose fault each is decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The workflow file (or an override) is wrong; every problem is listed.
    #[error("{0}")]
    Workflow(#[from] Diagnostics),
    /// The workflow file could not be read.
    #[error("cannot read workflow {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A source directory named by `uses:` did not build.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A core module named by `uses:` could not be read or stored.
    #[error("{path}: {source}")]
    Adapt {
        /// The module.
        path: PathBuf,
        /// Why.
        source: crate::adapt::AdaptError,
    },
    /// A workflow input could not be read into the store.
    #[error("input `{name}` ({path}): {source}")]
    Input {
        /// The input's name.
        name: String,
        /// Its host path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The store or the engine failed: not the workflow's fault.
    #[error("{0}")]
    Host(String),
    /// Reading or writing run records failed.
    #[error(transparent)]
    Records(#[from] RecordError),
}

impl Error {
    /// True when the user's input is at fault, as opposed to the machine.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Error::Host(_) | Error::Records(_))
    }
}

/// A parsed, planned and checked workflow.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The workflow file as given.
    pub path: PathBuf,
    /// blake3 of the file's bytes.
    pub digest: Digest,
    /// The file's text, for diagnostics found after planning (type errors).
    pub source: Source,
    /// The directory relative paths in it are resolved against.
    pub dir: PathBuf,
    /// The plan.
    pub plan: Arc<Plan>,
    /// Component paths, one per job, resolved against `dir`.
    pub uses: Vec<PathBuf>,
    /// Workflow input paths, in plan order, resolved.
    pub inputs: Vec<PathBuf>,
}

/// Reads, parses and plans a workflow, and checks that every file it names
/// exists. All problems come back together, each with its position.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Loaded, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let digest = Digest::of(text.as_bytes());
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let wf = spec::parse(Source::new(path.display().to_string(), text), &stem)?;
    let plan = plan::plan(&wf, overrides)?;
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();

    let mut problems = Vec::new();
    let mut checked: HashMap<&str, PathBuf> = HashMap::new();
    let mut uses = Vec::new();
    for job in &plan.jobs {
        let p = dir.join(&job.uses.value);
        if !checked.contains_key(job.uses.value.as_str()) && !p.exists() {
            problems.push(
                Diagnostic::at(
                    job.uses.span,
                    format!("component not found: {}", p.display()),
                )
                .expected(
                    "a .wasm component or a task source directory, relative to the workflow file",
                ),
            );
        }
        checked.insert(&job.uses.value, p.clone());
        uses.push(p);
    }
    let mut inputs = Vec::new();
    for input in &plan.inputs {
        // `--input` paths are relative to where the user is; file paths to the file.
        let p = match input.span {
            Some(_) => dir.join(&input.path),
            None => PathBuf::from(&input.path),
        };
        if !p.is_file() {
            let msg = format!("input `{}`: no file at {}", input.name, p.display());
            let d = match input.span {
                Some(span) => Diagnostic::at(span, msg),
                None => Diagnostic::global(format!("--input {}={}: {msg}", input.name, input.path)),
            };
            problems.push(d.expected("a readable host file"));
        }
        inputs.push(p);
    }
    if !problems.is_empty() {
        problems.sort_by_key(|d| d.span.map(|s| s.start));
        return Err(Diagnostics {
            source: wf.source,
            items: problems,
        }
        .into());
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        digest,
        source: wf.source.clone(),
        dir,
        plan: Arc::new(plan),
        uses,
        inputs,
    })
}

/// The store a workflow uses by default: `.cairn/` beside the file.
pub fn default_store(loaded: &Loaded) -> PathBuf {
    loaded.dir.join(".cairn")
}

/// A loaded workflow with its components and inputs in hand.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// One component per job.
    pub components: Vec<ComponentRef>,
    /// Workflow inputs by name.
    pub inputs: HashMap<String, Value>,
    /// How each job is called, type-checked.
    pub calls: Vec<Call>,
    /// What kind of task each job's component is.
    pub kinds: Vec<TaskKind>,
}

/// Builds source directories, stores components and ingests inputs, then
/// reads each component's task kind and type-checks every job against it.
/// Slow steps report through `note` (for example "built tasks/split").
pub fn prepare(
    loaded: &Loaded,
    store: &Store,
    runtime: &Arc<Runtime>,
    rt: &tokio::runtime::Runtime,
    note: &mut dyn FnMut(&str),
) -> Result<Prepared, Error> {
    let mut resolved: HashMap<&Path, ComponentRef> = HashMap::new();
    let mut components = Vec::new();
    for path in &loaded.uses {
        if let Some(c) = resolved.get(path.as_path()) {
            components.push(c.clone());
            continue;
        }
        let c = store_component(path, store, note)?;
        resolved.insert(path, c.clone());
        components.push(c);
    }
    let mut inputs = HashMap::new();
    for (decl, path) in loaded.plan.inputs.iter().zip(&loaded.inputs) {
        let stored = store.put_host_file(path).map_err(|source| Error::Input {
            name: decl.name.clone(),
            path: path.clone(),
            source,
        })?;
        inputs.insert(
            decl.name.clone(),
            Value::Blob {
                digest: stored.digest,
                size: stored.size,
            },
        );
    }
    // Losing the index only costs re-hashing next time.
    let _ = store.save_index();
    let kinds = rt.block_on(inspect_all(loaded, &components, runtime))?;
    let calls = check::check(&loaded.plan, &kinds, &loaded.source)?;
    Ok(Prepared {
        components,
        inputs,
        calls,
        kinds,
    })
}

/// The component `path` names, in the store: a source directory built (see
/// [`builder`]), a preview 1 core module as a command or adapted (see
/// [`crate::adapt`]), a component
/// file as it is. Builds report through `note`.
pub fn store_component(
    path: &Path,
    store: &Store,
    note: &mut dyn FnMut(&str),
) -> Result<ComponentRef, Error> {
    let stored = if path.is_dir() {
        let built = builder::build_dir(path, store)?;
        if built.fresh {
            note(&format!("built {} ({})", path.display(), built.language));
        }
        built.stored
    } else {
        // Into the store, so a recorded run can be re-executed (`cairn
        // verify`) even after the file changes; unchanged files are
        // neither copied nor hashed again.
        let stored = store
            .put_host_file(path)
            .map_err(|e| Error::Host(format!("storing {}: {e}", path.display())))?;
        let header = crate::adapt::header(&store.blob_path(&stored.digest))
            .map_err(|e| Error::Host(format!("reading {}: {e}", path.display())))?;
        if crate::adapt::classify(&header) != crate::adapt::Binary::Module {
            stored
        } else {
            match crate::adapt::adapt_stored(store, &stored.digest) {
                Ok(task) => task,
                // Like any unloadable component, it fails its job alone:
                // the runtime finds the module unusable and says why.
                Err(crate::adapt::AdaptError::Invalid(_)) => stored,
                Err(source) => {
                    return Err(Error::Adapt {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        }
    };
    Ok(ComponentRef {
        path: store.blob_path(&stored.digest),
        digest: stored.digest,
    })
}

/// Each job's task kind, reading each distinct component once (in parallel:
/// a first run compiles them).
async fn inspect_all(
    loaded: &Loaded,
    components: &[ComponentRef],
    runtime: &Arc<Runtime>,
) -> Result<Vec<TaskKind>, Error> {
    let mut set = tokio::task::JoinSet::new();
    let mut seen = HashMap::new();
    for (job, c) in loaded.plan.jobs.iter().zip(components) {
        let call = job.call.as_ref().map(|c| c.value.clone());
        let key = (c.digest, call.clone());
        if seen.contains_key(&key) {
            continue;
        }
        seen.insert(key.clone(), None);
        let (runtime, c) = (runtime.clone(), c.clone());
        set.spawn(async move { (key, runtime.inspect(&c, call.as_deref()).await) });
    }
    while let Some(r) = set.join_next().await {
        let (key, kind) = r.map_err(|e| Error::Host(format!("inspecting components: {e}")))?;
        seen.insert(key, Some(kind));
    }
    let kinds = loaded
        .plan
        .jobs
        .iter()
        .zip(components)
        .map(|(job, c)| {
            let call = job.call.as_ref().map(|c| c.value.clone());
            match seen[&(c.digest, call)]
                .clone()
                .expect("every component was inspected")
            {
                Ok(kind) => kind,
                Err(f) => TaskKind::Unusable(f.message),
            }
        })
        .collect();
    Ok(kinds)
}

/// The problems `cairn check` reports beyond type errors: components that
/// cannot be used at all (a run lets those jobs fail alone).
pub fn unusable(loaded: &Loaded, prepared: &Prepared) -> Result<(), Diagnostics> {
    let items: Vec<Diagnostic> = loaded
        .plan
        .jobs
        .iter()
        .zip(&prepared.kinds)
        .filter_map(|(job, kind)| match kind {
            TaskKind::Unusable(why) => {
                let span = job.call.as_ref().map_or(job.uses.span, |c| c.span);
                Some(
                    Diagnostic::at(span, format!("job `{}`: {why}", job.name))
                        .expected("a command component or a typed task"),
                )
            }
            _ => None,
        })
        .collect();
    if items.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics {
            source: loaded.source.clone(),
            items,
        })
    }
}

/// Executes a prepared workflow with the real wasm executor and the store's
/// action cache, reporting progress to `events`. Call it within a
/// multi-threaded tokio runtime: the scheduler is spawned onto one of its
/// workers.
pub async fn execute(
    loaded: &Loaded,
    prepared: &Arc<Prepared>,
    store: Arc<Store>,
    runtime: Arc<Runtime>,
    events: Arc<dyn EventSink>,
    opts: &RunOptions,
) -> RunReport {
    let blobs = store.clone();
    let services = Services {
        executor: Arc::new(WasmExecutor::new(runtime, store.clone())),
        cache: Arc::new(LocalCache::new(store)),
        blobs: Arc::new(move |d| blobs.read(d).ok()),
        events,
    };
    let (plan, prepared, opts) = (loaded.plan.clone(), prepared.clone(), opts.clone());
    // The scheduler runs on a worker, beside the jobs, not on the thread
    // that waits for it: a job that ends wakes it on the same thread, and
    // the jobs it releases start there. Without this, every hop of a chain
    // woke two threads (the 1,000-deep chain took 1.7× as long).
    let scheduler = tokio::spawn(async move {
        let p = &*prepared;
        scheduler::run(plan, &p.calls, &p.components, &p.inputs, services, &opts).await
    });
    scheduler
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Opens the store and creates the engine that `execute` needs.
pub fn open(store_dir: &Path) -> Result<(Arc<Store>, Arc<Runtime>), Error> {
    let store = Store::open(store_dir)
        .map_err(|e| Error::Host(format!("store {}: {e}", store_dir.display())))?;
    let runtime = Runtime::new(&store.root().join("compiled"))
        .map_err(|e| Error::Host(format!("engine: {e:#}")))?;
    Ok((Arc::new(store), Arc::new(runtime)))
}

/// A recorded run, by id: cheap to open from any process that can read the
/// store, whether or not the run is still going.
#[derive(Debug, Clone)]
pub struct Run {
    id: String,
    records: Arc<Records>,
}

/// How long [`Run::results`] waits for a run that has not ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Do not wait: an unfinished run is an error.
    No,
    /// Wait at most this long.
    Up(Duration),
    /// Wait until the run ends.
    Forever,
}

/// Why a run has no results to give.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The run is still going and the caller did not wait.
    #[error("run {0} is still running; wait for it with `cairn results {0} --wait`")]
    Running(String),
    /// The run did not end within the wait.
    #[error("run {id} is still running after waiting {waited:?}")]
    TimedOut {
        /// The run.
        id: String,
        /// How long we waited.
        waited: Duration,
    },
    /// Reading the records failed.
    #[error(transparent)]
    Records(#[from] RecordError),
}

impl Run {
    /// Opens the run whose id starts with `id_or_prefix` in the store at `store_dir`.
    pub fn open(store_dir: &Path, id_or_prefix: &str) -> Result<Run, RecordError> {
        let records = Arc::new(Records::open(store_dir)?);
        let id = records.resolve(id_or_prefix)?;
        Ok(Run { id, records })
    }

    /// The run's full id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The records it reads.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// The run's current state (a run whose process died is `interrupted`).
    pub fn status(&self) -> Result<RunRow, RecordError> {
        self.records.run(&self.id)
    }

    /// Its jobs in plan order.
    pub fn jobs(&self) -> Result<Vec<JobRow>, RecordError> {
        self.records.jobs(&self.id)
    }

    /// Blocks until the run ends or `wait` runs out, polling the records.
    pub fn wait(&self, wait: Wait) -> Result<RunRow, ResultsError> {
        let started = Instant::now();
        loop {
            let row = self.status()?;
            if row.status.is_final() {
                return Ok(row);
            }
            match wait {
                Wait::No => return Err(ResultsError::Running(self.id.clone())),
                Wait::Up(limit) if started.elapsed() >= limit => {
                    return Err(ResultsError::TimedOut {
                        id: self.id.clone(),
                        waited: started.elapsed(),
                    });
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// The run's outputs once it has ended (waiting as asked), with its final state.
    pub fn results(&self, wait: Wait) -> Result<(RunRow, Vec<OutputRow>), ResultsError> {
        let row = self.wait(wait)?;
        Ok((row, self.records.outputs(&self.id)?))
    }
}

/// A run executing on its own thread.
#[derive(Debug)]
pub struct Started {
    /// The recorded run.
    pub run: Run,
    report: std::sync::mpsc::Receiver<Result<RunReport, Error>>,
    thread: std::thread::JoinHandle<()>,
}

impl Started {
    /// Waits for the run to end and be recorded. Its thread then releases
    /// what it held (the engine, its instance pool, the run's state) on its
    /// own: a caller about to exit need not wait for that.
    pub fn wait(self) -> Result<RunReport, Error> {
        match self.report.recv() {
            Ok(report) => report,
            // The thread ended without reporting: it panicked.
            Err(_) => match self.thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("a run thread that returns has reported"),
            },
        }
    }
}

/// Records a new run and executes it on a new thread (with its own async
/// runtime), returning as soon as the run is recorded, so its id can be
/// handed out at once. Builds and input ingestion happen on that thread; a
/// failure there ends the run as failed, with the reason recorded.
pub fn start(
    loaded: Loaded,
    store_dir: &Path,
    opts: RunOptions,
    events: Arc<dyn EventSink>,
    note: Box<dyn FnMut(&str) + Send>,
) -> Result<Started, Error> {
    let (store, runtime) = open(store_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        // Wasm runs on the async workers, one per job slot, and the
        // scheduler among them (`execute`). Not one more worker: an idle
        // one is woken and parked again at every hop of a chain.
        .worker_threads(opts.jobs.max(1))
        .enable_all()
        .build()
        .map_err(|e| Error::Host(format!("starting the async runtime: {e}")))?;
    // Built, hashed and type-checked before the run is recorded: a workflow
    // that cannot run is the caller's to fix, not a failed run.
    let mut note = note;
    let prepared = Arc::new(prepare(&loaded, &store, &runtime, &rt, &mut *note)?);
    let records = Arc::new(Records::open(store.root())?);
    let id = records::new_run_id();
    let lock = records.begin_run(&records::NewRun {
        id: id.clone(),
        plan: &loaded.plan,
        workflow_path: loaded.path.display().to_string(),
        workflow_digest: loaded.digest,
    })?;
    let recorder = Arc::new(Recorder::start(records.clone(), id.clone()));
    recorder.inputs(
        prepared
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let run = Run {
        id: id.clone(),
        records,
    };
    let (ended, report) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name(format!("cairn-run-{id}"))
        .spawn(move || {
            let sinks: Arc<dyn EventSink> = Arc::new(Tee(vec![recorder.clone(), events]));
            let report = rt.block_on(execute(&loaded, &prepared, store, runtime, sinks, &opts));
            let status = if report.success() {
                RunStatus::Succeeded
            } else {
                RunStatus::Failed
            };
            let result = recorder.finish(status, None).map(|()| report);
            drop(lock);
            // The run is over and recorded: hand the report out now. Tearing
            // down the engine, its pool and the run's state (7 ms at 10,000
            // jobs) need not delay a process about to exit (`Started::wait`).
            let _ = ended.send(result.map_err(Error::from));
        })
        .map_err(|e| Error::Host(format!("starting the run thread: {e}")))?;
    Ok(Started {
        run,
        report,
        thread,
    })
}

/// Sends every event to several sinks, in order.
struct Tee(Vec<Arc<dyn EventSink>>);

impl EventSink for Tee {
    fn event(&self, plan: &Plan, event: &Event) {
        for sink in &self.0 {
            sink.event(plan, event);
        }
    }
}

/// Ignores events; for runs nobody watches (detached, or embedders that poll).
#[derive(Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&self, _plan: &Plan, _event: &Event) {}
}
