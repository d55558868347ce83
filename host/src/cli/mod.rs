//! The `cairn` command line. `main` is a one-liner over [`main`] here, so
//! tests can also drive the CLI in-process.

use crate::cache::Value;
use crate::digest::Digest;
use crate::plan::{Overrides, Plan};
use crate::records::{JobRow, RecordError, RunRow, RunStatus, failure_line};
use crate::runtime::ExecLimits;
use crate::scheduler::{Event, EventSink, JobStatus, RunOptions, RunReport, SkipReason};
use crate::spec::{parse_duration, parse_size};
use crate::store::Store;
use crate::workflow::{self, Error, NoEvents, ResultsError, Run, Wait};
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `println!` that ignores a closed stdout (`cairn runs | head`) instead of
/// panicking: the reader left, nothing is wrong.
macro_rules! outln {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// Exit code: every job succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit code: a job failed (the run's other results are still stored).
pub const EXIT_JOB_FAILED: i32 = 1;
/// Exit code: bad usage or an invalid workflow; nothing ran.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the host failed (store, engine); not the workflow's fault.
pub const EXIT_HOST: i32 = 3;
/// Exit code: the run is still going (`results` without `--wait`, or `--timeout` ran out).
pub const EXIT_RUNNING: i32 = 4;

const EXIT_CODES: &str = "\
Exit codes:
  0  success: every job succeeded (executed or cached)
  1  a job failed (or, for queries, the run failed or was interrupted)
  2  bad usage, an invalid workflow (reported with file:line:col), or no such run; nothing ran
  3  cairn or the machine failed (store, engine, records), not the workflow
  4  the run is still going (`results` without --wait, or --timeout ran out)

Query commands read the store given by --store or CAIRN_STORE, else ./.cairn.
A RUN is any unique prefix of a run id, as with git.";

/// Run workflows of sandboxed WebAssembly components, cached by content.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct StoreArg {
    /// The store directory [default: ./.cairn].
    #[arg(long, env = "CAIRN_STORE")]
    store: Option<PathBuf>,
}

