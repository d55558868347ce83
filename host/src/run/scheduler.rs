//! The scheduler: runs a plan's jobs in dependency order, as many at once as
//! allowed, consulting the action cache first. It knows only traits (an
//! executor, a cache, an event sink) and never prints: it reports events.

use crate::run::executor::{ComponentRef, ExecLimits, Executor, JobRequest};
use crate::run::outcome::{Failure, FailureKind, Outcome};
use crate::store::action::CACHE_FORMAT;
use crate::store::action::{ActionInputs, Manifest, SandboxKey, Value};
use crate::store::cache::{ActionCache, Lookup, Summary};
use crate::store::digest::{ActionKey, RunKey};
use crate::workflow::check::Call;
use crate::workflow::cond::{Field, Read};
use crate::workflow::plan::{InputSource, JobId, Plan};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Receives the scheduler's events. Called from several tasks at once; a
/// job's events arrive in order (`Queued`, `Running`, `Done`), and a job's
/// `Done` always comes before a job that waited for its slot reports `Running`.
pub trait EventSink: Send + Sync + 'static {
    /// Called for every event.
    fn event(&self, plan: &Plan, event: &Event);
}

/// Something that happened to a job.
#[derive(Debug, Clone)]
pub enum Event {
    /// Its dependencies are done; it is waiting for a free slot.
    Queued(JobId),
    /// It started executing; attempts count from 1.
    Running(JobId, u32),
    /// An attempt failed and the job will run again after `backoff`.
    Retrying {
        /// The job.
        job: JobId,
        /// The attempt that failed.
        attempt: u32,
        /// Why it failed.
        failure: Failure,
        /// The wait before the next attempt.
        backoff: Duration,
    },
    /// It reached its final state.
    Done(JobId, Arc<JobReport>),
}

/// A job's final state.
#[derive(Debug, Clone, PartialEq)]
pub enum JobStatus {
    /// Executed and succeeded.
    Executed,
    /// Its result came from the action cache.
    Cached,
    /// Failed, for this reason.
    Failed(Failure),
    /// Not run, for this reason.
    Skipped(SkipReason),
}

/// Why a job was not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A job it depends on failed or was skipped.
    Upstream(JobId),
    /// Another job failed and `--keep-going` was not given.
    RunStopped,
    /// Its `if:` condition was false, or that of a job it depends on.
    Condition,
}

impl SkipReason {
    /// The reason in words, as records and `--json` keep it; `name` gives
    /// a job's display name (the id is internal).
    pub fn describe(&self, name: &dyn Fn(JobId) -> String) -> String {
        match self {
            SkipReason::Upstream(up) => format!("needs {}, which did not succeed", name(*up)),
            SkipReason::RunStopped => "the run stopped after a failure".to_string(),
            SkipReason::Condition => {
                "condition: its `if:`, or that of a job it needs, was false".to_string()
            }
        }
    }
}

impl JobStatus {
    /// True for executed and cached jobs.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            JobStatus::Executed | JobStatus::Cached | JobStatus::Skipped(SkipReason::Condition)
        )
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Jobs executing at once.
    pub jobs: usize,
    /// Keep running jobs that do not depend on a failure.
    pub keep_going: bool,
    /// Ignore the action cache (results are still stored).
    pub no_cache: bool,
    /// Limits for jobs that do not set their own.
    pub limits: ExecLimits,
    /// Secret values by name; a job sees only those it declares.
    pub secrets: Arc<BTreeMap<String, String>>,
    /// Key for hashing secret values into action keys (per store).
    pub secret_key: [u8; 32],
}

