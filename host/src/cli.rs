//! The `cairn` command line. `main` is a one-liner over [`main`] here, so
//! tests can also drive the CLI in-process.

use crate::cache::Value;
use crate::digest::Digest;
use crate::plan::{Overrides, Plan};
use crate::runtime::ExecLimits;
use crate::scheduler::{Event, EventSink, JobStatus, RunOptions, RunReport, SkipReason};
use crate::spec::{parse_duration, parse_size};
use crate::store::Store;
use crate::workflow::{self, Error};
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Exit code: every job succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit code: a job failed (the run's other results are still stored).
pub const EXIT_JOB_FAILED: i32 = 1;
/// Exit code: bad usage or an invalid workflow; nothing ran.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the host failed (store, engine); not the workflow's fault.
pub const EXIT_HOST: i32 = 3;

const EXIT_CODES: &str = "\
Exit codes:
  0  success: every job succeeded (executed or cached)
  1  a job failed; jobs depending on it were skipped
  2  bad usage or an invalid workflow (reported with file:line:col); nothing ran
  3  cairn or the machine failed (store, engine), not the workflow";

/// Run workflows of sandboxed WebAssembly components, cached by content.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workflow: plan it, then execute every job not already cached.
    Run(RunArgs),
    /// Print a blob from the store (checked against its digest) to stdout.
    Cat {
        /// The blob's digest (64 hex digits).
        digest: String,
        /// The store (default: ./.cairn).
        #[arg(long, env = "CAIRN_STORE")]
        store: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The workflow file (YAML).
    workflow: PathBuf,
    /// Override a parameter: --param top=20 (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = key_value)]
    params: Vec<(String, String)>,
    /// Use another host file for a workflow input: --input corpus=big.txt (repeatable).
    #[arg(long = "input", value_name = "NAME=PATH", value_parser = key_value)]
    inputs: Vec<(String, String)>,
    /// Jobs executing at once [default: number of cores].
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Keep running every job that does not depend on a failed one.
    #[arg(short, long)]
    keep_going: bool,
    /// Execute every job even if its result is cached (results are still stored).
    #[arg(long)]
    no_cache: bool,
    /// The store directory [default: .cairn beside the workflow].
    #[arg(long, env = "CAIRN_STORE")]
    store: Option<PathBuf>,
    /// Default linear-memory limit per job (a job's `limits.memory` wins).
    #[arg(long, default_value = "2GiB", value_parser = size)]
    memory: u64,
    /// Default wall-time limit per job (a job's `limits.timeout` wins).
    #[arg(long, default_value = "10m", value_parser = duration)]
    timeout: Duration,
    /// Print only failures and the final summary.
    #[arg(short, long)]
    quiet: bool,
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

/// Runs the CLI with these arguments (including argv[0]) and returns the exit code.
pub fn main<I: IntoIterator<Item = T>, T: Into<OsString> + Clone>(args: I) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    match cli.command {
        Command::Run(args) => run(args),
        Command::Cat { digest, store } => cat(&digest, store),
    }
}

fn cat(digest: &str, store: Option<PathBuf>) -> i32 {
    let digest: Digest = match digest.parse() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let dir = store.unwrap_or_else(|| PathBuf::from(".cairn"));
    let result = Store::open(&dir).and_then(|s| s.read(&digest));
    match result {
        Ok(bytes) => {
            let _ = std::io::stdout().write_all(&bytes);
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: blob {digest} in {}: {e}", dir.display());
            EXIT_HOST
        }
    }
}

fn run(args: RunArgs) -> i32 {
    let overrides = Overrides {
        params: args.params.clone(),
        inputs: args.inputs.clone(),
    };
    let loaded = match workflow::load(&args.workflow, &overrides) {
        Ok(l) => l,
        Err(e) => return report_error(&e),
    };
    let store_dir = args
        .store
        .clone()
        .unwrap_or_else(|| workflow::default_store(&loaded));
    let (store, runtime) = match workflow::open(&store_dir) {
        Ok(x) => x,
        Err(e) => return report_error(&e),
    };
    let printer = Arc::new(Printer::new(args.quiet, store.clone()));
    let prepared = match workflow::prepare(&loaded, &store, &mut |note| printer.note(note)) {
        Ok(p) => p,
        Err(e) => return report_error(&e),
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let opts = RunOptions {
        jobs,
        keep_going: args.keep_going,
        no_cache: args.no_cache,
        limits: ExecLimits {
            memory: args.memory,
            timeout: args.timeout,
        },
    };
    // Wasm runs on the async workers; one more keeps the scheduler and
    // progress display responsive while every job slot is busy.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(jobs + 1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report_error(&Error::Host(format!("starting the async runtime: {e}"))),
    };
    let report = rt.block_on(async {
        let ticker = printer.clone().start_ticker(&loaded.plan);
        let report = workflow::execute(
            &loaded,
            &prepared,
            store.clone(),
            runtime,
            printer.clone(),
            &opts,
        )
        .await;
        ticker.abort();
        report
    });
    printer.summary(&loaded.plan, &report, &store, &store_dir);
    if report.success() {
        EXIT_OK
    } else {
        EXIT_JOB_FAILED
    }
}

fn report_error(e: &Error) -> i32 {
    eprintln!("{}", e.to_string().trim_end());
    if e.is_user_error() {
        EXIT_USAGE
    } else {
        EXIT_HOST
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

    fn start_ticker(self: Arc<Self>, plan: &Arc<Plan>) -> tokio::task::JoinHandle<()> {
        let plan = plan.clone();
        tokio::spawn(async move {
            if !self.live {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.redraw(&plan);
            }
        })
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

    fn summary(&self, plan: &Plan, report: &RunReport, store: &Store, store_dir: &Path) {
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
        let mut lines = Vec::new();
        for (job, r) in plan.jobs.iter().zip(&report.jobs) {
            if consumed[job.id] || !r.status.is_success() {
                continue;
            }
            for (name, value) in &r.outputs {
                output_lines(
                    &format!("{}.{name}", job.name),
                    value,
                    store,
                    store_dir,
                    &mut lines,
                );
            }
        }
        if !lines.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "outputs:");
            for l in lines {
                let _ = writeln!(out, "  {l}");
            }
        }
    }
}

fn output_lines(
    label: &str,
    value: &Value,
    store: &Store,
    store_dir: &Path,
    out: &mut Vec<String>,
) {
    match value {
        Value::Blob { digest, size } => {
            let rel = store
                .blob_path(digest)
                .strip_prefix(store.root())
                .map(|p| store_dir.join(p))
                .unwrap_or_else(|_| store.blob_path(digest));
            out.push(format!("{label}  {digest}  {size} B  {}", rel.display()));
        }
        Value::List(items) => {
            for (i, v) in items.iter().enumerate() {
                output_lines(&format!("{label}[{i}]"), v, store, store_dir, out);
            }
        }
    }
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
                Event::Running(id) => {
                    st.queued = st.queued.saturating_sub(1);
                    st.running.push((*id, Instant::now()));
                }
                Event::Done(id, status, _) => {
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
            Event::Running(id) => {
                if !self.live && !self.quiet {
                    self.line(&format!("running  {}", name(*id)));
                }
            }
            Event::Done(id, status, elapsed) => {
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
                };
                let important = matches!(status, JobStatus::Failed(_));
                if important || !self.quiet {
                    self.line(&text);
                }
                if let JobStatus::Failed(f) = status {
                    self.print_log_tail(f);
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
