//! The library's front door for running: prepare a loaded workflow (build
//! source directories, hash components, ingest inputs, type-check), wire
//! the executor, cache and records behind the scheduler's seams, and start
//! a recorded run. The CLI is a thin layer over this.

use crate::build::{self, BuildError};
use crate::remote::cache::{Fetching, Note, RemoteCache};
use crate::remote::client::Remote;
use crate::remote::config::Target;
use crate::remote::exec::RemoteExecutor;
use crate::run::executor::{ComponentRef, Executor};
use crate::run::recorded::Run;
use crate::run::scheduler::Event;
use crate::run::scheduler::{self, EventSink, RunOptions, RunReport, Services};
use crate::sandbox::executor::LocalExecutor;
use crate::sandbox::runtime::Runtime;
use crate::store::action::Value;
use crate::store::blobs::Store;
use crate::store::cache::{ActionCache, LocalCache};
use crate::store::digest::RunKey;
use crate::store::records::{self, RecordError, Recorder, Records, RunStatus};
use crate::workflow::check::{self, Call};
use crate::workflow::diag::{Diagnostic, Diagnostics};
use crate::workflow::load::{LoadError, Loaded};
use crate::workflow::plan::Plan;
use crate::workflow::typed::TaskKind;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        source: crate::sandbox::adapt::AdaptError,
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
    /// The runtime configuration named is unknown or incomplete.
    #[error("error: {0}")]
    Config(String),
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
        match self {
            Error::Host(_) | Error::Records(_) => false,
            // The input was read; the store could not take it.
            Error::Input { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::StorageFull
                    | io::ErrorKind::QuotaExceeded
                    | io::ErrorKind::ReadOnlyFilesystem
            ),
            _ => true,
        }
    }
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
/// [`crate::sandbox::adapt`]), a component
/// file as it is. Builds report through `note`.
pub fn store_component(
    path: &Path,
    store: &Store,
    note: &mut dyn FnMut(&str),
) -> Result<ComponentRef, Error> {
    let stored = if path.is_dir() {
        let built = build::build_dir(path, store)?;
        if built.fresh {
            note(&format!("built {} ({})", path.display(), built.language));
        }
        built.stored
    } else {
        // Not wasm at all (`uses:` naming some other host file): it fails
        // its job as it loads, and its bytes never enter the store.
        let header = crate::sandbox::adapt::header(path)
            .map_err(|e| Error::Host(format!("reading {}: {e}", path.display())))?;
        if crate::sandbox::adapt::classify(&header) == crate::sandbox::adapt::Binary::Other {
            let mut hasher = crate::store::digest::BlobHasher::new(false);
            hasher
                .update_file(path)
                .map_err(|e| Error::Host(format!("reading {}: {e}", path.display())))?;
            return Ok(ComponentRef {
                path: path.to_path_buf(),
                digest: hasher.finish().0,
            });
        }
        // Into the store, so a recorded run can be re-executed (`cairn
        // verify`) even after the file changes; unchanged files are
        // neither copied nor hashed again.
        let stored = store
            .put_host_file(path)
            .map_err(|e| Error::Host(format!("storing {}: {e}", path.display())))?;
        let header = crate::sandbox::adapt::header(&store.blob_path(&stored.digest))
            .map_err(|e| Error::Host(format!("reading {}: {e}", path.display())))?;
        if crate::sandbox::adapt::classify(&header) != crate::sandbox::adapt::Binary::Module {
            stored
        } else {
            match crate::sandbox::adapt::adapt_stored(store, &stored.digest) {
                Ok(task) => task,
                // Like any unloadable component, it fails its job alone:
                // the runtime finds the module unusable and says why.
                Err(crate::sandbox::adapt::AdaptError::Invalid(_)) => stored,
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

/// A connected remote, and how a run uses it.
#[derive(Clone)]
pub struct Connected {
    /// The client.
    pub remote: Arc<Remote>,
    /// Execute jobs remotely (else: only the cache is remote).
    pub exec: bool,
    /// Where warnings about the server go.
    pub note: Note,
}

impl Connected {
    /// Connects to the target's server, at once or with a clear error.
    /// Call it within the run's tokio runtime, before anything is put in
    /// the store (so that blobs get their remote names as they are stored).
    pub async fn connect(target: &Target, store: Arc<Store>, note: Note) -> Result<Self, Error> {
        let remote = Remote::connect(target.spec.clone(), store)
            .await
            .map_err(|e| Error::Host(e.to_string()))?;
        Ok(Connected {
            remote,
            exec: target.exec,
            note,
        })
    }
}

/// Executes a prepared workflow with the real wasm executor and the store's
/// action cache (with `remote`'s in front of it), reporting progress to
/// `events`. Call it within a multi-threaded tokio runtime: the scheduler
/// is spawned onto one of its workers.
pub async fn execute(
    loaded: &Loaded,
    prepared: &Arc<Prepared>,
    store: Arc<Store>,
    runtime: Arc<Runtime>,
    events: Arc<dyn EventSink>,
    opts: &RunOptions,
    remote: Option<&Connected>,
) -> RunReport {
    let blobs = store.clone();
    let local: Arc<dyn Executor> = Arc::new(LocalExecutor::new(runtime, store.clone()));
    let (executor, cache, remote_cache): (Arc<dyn Executor>, Arc<dyn ActionCache>, _) = match remote
    {
        None => (local, Arc::new(LocalCache::new(store)), None),
        Some(c) => {
            let cache = Arc::new(RemoteCache::new(
                LocalCache::new(store),
                c.remote.clone(),
                c.note.clone(),
            ));
            let here: Arc<dyn Executor> = Arc::new(Fetching::new(local, c.remote.clone()));
            let executor: Arc<dyn Executor> = if c.exec {
                Arc::new(RemoteExecutor::new(c.remote.clone(), here))
            } else {
                here
            };
            (executor, cache.clone(), Some(cache))
        }
    };
    // A condition reads a typed output; one answered by the remote cache
    // is fetched first (rarely: conditions read a few small values).
    let fetcher = remote.map(|c| (c.remote.clone(), tokio::runtime::Handle::current()));
    let services = Services {
        executor,
        cache,
        blobs: Arc::new(move |d| {
            if let Some((remote, rt)) = &fetcher
                && !blobs.contains(d)
            {
                tokio::task::block_in_place(|| rt.block_on(remote.fetch(&[*d]))).ok()?;
            }
            blobs.read(d).ok()
        }),
        events,
    };
    let run_key = run_key(loaded, prepared);
    let (plan, prepared2, opts) = (loaded.plan.clone(), prepared.clone(), opts.clone());
    // The scheduler runs on a worker, beside the jobs, not on the thread
    // that waits for it: a job that ends wakes it on the same thread, and
    // the jobs it releases start there. Without this, every hop of a chain
    // woke two threads (the 1,000-deep chain took 1.7× as long).
    let scheduler = tokio::spawn(async move {
        let p = &*prepared2;
        scheduler::run(
            plan,
            &p.calls,
            &p.components,
            &p.inputs,
            services,
            &opts,
            Some(run_key),
        )
        .await
    });
    let mut report = scheduler
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    if let (Some(c), Some(cache)) = (remote, remote_cache) {
        if let Err(e) = cache.flush().await {
            (c.note)(&format!("warning: some results were not uploaded: {e}"));
        }
        // The run's final outputs are wanted here (they are what it
        // prints); everything else stays on the server until asked for.
        let finals = final_outputs(&loaded.plan, &report);
        if let Err(e) = c.remote.fetch(&finals).await {
            report.host_error = Some(format!("fetching the run's outputs: {e}"));
        }
        report.remote_calls = c.remote.stats().snapshot();
    }
    report
}

/// What a run starts from, hashed: the workflow file, the parameters as
/// used, the inputs' and the components' digests. Two runs with the same
/// key will very likely compute the same action keys, so the second asks
/// for the first's summary (see [`crate::store::cache::Summary`]).
fn run_key(loaded: &Loaded, prepared: &Prepared) -> RunKey {
    let mut h = blake3::Hasher::new();
    h.update(b"cairn run summary 1\0");
    h.update(&loaded.digest.0);
    h.update(
        serde_json::to_string(&loaded.plan.params)
            .expect("serialisable")
            .as_bytes(),
    );
    let mut inputs: Vec<(&String, &Value)> = prepared.inputs.iter().collect();
    inputs.sort_by(|a, b| a.0.cmp(b.0));
    h.update(
        serde_json::to_string(&inputs)
            .expect("serialisable")
            .as_bytes(),
    );
    for c in &prepared.components {
        h.update(&c.digest.0);
    }
    RunKey(*h.finalize().as_bytes())
}

/// Every blob of the outputs of jobs nothing depends on.
fn final_outputs(plan: &Plan, report: &RunReport) -> Vec<crate::store::digest::Digest> {
    let mut consumed = vec![false; plan.jobs.len()];
    for j in &plan.jobs {
        for &d in &j.deps {
            consumed[d] = true;
        }
    }
    plan.jobs
        .iter()
        .zip(&report.jobs)
        .filter(|(j, r)| !consumed[j.id] && r.status.is_success())
        .flat_map(|(_, r)| r.outputs.values().flat_map(Value::digests))
        .collect()
}

/// Opens the store and creates the engine that `execute` needs.
pub fn open(store_dir: &Path) -> Result<(Arc<Store>, Arc<Runtime>), Error> {
    let store = Store::open(store_dir)
        .map_err(|e| Error::Host(format!("store {}: {e}", store_dir.display())))?;
    let runtime = Runtime::new(&store.root().join("compiled"))
        .map_err(|e| Error::Host(format!("engine: {e:#}")))?;
    Ok((Arc::new(store), Arc::new(runtime)))
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
    note: Note,
    target: Option<&Target>,
) -> Result<Started, Error> {
    let (store, runtime) = open(store_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        // Wasm runs on the async workers, one per job slot, and the
        // scheduler among them (`execute`). Not one more worker: an idle
        // one is woken and parked again at every hop of a chain.
        .worker_threads(if target.is_some_and(|t| t.exec) {
            // Jobs run elsewhere: slots are open executions, not threads.
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            opts.jobs.max(1)
        })
        .enable_all()
        .build()
        .map_err(|e| Error::Host(format!("starting the async runtime: {e}")))?;
    // Built, hashed and type-checked before the run is recorded: a workflow
    // that cannot run is the caller's to fix, not a failed run.
    let remote = match target {
        Some(t) => Some(rt.block_on(Connected::connect(t, store.clone(), note.clone()))?),
        None => None,
    };
    let prepared = Arc::new(prepare(&loaded, &store, &runtime, &rt, &mut |n| note(n))?);
    let records = Arc::new(Records::open(store.root())?);
    let id = records::new_run_id();
    let lock = records.begin_run(&records::NewRun {
        id,
        plan: &loaded.plan,
        workflow_path: loaded.path.display().to_string(),
        workflow_digest: loaded.digest,
    })?;
    let id = lock.id().to_string();
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
            let report = rt.block_on(execute(
                &loaded,
                &prepared,
                store,
                runtime,
                sinks,
                &opts,
                remote.as_ref(),
            ));
            let status = if report.success() {
                RunStatus::Succeeded
            } else {
                RunStatus::Failed
            };
            let result = recorder
                .finish(status, report.host_error.clone())
                .map(|()| report);
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

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Workflow(d) => Error::Workflow(d),
            LoadError::Read { path, source } => Error::Read { path, source },
        }
    }
}