/// The final state of one job.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// Its final status.
    pub status: JobStatus,
    /// Its outputs, when it succeeded.
    pub outputs: BTreeMap<String, Value>,
    /// Its manifest (log digests, execution time), when it succeeded.
    pub manifest: Option<Manifest>,
    /// Its action key, once its inputs were known.
    pub key: Option<ActionKey>,
    /// What went into that key.
    pub action: Option<ActionInputs>,
    /// The limits it ran under.
    pub limits: Option<ExecLimits>,
    /// Attempts made (0 for cached and skipped jobs).
    pub attempts: u32,
    /// Time spent running (for a cached job, the cache lookup).
    pub elapsed: Duration,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// One report per planned job, by id.
    pub jobs: Vec<JobReport>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Calls made to a remote server, by method (empty for a local run).
    pub remote_calls: Vec<(&'static str, u64)>,
    /// Why the run failed although its jobs did not (its outputs could not
    /// be fetched from the remote): the machine's fault, not the workflow's.
    pub host_error: Option<String>,
}

impl RunReport {
    /// True when every job succeeded and the run delivered its outputs.
    pub fn success(&self) -> bool {
        self.host_error.is_none() && self.jobs.iter().all(|j| j.status.is_success())
    }

    /// How many jobs ended with a status like `f`.
    pub fn count(&self, f: impl Fn(&JobStatus) -> bool) -> usize {
        self.jobs.iter().filter(|j| f(&j.status)).count()
    }
}

/// Reads a blob's bytes, checked against its digest; `None` if absent.
pub type BlobReader = dyn Fn(&crate::store::digest::Digest) -> Option<Vec<u8>> + Send + Sync;

/// The scheduler's collaborators.
#[derive(Clone)]
pub struct Services {
    /// Runs jobs.
    pub executor: Arc<dyn Executor>,
    /// Remembers results.
    pub cache: Arc<dyn ActionCache>,
    /// Reads a blob (a typed output a condition compares), checked.
    pub blobs: Arc<BlobReader>,
    /// Hears about progress.
    pub events: Arc<dyn EventSink>,
}