impl StoreArg {
    fn dir(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| PathBuf::from(".cairn"))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workflow: plan it, then execute every job not already cached.
    Run(RunArgs),
    /// Type-check a workflow against its components without running it:
    /// every argument, reference and output, at file:line:col.
    Check {
        #[command(flatten)]
        wf: WorkflowArgs,
    },
    /// Show what a run would do without running it: the DAG in layers, each
    /// job's cache key and whether it would hit the cache now.
    Plan {
        #[command(flatten)]
        wf: WorkflowArgs,
        /// text, or a graph for other tools: dot (Graphviz) or mermaid.
        #[arg(long, default_value = "text", value_parser = ["text", "dot", "mermaid"])]
        format: String,
    },
    /// Describe a component: digest, size, kind, its export's WIT signature,
    /// and the imports it needs.
    Inspect {
        /// The component (.wasm): a component, a wasip1 core module (adapted
        /// first) or a task source directory (built first).
        component: PathBuf,
        /// The export to describe, when there are several.
        #[arg(long)]
        call: Option<String>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Build a task source directory (Rust, Python, JavaScript, C, Zig, Go)
    /// into a component in the store, as `uses:` a directory does, and print
    /// where it is and its digest. Cached: an unchanged directory is not
    /// rebuilt.
    Build {
        /// The task directory.
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Recent runs, newest first.
    Runs {
        /// Only runs of this workflow (by name).
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs in this state: running, succeeded, failed, interrupted.
        #[arg(long, value_parser = run_status)]
        status: Option<RunStatus>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// A run's state and each job's, in dependency order.
    Status {
        /// The run (any unique prefix of its id).
        run: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// The logs (stdout, then stderr) of a run's jobs.
    Logs {
        /// The run.
        run: String,
        /// Only this job.
        job: Option<String>,
        /// Keep printing logs as jobs finish, until the run ends.
        #[arg(short, long)]
        follow: bool,
        /// Print one JSON object per job (a line each).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// A run's outputs: digest, size and store path of each.
    Results {
        /// The run.
        run: String,
        /// Wait for the run to end (from any process).
        #[arg(long)]
        wait: bool,
        /// With --wait, give up after this long (exit code 4).
        #[arg(long, value_parser = duration, requires = "wait")]
        timeout: Option<Duration>,
        /// Every job's outputs, not only the final ones (of jobs nothing depends on).
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Print a blob from the store (checked against its digest) to stdout.
    Cat {
        /// The blob's digest (64 hex digits).
        digest: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Copy one output of a run out of the store (a list becomes a directory).
    Get {
        /// The run.
        run: String,
        /// The job's name, as `cairn status` shows it.
        job: String,
        /// The output's name.
        output: String,
        /// Where to write it.
        #[arg(short, long)]
        out: PathBuf,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Metrics recorded by a run's jobs.
    Metrics {
        /// The run.
        run: String,
        /// Only this job.
        job: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Re-execute every job of a recorded run without the cache and check
    /// that each output is byte-identical to the recorded one (exit 1 if not).
    Verify {
        /// The run.
        run: String,
        /// Jobs executing at once [default: number of cores].
        #[arg(short, long)]
        jobs: Option<usize>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Check or clean the store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Why a job executed instead of hitting the cache: what changed in its
    /// key since the same job's most recent earlier run.
    Why {
        /// The run.
        run: String,
        /// The job's name, as `cairn status` shows it.
        job: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Re-hash every blob and check that every cache entry's blobs exist (exit 1 on a problem).
    Verify {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Remove blobs, cache entries and run records that no kept run needs.
    /// Runs in progress are always kept.
    Gc {
        /// Keep the newest N runs.
        #[arg(long)]
        keep_last: Option<usize>,
        /// Keep runs started within this long, such as 48h.
        #[arg(long, value_parser = duration)]
        keep_since: Option<Duration>,
        #[command(flatten)]
        store: StoreArg,
    },
}

/// A workflow and what the command line changes about it: shared by `run`,
/// `check` and `plan`.
#[derive(Debug, Clone, clap::Args)]
struct WorkflowArgs {
    /// The workflow file (YAML).
    workflow: PathBuf,
    /// Override a parameter: --param top=20 (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = key_value)]
    params: Vec<(String, String)>,
    /// Use another host file for a workflow input: --input corpus=big.txt (repeatable).
    #[arg(long = "input", value_name = "NAME=PATH", value_parser = key_value)]
    inputs: Vec<(String, String)>,
    /// The store directory [default: .cairn beside the workflow].
    #[arg(long, env = "CAIRN_STORE")]
    store: Option<PathBuf>,
}

impl WorkflowArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            params: self.params.clone(),
            inputs: self.inputs.clone(),
        }
    }

    fn store_dir(&self, loaded: &workflow::Loaded) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| workflow::default_store(loaded))
    }
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    wf: WorkflowArgs,
    /// Jobs executing at once [default: number of cores].
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Keep running every job that does not depend on a failed one.
    #[arg(short, long)]
    keep_going: bool,
    /// Execute every job even if its result is cached (results are still stored).
    #[arg(long)]
    no_cache: bool,
    /// Default linear-memory limit per job (a job's `limits.memory` wins).
    #[arg(long, default_value = "2GiB", value_parser = size)]
    memory: u64,
    /// Default wall-time limit per job (a job's `limits.timeout` wins).
    #[arg(long, default_value = "10m", value_parser = duration)]
    timeout: Duration,
    /// Default fuel per job (a job's `limits.fuel` wins) [default: unmetered].
    #[arg(long, value_parser = fuel)]
    fuel: Option<u64>,
    /// Default limit on a job's total output bytes (a job's `limits.output` wins).
    #[arg(long, default_value = "1GiB", value_parser = size)]
    output_limit: u64,
    /// Default log bytes kept per job; the rest is cut (a job's `limits.log` wins).
    #[arg(long, default_value = "8MiB", value_parser = size)]
    log_limit: u64,
    /// Pass the environment variable NAME as secret NAME to jobs that
    /// declare it (`secrets: [NAME]`) (repeatable).
    #[arg(long = "secret", value_name = "NAME")]
    secrets: Vec<String>,
    /// Read secrets from a file of NAME=VALUE lines.
    #[arg(long = "secrets", value_name = "FILE")]
    secrets_file: Option<PathBuf>,
    /// Print only failures and the final summary.
    #[arg(short, long)]
    quiet: bool,
    /// Print the new run's id and return at once; the run goes on in the
    /// background (follow it with status, logs, results --wait).
    #[arg(short, long)]
    detach: bool,
    /// Internal: this process is the background half of --detach.
    #[arg(long, hide = true)]
    detached_child: bool,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got `{s}`"))
}

fn size(s: &str) -> Result<u64, String> {
    parse_size(s).ok_or_else(|| format!("expected a size such as 512MiB or 2GiB, got `{s}`"))
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("expected a duration such as 30s or 5m, got `{s}`"))
}

fn fuel(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .ok()
        .or_else(|| {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| format!("expected an amount of fuel such as 1e9, got `{s}`"))
}

fn run_status(s: &str) -> Result<RunStatus, String> {
    [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Interrupted,
    ]
    .into_iter()
    .find(|r| r.as_str() == s)
    .ok_or_else(|| format!("expected running, succeeded, failed or interrupted, got `{s}`"))
}

/// Runs the CLI with these arguments (including argv[0]) and returns the exit code.
pub fn main<I: IntoIterator<Item = T>, T: Into<OsString> + Clone>(args: I) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    let result = match cli.command {
        Command::Run(args) => return run(args),
        Command::Check { wf } => return check(&wf),
        Command::Inspect {
            component,
            call,
            store,
        } => inspect(&component, call.as_deref(), &store.dir()),
        Command::Build { dir, json, store } => build(&dir, json, &store.dir()),
        Command::Plan { wf, format } => return dry_run(&wf, &format),
        Command::Runs {
            workflow,
            status,
            limit,
            json,
            store,
        } => runs(&store.dir(), workflow.as_deref(), status, limit, json),
        Command::Status { run, json, store } => status(&store.dir(), &run, json),
        Command::Logs {
            run,
            job,
            follow,
            json,
            store,
        } => logs(&store.dir(), &run, job.as_deref(), follow, json),
        Command::Results {
            run,
            wait,
            timeout,
            all,
            json,
            store,
        } => {
            let wait = match (wait, timeout) {
                (false, _) => Wait::No,
                (true, Some(t)) => Wait::Up(t),
                (true, None) => Wait::Forever,
            };
            results(&store.dir(), &run, wait, all, json)
        }
        Command::Cat { digest, store } => cat(&store.dir(), &digest),
        Command::Get {
            run,
            job,
            output,
            out,
            store,
        } => get(&store.dir(), &run, &job, &output, &out),
        Command::Metrics {
            run,
            job,
            json,
            store,
        } => metrics(&store.dir(), &run, job.as_deref(), json),
        Command::Why {
            run,
            job,
            json,
            store,
        } => why(&store.dir(), &run, &job, json),
        Command::Verify { run, jobs, store } => verify(&store.dir(), &run, jobs),
        Command::Store(StoreCommand::Verify { store }) => store_verify(&store.dir()),
        Command::Store(StoreCommand::Gc {
            keep_last,
            keep_since,
            store,
        }) => store_gc(&store.dir(), keep_last, keep_since),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Errors of the query commands, each with its exit code.
#[derive(Debug, thiserror::Error)]
enum QueryError {
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Host(String),
    #[error(transparent)]
    Workflow(#[from] Error),
}

impl QueryError {
    fn exit_code(&self) -> i32 {
        match self {
            QueryError::Records(
                RecordError::NoSuchRun(_)
                | RecordError::Ambiguous { .. }
                | RecordError::NoSuchJob { .. },
            )
            | QueryError::Usage(_) => EXIT_USAGE,
            QueryError::Results(ResultsError::Running(_) | ResultsError::TimedOut { .. }) => {
                EXIT_RUNNING
            }
            QueryError::Results(ResultsError::Records(e)) => {
                QueryError::Records(RecordError::Io(std::io::Error::other(e.to_string())))
                    .exit_code()
            }
            QueryError::Workflow(e) if e.is_user_error() => EXIT_USAGE,
            QueryError::Records(_) | QueryError::Host(_) | QueryError::Workflow(_) => EXIT_HOST,
        }
    }
}

type Query = Result<i32, QueryError>;

fn open_run(store: &Path, run: &str) -> Result<Run, QueryError> {
    if !store.join("runs.db").exists() {
        return Err(QueryError::Usage(format!(
            "no runs recorded in {} (use --store or CAIRN_STORE to name the store)",
            store.display()
        )));
    }
    Ok(Run::open(store, run)?)
}

fn job_named<'a>(run: &Run, jobs: &'a [JobRow], name: &str) -> Result<&'a JobRow, QueryError> {
    jobs.iter().find(|j| j.name == name).ok_or_else(|| {
        let mut msg = RecordError::NoSuchJob {
            run: run.id().to_string(),
            job: name.to_string(),
        }
        .to_string();
        if let Some(best) = crate::diag::did_you_mean(name, jobs.iter().map(|j| j.name.as_str())) {
            msg.push_str(&format!("; did you mean `{best}`?"));
        }
        QueryError::Usage(msg)
    })
}

fn exit_for(row: &RunRow) -> i32 {
    match row.status {
        RunStatus::Succeeded => EXIT_OK,
        RunStatus::Running => EXIT_RUNNING,
        RunStatus::Failed | RunStatus::Interrupted => EXIT_JOB_FAILED,
    }
}

fn ago(ms: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let s = (now - ms).max(0) / 1000;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

fn took(row_start: Option<i64>, row_end: Option<i64>) -> String {
    match (row_start, row_end) {
        (Some(a), Some(b)) => secs(Duration::from_millis((b - a).max(0) as u64)),
        _ => String::new(),
    }
}

fn print_json(v: &impl serde::Serialize) {
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(v).expect("serialisable")
    );
}

fn runs(
    store: &Path,
    workflow: Option<&str>,
    status: Option<RunStatus>,
    limit: usize,
    json: bool,
) -> Query {
    if !store.join("runs.db").exists() {
        if json {
            outln!("[]");
        } else {
            outln!("no runs in {}", store.display());
        }
        return Ok(EXIT_OK);
    }
    let records = crate::records::Records::open(store)?;
    let rows = records.runs(workflow, status, limit)?;
    if json {
        print_json(&rows);
    } else {
        for r in &rows {
            outln!(
                "{}  {:<11}  {:<20}  {:>9}  {}",
                r.id,
                r.status,
                r.workflow,
                took(Some(r.started_ms), r.ended_ms),
                ago(r.started_ms)
            );
        }
    }
    Ok(EXIT_OK)
}

fn status(store: &Path, run: &str, json: bool) -> Query {
    let run = open_run(store, run)?;
    let row = run.status()?;
    let jobs = run.jobs()?;
    if json {
        print_json(&serde_json::json!({ "run": row, "jobs": jobs }));
        return Ok(exit_for(&row));
    }
    outln!(
        "run {}  {}  workflow {} ({})  started {}{}",
        row.id,
        row.status,
        row.workflow,
        row.workflow_path,
        ago(row.started_ms),
        row.ended_ms
            .map(|e| format!(", took {}", took(Some(row.started_ms), Some(e))))
            .unwrap_or_default()
    );
    if let Some(e) = &row.error {
        outln!("  error: {}", e.lines().next().unwrap_or_default());
    }
    for j in &jobs {
        let detail = failure_line(j)
            .map(|f| format!("  {f}"))
            .unwrap_or_default();
        outln!(
            "  {:<10} {:<24} {:>9}{detail}",
            j.status,
            j.name,
            took(j.started_ms, j.ended_ms)
        );
    }
    Ok(exit_for(&row))
}

fn job_log(store: &Store, job: &JobRow) -> (String, String) {
    let text = |d: &Option<String>| {
        d.as_deref()
            .and_then(|d| d.parse::<Digest>().ok())
            .and_then(|d| store.read(&d).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    (text(&job.stdout), text(&job.stderr))
}

fn print_job_log(store: &Store, job: &JobRow, json: bool) {
    let (stdout, stderr) = job_log(store, job);
    if json {
        let v = serde_json::json!({ "job": job.name, "status": job.status, "stdout": stdout, "stderr": stderr });
        outln!("{v}");
        return;
    }
    outln!("== {} ({})", job.name, job.status);
    let mut out = std::io::stdout().lock();
    for text in [stdout, stderr] {
        let _ = out.write_all(text.as_bytes());
        if !text.is_empty() && !text.ends_with('\n') {
            let _ = writeln!(out);
        }
    }
}

fn logs(store_dir: &Path, run: &str, job: Option<&str>, follow: bool, json: bool) -> Query {
    let run = open_run(store_dir, run)?;
    let store = Store::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?;
    if let Some(name) = job {
        job_named(&run, &run.jobs()?, name)?;
    }
    let finished = |s: &str| !matches!(s, "pending" | "queued" | "running");
    let mut shown = std::collections::HashSet::new();
    loop {
        let row = run.status()?;
        for j in run.jobs()? {
            if job.is_some_and(|n| n != j.name) || !finished(&j.status) || shown.contains(&j.job) {
                continue;
            }
            shown.insert(j.job);
            print_job_log(&store, &j, json);
        }
        if !follow || row.status.is_final() {
            return Ok(if follow { exit_for(&row) } else { EXIT_OK });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn results(store_dir: &Path, run: &str, wait: Wait, all: bool, json: bool) -> Query {
    let run = open_run(store_dir, run)?;
    let (row, mut outputs) = run.results(wait)?;
    if !all {
        let jobs = run.jobs()?;
        let consumed: std::collections::HashSet<i64> =
            jobs.iter().flat_map(|j| j.deps.iter().copied()).collect();
        let finals: std::collections::HashSet<&str> = jobs
            .iter()
            .filter(|j| !consumed.contains(&j.job))
            .map(|j| j.name.as_str())
            .collect();
        outputs.retain(|o| finals.contains(o.job.as_str()));
    }
    if json {
        print_json(&serde_json::json!({ "run": row, "outputs": outputs }));
        return Ok(exit_for(&row));
    }
    outln!("run {}  {}", row.id, row.status);
    let blobs = blobs_dir(store_dir);
    let mut lines = Vec::new();
    for o in &outputs {
        write_output_lines(
            &mut lines,
            &format!("{}.{}", o.job, o.name),
            &o.value,
            &blobs,
        );
    }
    let _ = std::io::stdout().lock().write_all(&lines);
    Ok(exit_for(&row))
}

fn cat(store_dir: &Path, digest: &str) -> Query {
    let digest: Digest = digest.parse().map_err(QueryError::Usage)?;
    let bytes = Store::open(store_dir)
        .and_then(|s| s.read(&digest))
        .map_err(|e| QueryError::Host(format!("blob {digest} in {}: {e}", store_dir.display())))?;
    let _ = std::io::stdout().write_all(&bytes);
    Ok(EXIT_OK)
}

fn get(store_dir: &Path, run: &str, job: &str, output: &str, dest: &Path) -> Query {
    let run = open_run(store_dir, run)?;
    job_named(&run, &run.jobs()?, job)?;
    let outputs = run.records().outputs(run.id())?;
    let Some(found) = outputs.iter().find(|o| o.job == job && o.name == output) else {
        let names: Vec<&str> = outputs
            .iter()
            .filter(|o| o.job == job)
            .map(|o| o.name.as_str())
            .collect();
        return Err(QueryError::Usage(format!(
            "job `{job}` of run {} has no output `{output}` (it has: {})",
            run.id(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    let store = Store::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?;
    write_value(&store, &found.value, dest)
        .map_err(|e| QueryError::Host(format!("writing {}: {e}", dest.display())))?;
    Ok(EXIT_OK)
}

fn write_value(store: &Store, value: &Value, dest: &Path) -> std::io::Result<()> {
    match value {
        Value::Blob { digest, .. } => std::fs::write(dest, store.read(digest)?),
        Value::List(items) => {
            std::fs::create_dir_all(dest)?;
            for (i, v) in items.iter().enumerate() {
                write_value(store, v, &dest.join(i.to_string()))?;
            }
            Ok(())
        }
    }
}

fn metrics(store_dir: &Path, run: &str, job: Option<&str>, json: bool) -> Query {
    let run = open_run(store_dir, run)?;
    if let Some(name) = job {
        job_named(&run, &run.jobs()?, name)?;
    }
    let rows: Vec<_> = run
        .records()
        .metrics(run.id())?
        .into_iter()
        .filter(|m| job.is_none_or(|j| j == m.job))
        .collect();
    if json {
        print_json(&rows);
    } else if rows.is_empty() {
        outln!("no metrics recorded");
    } else {
        for m in rows {
            let step = m.step.map(|s| format!(" step {s}")).unwrap_or_default();
            outln!("{}  {}{step}  {}", m.job, m.name, m.value);
        }
    }
    Ok(EXIT_OK)
}

fn why(store_dir: &Path, run: &str, job: &str, json: bool) -> Query {
    let run = open_run(store_dir, run)?;
    let row = run.status()?;
    let jobs = run.jobs()?;
    let this = job_named(&run, &jobs, job)?;
    let mut compared_with = None;
    let mut differences = Vec::new();
    let (executed, answer) = match (this.status.as_str(), &this.key_inputs) {
        ("cached", _) => (
            false,
            format!("{job} did not execute: its result came from the cache"),
        ),
        ("executed" | "failed", Some(now)) => match run
            .records()
            .previous_job(&row, job)?
            .and_then(|(id, earlier)| Some((id, earlier.key_inputs?)))
        {
            None => (
                true,
                format!(
                    "{job} executed: no earlier run of workflow `{}` has a job `{job}`",
                    row.workflow
                ),
            ),
            Some((earlier_run, before)) => {
                differences = now.differences(&before);
                let answer = if differences.is_empty() {
                    format!(
                        "{job} executed although its key is the same as in run {earlier_run}: the result was not in the cache \
                         (--no-cache, a failure there, the job is not cacheable, or the entry or one of its blobs was removed)"
                    )
                } else {
                    format!("{job} executed: compared with run {earlier_run},")
                };
                compared_with = Some(earlier_run);
                (true, answer)
            }
        },
        ("executed" | "failed", None) => (
            true,
            format!("{job} executed before its inputs were known; nothing to compare"),
        ),
        (other, _) => (false, format!("{job} did not execute: it is {other}")),
    };
    if json {
        print_json(&serde_json::json!({
            "job": job,
            "executed": executed,
            "answer": answer,
            "compared_with": compared_with,
            "differences": differences,
        }));
    } else {
        outln!("{answer}");
        for d in differences {
            outln!("  - {d}");
        }
    }
    Ok(EXIT_OK)
}

/// Loads, builds, stores and type-checks a workflow without running it:
/// what `check` and `plan` start from.
fn prepare_only(
    wf: &WorkflowArgs,
) -> Result<(workflow::Loaded, Arc<Store>, workflow::Prepared), Error> {
    let loaded = workflow::load(&wf.workflow, &wf.overrides())?;
    let (store, runtime) = workflow::open(&wf.store_dir(&loaded))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Host(e.to_string()))?;
    let prepared = workflow::prepare(&loaded, &store, &runtime, &rt, &mut |n| eprintln!("  {n}"))?;
    Ok((loaded, store, prepared))
}

fn check(wf: &WorkflowArgs) -> i32 {
    let result = prepare_only(wf).and_then(|(loaded, _, prepared)| {
        workflow::unusable(&loaded, &prepared)?;
        Ok((loaded, prepared))
    });
    match result {
        Ok((loaded, prepared)) => {
            let typed = prepared
                .calls
                .iter()
                .filter(|c| matches!(c, crate::check::Call::Typed(_)))
                .count();
            outln!(
                "{}: ok: {} jobs ({typed} typed, {} command)",
                loaded.path.display(),
                prepared.calls.len(),
                prepared.calls.len() - typed
            );
            EXIT_OK
        }
        Err(e) => report_error(&e),
    }
}

fn inspect(path: &Path, call: Option<&str>, store_dir: &Path) -> Query {
    use crate::typed::TaskKind;
    if !path.exists() {
        return Err(QueryError::Usage(format!(
            "{}: no such file",
            path.display()
        )));
    }
    let (store, runtime) =
        workflow::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?;
    let component = workflow::store_component(path, &store, &mut |note| eprintln!("{note}"))?;
    let size = std::fs::metadata(&component.path)
        .map_err(|e| QueryError::Host(e.to_string()))?
        .len();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| QueryError::Host(e.to_string()))?;
    let kind = rt.block_on(runtime.inspect(&component, call));
    let imports = rt.block_on(runtime.imports(&component));
    outln!("component  {}", path.display());
    outln!("digest     {}", component.digest);
    outln!("size       {size} bytes");
    let code = match kind {
        Ok(TaskKind::Command) => {
            outln!("kind       command (wasi:cli/run): argv in, files in /in and /out");
            EXIT_OK
        }
        Ok(TaskKind::Typed(sig)) => {
            outln!("kind       typed task");
            outln!("export     {}", sig.describe());
            let outs: Vec<String> = sig
                .outputs()
                .iter()
                .map(|(n, t)| format!("{n}: {}", crate::typed::describe(t)))
                .collect();
            outln!(
                "outputs    {}",
                if outs.is_empty() {
                    "none".into()
                } else {
                    outs.join(", ")
                }
            );
            EXIT_OK
        }
        Ok(TaskKind::Unusable(why)) | Err(crate::outcome::Failure { message: why, .. }) => {
            outln!("kind       unusable: {why}");
            EXIT_JOB_FAILED
        }
    };
    match imports {
        Ok(list) => {
            outln!("imports");
            for (name, provided) in list {
                outln!(
                    "  {} {name}",
                    if provided { "provided" } else { "MISSING " }
                );
            }
        }
        Err(f) => outln!("imports    unreadable: {}", f.message),
    }
    Ok(code)
}

/// `cairn build DIR`.
fn build(dir: &Path, json: bool, store_dir: &Path) -> Query {
    if !dir.is_dir() {
        return Err(QueryError::Usage(format!(
            "{}: not a directory (cairn build takes a task source directory)",
            dir.display()
        )));
    }
    let store = Store::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?;
    let started = std::time::Instant::now();
    let built = crate::builder::build_dir(dir, &store).map_err(Error::from)?;
    let path = store.blob_path(&built.stored.digest);
    if json {
        let v = serde_json::json!({
            "dir": dir,
            "language": built.language.to_string(),
            "component": path,
            "digest": built.stored.digest.to_string(),
            "size": built.stored.size,
            "fresh": built.fresh,
            "seconds": started.elapsed().as_secs_f64(),
        });
        outln!("{v}");
    } else {
        outln!(
            "{} {} ({}) in {:.2?}",
            if built.fresh { "built" } else { "up to date" },
            dir.display(),
            built.language,
            started.elapsed()
        );
        outln!("component  {}", path.display());
        outln!("digest     {}", built.stored.digest);
        outln!("size       {} bytes", built.stored.size);
    }
    Ok(EXIT_OK)
}

fn dry_run(wf: &WorkflowArgs, format: &str) -> i32 {
    use crate::scheduler::Forecast;
    let result = prepare_only(wf).and_then(|(loaded, store, prepared)| {
        let opts = RunOptions {
            jobs: 1,
            keep_going: false,
            no_cache: false,
            limits: ExecLimits::default(),
            secrets: Default::default(),
            secret_key: store.secret_key().map_err(|e| Error::Host(e.to_string()))?,
        };
        let cache = crate::cache::LocalCache::new(store.clone());
        let f = crate::scheduler::forecast(
            &loaded.plan,
            &prepared.calls,
            &prepared.components,
            &prepared.inputs,
            &cache,
            &opts,
        );
        Ok((loaded, f))
    });
    let (loaded, forecast) = match result {
        Ok(x) => x,
        Err(e) => return report_error(&e),
    };
    let plan = &loaded.plan;
    let mut layer = vec![0usize; plan.jobs.len()];
    for j in &plan.jobs {
        layer[j.id] = j.deps.iter().map(|&d| layer[d] + 1).max().unwrap_or(0);
    }
    let state = |f: &Forecast| match f {
        Forecast::Hit(_) => "cached",
        Forecast::Miss(_) => "runs",
        Forecast::Unknown => "waits",
    };
    match format {
        "dot" => {
            outln!("digraph {:?} {{", plan.name);
            outln!("  rankdir=LR;");
            for j in &plan.jobs {
                let color = match forecast[j.id] {
                    Forecast::Hit(_) => "palegreen",
                    Forecast::Miss(_) => "orange",
                    Forecast::Unknown => "lightgrey",
                };
                let label = format!("{}\n{}", j.name, state(&forecast[j.id]));
                outln!(
                    "  j{} [label={label:?}, style=filled, fillcolor={color}];",
                    j.id
                );
                for d in &j.deps {
                    outln!("  j{d} -> j{};", j.id);
                }
            }
            outln!("}}");
        }
        "mermaid" => {
            outln!("flowchart LR");
            for j in &plan.jobs {
                let label =
                    format!("{} ({})", j.name, state(&forecast[j.id])).replace('"', "#quot;");
                outln!("  j{}[\"{label}\"]", j.id);
                for d in &j.deps {
                    outln!("  j{d} --> j{}", j.id);
                }
            }
        }
        _ => {
            let layers = layer.iter().max().map_or(0, |m| m + 1);
            let hits = forecast
                .iter()
                .filter(|f| matches!(f, Forecast::Hit(_)))
                .count();
            outln!(
                "{}: {} jobs in {layers} layers; {hits} would come from the cache",
                plan.name,
                plan.jobs.len()
            );
            for l in 0..layers {
                outln!("layer {l}");
                for j in plan.jobs.iter().filter(|j| layer[j.id] == l) {
                    match &forecast[j.id] {
                        Forecast::Hit(k) | Forecast::Miss(k) => {
                            outln!(
                                "  {:<7} {:<24} key {}",
                                state(&forecast[j.id]),
                                j.name,
                                &k.to_hex()[..16]
                            )
                        }
                        Forecast::Unknown => outln!(
                            "  {:<7} {:<24} key not known until its inputs are",
                            "waits",
                            j.name
                        ),
                    }
                }
            }
        }
    }
    EXIT_OK
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn verify(store_dir: &Path, run: &str, jobs: Option<usize>) -> Query {
    use crate::maintenance::Verdict;
    let run = open_run(store_dir, run)?;
    let (store, runtime) =
        workflow::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?;
    let jobs = jobs.unwrap_or_else(cores).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(jobs + 1)
        .enable_all()
        .build()
        .map_err(|e| QueryError::Host(e.to_string()))?;
    let verdicts = rt.block_on(crate::maintenance::verify_run(
        store,
        runtime,
        run.records(),
        run.id(),
        jobs,
    ))?;
    let mut bad = 0;
    for (name, v) in &verdicts {
        match v {
            Verdict::Same => outln!("same     {name}"),
            Verdict::NotRun(why) => outln!("skipped  {name} ({why})"),
            Verdict::Failed(f) => {
                bad += 1;
                outln!("FAILED   {name}: {f}");
            }
            Verdict::Differs(diffs) => {
                bad += 1;
                for (output, before, now) in diffs {
                    let show = |v: &Option<Value>| {
                        v.as_ref().map_or("missing".to_string(), Value::describe)
                    };
                    outln!(
                        "DIFFERS  {name} output `{output}`: recorded {}, now {}",
                        show(before),
                        show(now)
                    );
                }
            }
        }
    }
    outln!(
        "verified run {}: {} jobs, {} reproduced, {bad} not",
        run.id(),
        verdicts.len(),
        verdicts.iter().filter(|(_, v)| *v == Verdict::Same).count()
    );
    Ok(if bad == 0 { EXIT_OK } else { EXIT_JOB_FAILED })
}

fn store_verify(store_dir: &Path) -> Query {
    use crate::maintenance::StoreProblem;
    let store = Store::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?;
    let report =
        crate::maintenance::verify_store(&store).map_err(|e| QueryError::Host(e.to_string()))?;
    for p in &report.problems {
        match p {
            StoreProblem::CorruptBlob(d) => {
                outln!("corrupt blob {d}: its bytes do not match its digest")
            }
            StoreProblem::StrayFile(f) => outln!("stray file {}", f.display()),
            StoreProblem::BadEntry(f) => outln!("unreadable cache entry {}", f.display()),
            StoreProblem::MissingBlob { key, blob } => {
                outln!("cache entry {key} names missing blob {blob}")
            }
        }
    }
    outln!(
        "{}: {} blobs re-hashed, {} cache entries checked, {} problems",
        store_dir.display(),
        report.blobs,
        report.entries,
        report.problems.len()
    );
    Ok(if report.problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_JOB_FAILED
    })
}

fn store_gc(store_dir: &Path, last: Option<usize>, since: Option<Duration>) -> Query {
    if last.is_none() && since.is_none() {
        return Err(QueryError::Usage(
            "say which runs to keep: --keep-last N and/or --keep-since DUR".into(),
        ));
    }
    let store = Arc::new(Store::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?);
    let records = crate::records::Records::open(store_dir)?;
    let r = crate::maintenance::gc(&store, &records, crate::maintenance::Keep { last, since })?;
    outln!(
        "kept {} runs; removed {} runs, {} blobs ({} bytes), {} cache entries",
        r.runs_kept,
        r.runs_removed,
        r.blobs_removed,
        r.bytes_removed,
        r.entries_removed
    );
    Ok(EXIT_OK)
}

fn run(args: RunArgs) -> i32 {
    let overrides = args.wf.overrides();
    // Planning errors are reported here, before anything is recorded, even
    // for --detach: they are the caller's to fix.
    let loaded = match workflow::load(&args.wf.workflow, &overrides) {
        Ok(l) => l,
        Err(e) => return report_error(&e),
    };
    if args.detach {
        return detach();
    }
    let store_dir = args.wf.store_dir(&loaded);
    let jobs = args.jobs.unwrap_or_else(cores).max(1);
    let secrets = match read_secrets(&args, &loaded.plan) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("error: {msg}");
            return EXIT_USAGE;
        }
    };
    let store = match Store::open(&store_dir) {
        Ok(s) => Arc::new(s),
        Err(e) => return report_error(&Error::Host(format!("store {}: {e}", store_dir.display()))),
    };
    let secret_key = match store.secret_key() {
        Ok(k) => k,
        Err(e) => return report_error(&Error::Host(format!("store {}: {e}", store_dir.display()))),
    };
    let opts = RunOptions {
        jobs,
        keep_going: args.keep_going,
        no_cache: args.no_cache,
        limits: ExecLimits {
            memory: args.memory,
            timeout: args.timeout,
            fuel: args.fuel,
            output: args.output_limit,
            log: args.log_limit,
        },
        secrets: Arc::new(secrets),
        secret_key,
    };
    let quiet = args.quiet || args.detached_child;
    let printer = Arc::new(Printer::new(quiet, store.clone()));
    let events: Arc<dyn EventSink> = if args.detached_child {
        Arc::new(NoEvents)
    } else {
        printer.clone()
    };
    let note_printer = printer.clone();
    let plan = loaded.plan.clone();
    let started = match workflow::start(
        loaded,
        &store_dir,
        opts,
        events,
        Box::new(move |n| note_printer.note(n)),
    ) {
        Ok(s) => s,
        Err(e) => return report_error(&e),
    };
    if args.detached_child {
        // The parent relays this line and exits; nothing else goes to stdout.
        outln!("{}", started.run.id());
        let _ = std::io::stdout().flush();
    }
    let ticker = printer.clone().start_ticker(&plan);
    // The process exits right after: no need to wait for the teardown.
    let result = started.wait();
    ticker.stop();
    match result {
        Ok(report) => {
            if !args.detached_child {
                printer.summary(&plan, &report, &store_dir);
            }
            let ok = report.success();
            // The process exits next, and the OS frees the report at once;
            // freeing it piece by piece takes 16 ms at 10,000 jobs.
            std::mem::forget(report);
            if ok { EXIT_OK } else { EXIT_JOB_FAILED }
        }
        Err(e) => report_error(&e),
    }
}

/// Re-runs this command line as a background process (in its own process
/// group, so a terminal's signals do not reach it), relays the run id it
/// prints once the run is recorded, and returns.
fn detach() -> i32 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return report_error(&Error::Host(format!("finding the cairn executable: {e}"))),
    };
    let args: Vec<OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--detach" && a != "-d")
        .chain([OsString::from("--detached-child")])
        .collect();
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return report_error(&Error::Host(format!("starting the background run: {e}"))),
    };
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped");
    let _ = std::io::BufReader::new(stdout).read_line(&mut line);
    if line.trim().is_empty() {
        // It failed before recording a run: show why.
        let out = child.wait_with_output();
        if let Ok(out) = out {
            let _ = std::io::stderr().write_all(&out.stderr);
            return out.status.code().unwrap_or(EXIT_HOST);
        }
        return EXIT_HOST;
    }
    outln!("{}", line.trim());
    EXIT_OK
}

/// The secrets given on the command line, checked against what jobs declare.
fn read_secrets(
    args: &RunArgs,
    plan: &Plan,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut secrets = std::collections::BTreeMap::new();
    if let Some(file) = &args.secrets_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("--secrets {}: {e}", file.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("{}:{}: expected NAME=VALUE", file.display(), i + 1))?;
            secrets.insert(k.trim().to_string(), v.to_string());
        }
    }
    for name in &args.secrets {
        let value = std::env::var(name)
            .map_err(|_| format!("--secret {name}: the environment has no variable {name}"))?;
        secrets.insert(name.clone(), value);
    }
    for job in &plan.jobs {
        if let Some(s) = job.secrets.iter().find(|s| !secrets.contains_key(&s.value)) {
            return Err(format!(
                "job `{}` declares secret `{}`, which was not given; pass --secret {} (from the environment) or --secrets FILE",
                job.name, s.value, s.value
            ));
        }
    }
    Ok(secrets)
}

fn report_error(e: &Error) -> i32 {
    eprintln!("{}", e.to_string().trim_end());
    if e.is_user_error() {
        EXIT_USAGE
    } else {
        EXIT_HOST
    }
}

struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Ticker {
    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Renders scheduler events: a live status line on a terminal, plain lines
/// otherwise. The only place `cairn run` writes progress.
struct Printer {
    store: Arc<Store>,
    live: bool,
    quiet: bool,
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    running: Vec<(usize, Instant)>,
    queued: usize,
    finished: usize,
    status_shown: bool,
}

impl Printer {
    fn new(quiet: bool, store: Arc<Store>) -> Self {
        Printer {
            store,
            live: std::io::stderr().is_terminal() && !quiet,
            quiet,
            state: Mutex::new(LiveState::default()),
        }
    }

    fn note(&self, msg: &str) {
        if !self.quiet {
            self.line(&format!("  {msg}"));
        }
    }

    /// Prints a line above the live status line (clearing and redrawing it).
    fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let mut st = self.state.lock().unwrap();
        if st.status_shown {
            let _ = write!(err, "\r\x1b[2K");
            st.status_shown = false;
        }
        let _ = writeln!(err, "{text}");
    }

    /// Redraws the live status line every 100 ms until stopped.
    fn start_ticker(self: Arc<Self>, plan: &Arc<Plan>) -> Ticker {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let plan = plan.clone();
        let live = self.live;
        let thread = std::thread::spawn(move || {
            while live && !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                self.redraw(&plan);
            }
        });
        Ticker { stop, thread }
    }

    fn redraw(&self, plan: &Plan) {
        let mut st = self.state.lock().unwrap();
        let running: Vec<String> = st
            .running
            .iter()
            .take(4)
            .map(|(id, t)| format!("{} {:.1}s", plan.jobs[*id].name, t.elapsed().as_secs_f64()))
            .collect();
        let more = st.running.len().saturating_sub(4);
        let mut text = format!(
            "[{}/{}] running: {}",
            st.finished,
            plan.jobs.len(),
            running.join(", ")
        );
        if more > 0 {
            text.push_str(&format!(" (+{more})"));
        }
        if st.queued > 0 {
            text.push_str(&format!(", {} queued", st.queued));
        }
        let width = terminal_width();
        let text: String = text.chars().take(width.saturating_sub(1)).collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{text}");
        let _ = err.flush();
        st.status_shown = true;
    }

    fn summary(&self, plan: &Plan, report: &RunReport, store_dir: &Path) {
        let executed = report.count(|s| *s == JobStatus::Executed);
        let cached = report.count(|s| *s == JobStatus::Cached);
        let failed = report.count(|s| matches!(s, JobStatus::Failed(_)));
        let skipped = report.count(|s| matches!(s, JobStatus::Skipped(_)));
        let verdict = if report.success() { "ok" } else { "FAILED" };
        self.line(&format!(
            "{}: {verdict}: {} jobs, {executed} executed, {cached} cached, {failed} failed, {skipped} skipped in {}",
            plan.name,
            plan.jobs.len(),
            secs(report.elapsed)
        ));
        // Final outputs: those of jobs nothing else depends on.
        let mut consumed = vec![false; plan.jobs.len()];
        for j in &plan.jobs {
            for &d in &j.deps {
                consumed[d] = true;
            }
        }
        let blobs = blobs_dir(store_dir);
        let mut lines = Vec::new();
        for (job, r) in plan.jobs.iter().zip(&report.jobs) {
            if consumed[job.id] || !r.status.is_success() {
                continue;
            }
            for (name, value) in &r.outputs {
                write_output_lines(&mut lines, &format!("{}.{name}", job.name), value, &blobs);
            }
        }
        if !lines.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"outputs:\n");
            let _ = out.write_all(&lines);
        }
    }
}

/// Writes one line per blob of `value`: its label, digest, size and path
/// under `blobs`, the store's blob directory as the user named it.
fn write_output_lines(out: &mut Vec<u8>, label: &str, value: &Value, blobs: &str) {
    match value {
        Value::Blob { digest, size } => {
            let hex = digest.to_hex();
            let (dir, file) = hex.split_at(2);
            let _ = writeln!(out, "  {label}  {hex}  {size} B  {blobs}/{dir}/{file}");
        }
        Value::List(items) => {
            for (i, v) in items.iter().enumerate() {
                write_output_lines(out, &format!("{label}[{i}]"), v, blobs);
            }
        }
    }
}

/// The store's blob directory as the user named the store, for output lines.
fn blobs_dir(store_dir: &Path) -> String {
    store_dir.join("blobs").display().to_string()
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

impl EventSink for Printer {
    fn event(&self, plan: &Plan, event: &Event) {
        {
            let mut st = self.state.lock().unwrap();
            match event {
                Event::Queued(_) => st.queued += 1,
                Event::Retrying { .. } => {}
                Event::Running(id, _) => match st.running.iter_mut().find(|(r, _)| r == id) {
                    // A retry: the job is already shown; restart its clock.
                    Some(entry) => entry.1 = Instant::now(),
                    None => {
                        st.queued = st.queued.saturating_sub(1);
                        st.running.push((*id, Instant::now()));
                    }
                },
                Event::Done(id, report) => {
                    let status = &report.status;
                    if st.running.iter().any(|(r, _)| r == id) {
                        st.running.retain(|(r, _)| r != id);
                    } else if !matches!(status, JobStatus::Skipped(_)) {
                        st.queued = st.queued.saturating_sub(1);
                    }
                    st.finished += 1;
                }
            }
        }
        let name = |id: usize| plan.jobs[id].name.as_str();
        match event {
            Event::Queued(_) => {}
            Event::Running(id, attempt) => {
                if !self.live && !self.quiet {
                    match attempt {
                        1 => self.line(&format!("running  {}", name(*id))),
                        n => self.line(&format!("running  {} (attempt {n})", name(*id))),
                    }
                }
            }
            Event::Retrying {
                job,
                attempt,
                failure,
                backoff,
            } => {
                self.line(&format!(
                    "retrying {} in {}: attempt {attempt} failed ({}): {}",
                    name(*job),
                    secs(*backoff),
                    failure.kind,
                    failure.message
                ));
            }
            Event::Done(id, report) => {
                let (status, elapsed) = (&report.status, &report.elapsed);
                let text = match status {
                    JobStatus::Executed => format!("done     {} ({})", name(*id), secs(*elapsed)),
                    JobStatus::Cached => format!("cached   {}", name(*id)),
                    JobStatus::Failed(f) => {
                        format!("failed   {} ({}): {}", name(*id), f.kind, f.message)
                    }
                    JobStatus::Skipped(SkipReason::Upstream(up)) => {
                        format!(
                            "skipped  {} (needs {}, which did not succeed)",
                            name(*id),
                            name(*up)
                        )
                    }
                    JobStatus::Skipped(SkipReason::RunStopped) => {
                        format!(
                            "skipped  {} (the run stopped after a failure; see --keep-going)",
                            name(*id)
                        )
                    }
                    JobStatus::Skipped(SkipReason::Condition) => {
                        format!("skipped  {} (condition)", name(*id))
                    }
                };
                let important = matches!(status, JobStatus::Failed(_));
                if important || !self.quiet {
                    self.line(&text);
                }
                if let JobStatus::Failed(f) = status {
                    self.print_log_tail(f);
                }
                // What a typed task reported through its context (all its
                // log lines are in `cairn logs`).
                if let Some(m) = report.manifest.as_ref().filter(|_| !self.quiet) {
                    let metrics: Vec<String> = m
                        .reported
                        .metrics
                        .iter()
                        .map(|(n, step, v)| match step {
                            Some(s) => format!("{n}[{s}]={v}"),
                            None => format!("{n}={v}"),
                        })
                        .collect();
                    if !metrics.is_empty() {
                        self.line(&format!("         metrics {}", metrics.join(" ")));
                    }
                    let labels: Vec<String> = m
                        .reported
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    if !labels.is_empty() {
                        self.line(&format!("         labels  {}", labels.join(" ")));
                    }
                }
            }
        }
    }
}

impl Printer {
    /// The job's own words are the best explanation: show its last lines.
    fn print_log_tail(&self, f: &crate::outcome::Failure) {
        let mut text = String::new();
        for d in [f.stdout, f.stderr].into_iter().flatten() {
            if let Ok(bytes) = self.store.read(&d) {
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        let lines: Vec<&str> = text.lines().collect();
        for l in &lines[lines.len().saturating_sub(10)..] {
            self.line(&format!("         | {l}"));
        }
    }
}