/// Runs every job of `plan`. `components[id]` is job `id`'s component and
/// `inputs` holds the workflow inputs, already in the store.
pub async fn run(
    plan: Arc<Plan>,
    calls: &[Call],
    components: &[ComponentRef],
    inputs: &HashMap<String, Value>,
    services: Services,
    opts: &RunOptions,
    run_key: Option<RunKey>,
) -> RunReport {
    let started = Instant::now();
    // What the last run from the same start gave: candidates, used only for
    // a job whose key comes out equal (so `why` and the records stay exact).
    let mut primed: HashMap<ActionKey, Manifest> = HashMap::new();
    if let Some(k) = run_key.filter(|_| !opts.no_cache)
        && let Some(summary) = services.cache.summary(&k).await
    {
        primed.extend(summary.jobs);
    }
    let primed_len = primed.len();
    let mut dag = Progress::new(plan.clone(), services.clone());
    let mut ready: Vec<JobId> = (0..plan.jobs.len())
        .filter(|&i| dag.waiting[i] == 0)
        .collect();
    let mut set: JoinSet<(JobId, Arc<JobReport>)> = JoinSet::new();
    let permits = Arc::new(Semaphore::new(opts.jobs.max(1)));
    let mut stopping = false;

    loop {
        // Launch in plan order so runs are easy to follow.
        ready.sort_unstable_by(|a, b| b.cmp(a));
        while let Some(id) = ready.pop() {
            // A job that handles another's end still runs: its condition
            // says whether it should.
            if stopping && plan.jobs[id].watches.is_empty() {
                dag.finish(id, skipped(SkipReason::RunStopped));
                continue;
            }
            match condition(&plan, id, &dag.reports, &*services.blobs) {
                Ok(true) => {}
                Ok(false) => {
                    dag.finish(id, skipped(SkipReason::Condition));
                    ready.extend(dag.release(id));
                    continue;
                }
                Err(failure) => {
                    dag.finish(
                        id,
                        JobReport {
                            status: JobStatus::Failed(failure),
                            ..skipped(SkipReason::RunStopped)
                        },
                    );
                    ready.extend(dag.release(id));
                    stopping |= !opts.keep_going;
                    continue;
                }
            }
            services.events.event(&plan, &Event::Queued(id));
            match request(
                &plan,
                &calls[id],
                components,
                inputs,
                &dag.reports,
                id,
                opts,
            ) {
                Ok(req) => {
                    let started = Instant::now();
                    let pending = if plan.jobs[id].cacheable && !opts.no_cache {
                        let found = match primed.remove(&req.key) {
                            Some(m) => Lookup::Hit(m),
                            None => services.cache.lookup(&req.key, &req.action),
                        };
                        match found {
                            // A hit is answered here, without a task: a cached
                            // job has nothing to wait for, and its dependents
                            // become ready at once (a fully cached chain needs
                            // no hops).
                            Lookup::Hit(m) => {
                                let report = cached(&req, m, started);
                                dag.reports[id] = Some(done(&plan, &services, id, report));
                                ready.extend(dag.release(id));
                                continue;
                            }
                            Lookup::Miss => None,
                            Lookup::Pending(answer) => Some(answer),
                        }
                    } else {
                        None
                    };
                    let services = services.clone();
                    let permits = permits.clone();
                    let plan = plan.clone();
                    set.spawn(async move {
                        // A remote answer is awaited here, in the job's task.
                        if let Some(answer) = pending
                            && let Some(m) = answer.await
                        {
                            let report = cached(&req, m, started);
                            return (id, done(&plan, &services, id, report));
                        }
                        (id, execute(plan, req, services, permits).await)
                    });
                }
                Err(failure) => {
                    let report = JobReport {
                        status: JobStatus::Failed(failure),
                        ..skipped(SkipReason::RunStopped)
                    };
                    dag.finish(id, report);
                    ready.extend(dag.release(id));
                    stopping |= !opts.keep_going;
                }
            }
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (id, report) = match joined {
            Ok(r) => r,
            // A panic in our own code is a bug; surface it instead of hanging.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let failed = !report.status.is_success();
        // The job's task already reported `Done`, while it held its slot.
        dag.reports[id] = Some(report);
        ready.extend(dag.release(id));
        stopping |= failed && !opts.keep_going;
    }
    let jobs: Vec<JobReport> = dag
        .reports
        .into_iter()
        .map(|r| Arc::unwrap_or_clone(r.expect("every job reaches a final state")))
        .collect();
    if let Some(k) = run_key {
        let summary = Summary {
            format: CACHE_FORMAT,
            jobs: plan
                .jobs
                .iter()
                .zip(&jobs)
                .filter(|(j, r)| {
                    j.cacheable && matches!(r.status, JobStatus::Executed | JobStatus::Cached)
                })
                .filter_map(|(_, r)| Some((r.key?, r.manifest.clone()?)))
                .collect(),
        };
        // Unchanged when every job was answered by the summary itself.
        let unchanged = primed.is_empty() && summary.jobs.len() == primed_len;
        if !unchanged && !summary.jobs.is_empty() {
            // Losing a summary only costs the next run its per-job lookups.
            let _ = services.cache.remember(&k, &summary);
        }
    }
    RunReport {
        jobs,
        elapsed: started.elapsed(),
        remote_calls: Vec::new(),
        host_error: None,
    }
}

/// What a dry run can say about a job's cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forecast {
    /// Its key is known and its result is cached.
    Hit(ActionKey),
    /// Its key is known and it would execute.
    Miss(ActionKey),
    /// Its key depends on outputs of a job that would execute (or fail).
    Unknown,
    /// It would be skipped: its `if:` is false (the condition, as
    /// substituted) or it needs a job that would be skipped (that job).
    Skipped(SkipCause),
    /// Its `if:` reads jobs that would execute (these, by name): it is
    /// decided only when they end.
    DependsOn(Vec<String>),
}

/// Why a dry run says a job would be skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipCause {
    /// Its own `if:` is false; the condition as substituted.
    Condition(String),
    /// It needs this job, which would be skipped.
    Needs(String),
}

/// Each job's key and whether it would hit the cache now, without running
/// anything: jobs downstream of a miss cannot know their inputs yet.
pub async fn forecast(
    plan: &Plan,
    calls: &[Call],
    components: &[ComponentRef],
    inputs: &HashMap<String, Value>,
    cache: &dyn ActionCache,
    blobs: &BlobReader,
    opts: &RunOptions,
) -> Vec<Forecast> {
    let mut reports: Vec<Option<Arc<JobReport>>> = vec![None; plan.jobs.len()];
    let mut out = Vec::with_capacity(plan.jobs.len());
    let by_condition = |r: &Option<Arc<JobReport>>| {
        r.as_ref()
            .is_some_and(|r| r.status == JobStatus::Skipped(SkipReason::Condition))
    };
    for job in &plan.jobs {
        // As the scheduler does: a skip passes down to what needs the job,
        // but not to a job that only watches how it ended.
        if let Some(&d) = job
            .deps
            .iter()
            .find(|&&d| by_condition(&reports[d]) && job.watches.binary_search(&d).is_err())
        {
            reports[job.id] = Some(Arc::new(skipped(SkipReason::Condition)));
            out.push(Forecast::Skipped(SkipCause::Needs(
                plan.jobs[d].name.clone(),
            )));
            continue;
        }
        if let Some(cond) = &job.cond {
            let open: Vec<String> = job
                .cond_jobs
                .values()
                .filter(|&&d| reports[d].is_none())
                .map(|&d| plan.jobs[d].name.clone())
                .collect();
            if !open.is_empty() {
                out.push(Forecast::DependsOn(open));
                continue;
            }
            match condition(plan, job.id, &reports, blobs) {
                Ok(true) => {}
                Ok(false) => {
                    reports[job.id] = Some(Arc::new(skipped(SkipReason::Condition)));
                    out.push(Forecast::Skipped(SkipCause::Condition(cond.to_string())));
                    continue;
                }
                // The run fails it; its key is never known.
                Err(_) => {
                    out.push(Forecast::Unknown);
                    continue;
                }
            }
        }
        if job.deps.iter().any(|&d| reports[d].is_none()) {
            out.push(Forecast::Unknown);
            continue;
        }
        let Ok(req) = request(
            plan,
            &calls[job.id],
            components,
            inputs,
            &reports,
            job.id,
            opts,
        ) else {
            out.push(Forecast::Unknown);
            continue;
        };
        let found = match job.cacheable.then(|| cache.lookup(&req.key, &req.action)) {
            Some(Lookup::Hit(m)) => Some(m),
            Some(Lookup::Pending(answer)) => answer.await,
            Some(Lookup::Miss) | None => None,
        };
        match found {
            Some(m) => {
                reports[job.id] = Some(Arc::new(cached(&req, m, Instant::now())));
                out.push(Forecast::Hit(req.key));
            }
            None => out.push(Forecast::Miss(req.key)),
        }
    }
    out
}

/// Whether a ready job's `if:` holds, reading the typed outputs it compares.
fn condition(
    plan: &Plan,
    id: JobId,
    reports: &[Option<Arc<JobReport>>],
    blobs: &BlobReader,
) -> Result<bool, Failure> {
    let job = &plan.jobs[id];
    let Some(cond) = &job.cond else {
        return Ok(true);
    };
    let value = |read: Read<'_>| -> Result<serde_json::Value, String> {
        let dep = match read {
            Read::Output(dep, _) | Read::Status(dep, _) => dep,
        };
        let report = reports[job.cond_jobs[dep]]
            .as_ref()
            .ok_or("its job has not finished")?;
        let output = match read {
            Read::Output(_, output) => output,
            Read::Status(_, field) => return Ok(ended(&report.status, field)),
        };
        let Some(Value::Blob { digest, .. }) = report.outputs.get(output) else {
            return Err(format!("jobs.{dep}.outputs.{output} is not a single value"));
        };
        let bytes = blobs(digest)
            .ok_or_else(|| format!("jobs.{dep}.outputs.{output} is not in the store"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("jobs.{dep}.outputs.{output}: {e}"))
    };
    cond.eval(&value)
        .map_err(|e| Failure::new(FailureKind::Input, format!("its condition: {e}")))
}

/// How a job ended, as a condition reads it (see [`Field`]).
fn ended(status: &JobStatus, field: Field) -> serde_json::Value {
    use serde_json::Value as J;
    match (field, status) {
        (Field::Result, JobStatus::Executed | JobStatus::Cached) => J::from("success"),
        (Field::Result, JobStatus::Failed(_)) => J::from("failure"),
        (Field::Result, JobStatus::Skipped(_)) => J::from("skipped"),
        (Field::Cause, JobStatus::Failed(f)) => J::from(f.kind.as_str()),
        (Field::Cause, _) => J::from(""),
        (Field::ExitCode, JobStatus::Executed | JobStatus::Cached) => J::from(0),
        (Field::ExitCode, JobStatus::Failed(f)) => J::from(f.exit_code.unwrap_or(-1)),
        (Field::ExitCode, JobStatus::Skipped(_)) => J::from(-1),
    }
}

fn skipped(reason: SkipReason) -> JobReport {
    JobReport {
        status: JobStatus::Skipped(reason),
        outputs: BTreeMap::new(),
        manifest: None,
        key: None,
        action: None,
        limits: None,
        attempts: 0,
        elapsed: Duration::ZERO,
    }
}

/// Where the run stands: each job's report once final, and how many
/// dependencies each job still waits for.
struct Progress {
    plan: Arc<Plan>,
    services: Services,
    reports: Vec<Option<Arc<JobReport>>>,
    waiting: Vec<usize>,
    dependents: Vec<Vec<JobId>>,
}

impl Progress {
    fn new(plan: Arc<Plan>, services: Services) -> Self {
        let n = plan.jobs.len();
        let mut dependents = vec![Vec::new(); n];
        for j in &plan.jobs {
            for &d in &j.deps {
                dependents[d].push(j.id);
            }
        }
        Progress {
            waiting: plan.jobs.iter().map(|j| j.deps.len()).collect(),
            reports: vec![None; n],
            dependents,
            plan,
            services,
        }
    }

    /// Records a job's final state and reports it.
    fn finish(&mut self, id: JobId, report: JobReport) {
        let report = Arc::new(report);
        self.services
            .events
            .event(&self.plan, &Event::Done(id, report.clone()));
        self.reports[id] = Some(report);
    }

    /// Updates the dependents of a finished job and returns those that
    /// became ready. A failure skips everything downstream, transitively.
    fn release(&mut self, id: JobId) -> Vec<JobId> {
        let status = self.reports[id].as_ref().map(|r| r.status.clone());
        let ok = status.as_ref().is_some_and(|s| s.is_success());
        let skipped_by_condition = status == Some(JobStatus::Skipped(SkipReason::Condition));
        let mut ready = Vec::new();
        for d in self.dependents[id].clone() {
            if self.reports[d].is_some() {
                continue;
            }
            // It waits only for `id` to end, however it ended.
            let watches = self.plan.jobs[d].watches.binary_search(&id).is_ok();
            if watches {
                self.waiting[d] -= 1;
                if self.waiting[d] == 0 {
                    ready.push(d);
                }
            } else if skipped_by_condition {
                self.finish(d, skipped(SkipReason::Condition));
                ready.extend(self.release(d));
            } else if ok {
                self.waiting[d] -= 1;
                if self.waiting[d] == 0 {
                    ready.push(d);
                }
            } else {
                self.finish(d, skipped(SkipReason::Upstream(id)));
                ready.extend(self.release(d));
            }
        }
        ready
    }
}

/// Resolves a ready job's inputs and computes its key.
fn request(
    plan: &Plan,
    call: &Call,
    components: &[ComponentRef],
    inputs: &HashMap<String, Value>,
    reports: &[Option<Arc<JobReport>>],
    id: JobId,
    opts: &RunOptions,
) -> Result<JobRequest, Failure> {
    let job = &plan.jobs[id];
    let resolve_all = |sources: &mut dyn Iterator<Item = (&String, &InputSource)>| {
        sources
            .map(|(name, src)| Ok((name.clone(), resolve(plan, src, inputs, reports)?)))
            .collect::<Result<BTreeMap<_, _>, Failure>>()
    };
    let component = components[id].clone();
    let sandbox = SandboxKey::new(job.hermetic).profile;
    let (action, typed) = match call {
        Call::Command => (
            ActionInputs {
                component: component.digest,
                argv: job.argv.clone(),
                inputs: resolve_all(&mut job.inputs.iter().map(|(n, s)| (n, s)))?,
                outputs: job.outputs.clone(),
                stdout: job.stdout.clone(),
                sandbox,
                call: None,
                args: BTreeMap::new(),
                secrets: BTreeMap::new(),
            },
            None,
        ),
        Call::Typed(t) => (
            ActionInputs {
                component: component.digest,
                argv: Vec::new(),
                inputs: resolve_all(&mut t.sources.iter())?,
                outputs: t.sig.outputs().into_iter().map(|(n, _)| n).collect(),
                stdout: None,
                sandbox,
                call: Some(t.sig.export.clone()),
                args: t.literals.clone(),
                secrets: job
                    .secrets
                    .iter()
                    .map(|s| {
                        // The names always; a value only as a hash keyed per
                        // store, and only when the job asks.
                        let value = opts
                            .secrets
                            .get(&s.value)
                            .map(String::as_bytes)
                            .unwrap_or_default();
                        let hash = job.secrets_in_key.then(|| {
                            blake3::keyed_hash(&opts.secret_key, value)
                                .to_hex()
                                .to_string()
                        });
                        (s.value.clone(), hash)
                    })
                    .collect(),
            },
            Some(t.sig.clone()),
        ),
    };
    let secrets = job
        .secrets
        .iter()
        .filter_map(|s| {
            opts.secrets
                .get(&s.value)
                .map(|v| (s.value.clone(), v.clone()))
        })
        .collect();
    let (l, d) = (&job.limits, &opts.limits);
    Ok(JobRequest {
        id,
        name: job.name.clone(),
        component,
        key: action.key(),
        action,
        limits: ExecLimits {
            memory: l.memory.unwrap_or(d.memory),
            timeout: l.timeout.unwrap_or(d.timeout),
            fuel: l.fuel.or(d.fuel),
            output: l.output.unwrap_or(d.output),
            log: l.log.unwrap_or(d.log),
        },
        hermetic: job.hermetic,
        typed,
        secrets,
    })
}

fn resolve(
    plan: &Plan,
    src: &InputSource,
    inputs: &HashMap<String, Value>,
    reports: &[Option<Arc<JobReport>>],
) -> Result<Value, Failure> {
    match src {
        InputSource::Workflow(name) => Ok(inputs[name].clone()),
        InputSource::List(items) => items
            .iter()
            .map(|s| resolve(plan, s, inputs, reports))
            .collect::<Result<_, _>>()
            .map(Value::List),
        InputSource::Output { job, output, index } => {
            let report = reports[*job].as_ref().expect("dependencies finish first");
            let producer = &plan.jobs[*job].name;
            // The check before the run refuses references to outputs a
            // producer does not have; a producer that did not keep its
            // word fails its consumer, not the host.
            let Some(value) = report.outputs.get(output) else {
                return Err(Failure::new(
                    FailureKind::Input,
                    format!("jobs.{producer}.outputs.{output}: the job gave no such output"),
                ));
            };
            match (index, value) {
                (None, v) => Ok(v.clone()),
                (Some(i), Value::List(items)) => items.get(*i).cloned().ok_or_else(|| {
                    Failure::new(
                        FailureKind::Input,
                        format!(
                            "jobs.{producer}.outputs.{output}[{i}]: the list has {} elements",
                            items.len()
                        ),
                    )
                }),
                (Some(i), Value::Blob { .. }) => Err(Failure::new(
                    FailureKind::Input,
                    format!(
                        "jobs.{producer}.outputs.{output}[{i}]: the output is a file, not a list (a directory)"
                    ),
                )),
            }
        }
    }
}

/// Reports a job's final state to the event sinks (the records among them).
fn done(plan: &Plan, services: &Services, id: JobId, report: JobReport) -> Arc<JobReport> {
    let report = Arc::new(report);
    services
        .events
        .event(plan, &Event::Done(id, report.clone()));
    report
}

/// The report of a job answered by the action cache, looked up since `started`.
fn cached(req: &JobRequest, m: Manifest, started: Instant) -> JobReport {
    JobReport {
        status: JobStatus::Cached,
        outputs: m.outputs.clone(),
        manifest: Some(m),
        key: Some(req.key),
        action: Some(req.action.clone()),
        limits: Some(req.limits),
        attempts: 0,
        elapsed: started.elapsed(),
    }
}

/// Why a failure of this kind is not retried although `job` asks for
/// retries, in words; `None` when it is retried. A hermetic job's `err`
/// would come back the same: like a limit, it is retried only when the job
/// says `retry.always`.
pub fn not_retried(
    job: &crate::workflow::plan::PlannedJob,
    kind: FailureKind,
) -> Option<&'static str> {
    if job.retry.always {
        return None;
    }
    if kind.is_deterministic() {
        Some("it would fail the same way with the same limits and inputs")
    } else if kind == FailureKind::Guest && job.hermetic {
        Some("a hermetic job's `err` comes back the same for the same inputs")
    } else {
        None
    }
}

/// Executes a job the cache did not answer (see `run`), retrying as it
/// asks, and stores its result.
async fn execute(
    plan: Arc<Plan>,
    req: JobRequest,
    services: Services,
    permits: Arc<Semaphore>,
) -> Arc<JobReport> {
    let key = req.key;
    let id = req.id;
    let action = req.action.clone();
    let job = &plan.jobs[id];
    let cacheable = job.cacheable;
    let retry = job.retry;
    let done = |report| done(&plan, &services, id, report);
    let limits = req.limits;
    let mut attempt = 1;
    let (status, manifest, started) = loop {
        let permit = permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        // Time spent waiting for a slot is not the job's.
        let started = Instant::now();
        services.events.event(&plan, &Event::Running(id, attempt));
        let outcome = services.executor.execute(req.clone()).await;
        let failure = match outcome {
            Outcome::Success(m) => {
                let stored = if cacheable {
                    services.cache.insert(&key, &action, &m)
                } else {
                    Ok(())
                };
                break match stored {
                    Ok(()) => (JobStatus::Executed, Some(m), started),
                    Err(e) => (
                        JobStatus::Failed(Failure::host("writing the action cache", e)),
                        None,
                        started,
                    ),
                };
            }
            Outcome::Failure(f) => f,
        };
        let retryable = not_retried(job, failure.kind).is_none();
        if attempt >= retry.attempts || !retryable {
            break (JobStatus::Failed(failure), None, started);
        }
        // Exponential backoff, capped; the slot is free while we wait.
        let backoff = retry
            .backoff
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(MAX_BACKOFF);
        services.events.event(
            &plan,
            &Event::Retrying {
                job: id,
                attempt,
                failure: failure.clone(),
                backoff,
            },
        );
        drop(permit);
        tokio::time::sleep(backoff).await;
        attempt += 1;
    };
    // Reported before the slot is released, so events never show more
    // jobs running than there are slots.
    done(JobReport {
        status,
        outputs: manifest
            .as_ref()
            .map(|m| m.outputs.clone())
            .unwrap_or_default(),
        manifest,
        key: Some(key),
        action: Some(action),
        limits: Some(limits),
        attempts: attempt,
        elapsed: started.elapsed(),
    })
}

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
