//! The printer: everything a command shows goes through here. Results go to
//! stdout (`outln!`, or JSON with `--json`); a run's progress goes to stderr
//! through [`Printer`], as a live status line on a terminal, plain lines
//! otherwise.

use crate::run::scheduler::{Event, EventSink, JobReport, JobStatus, RunReport, SkipReason};
use crate::store::action::Value;
use crate::store::blobs::Store;
use crate::workflow::plan::Plan;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `println!` that ignores a closed stdout (`cairn runs | head`) instead of
/// panicking: the reader left, nothing is wrong.
macro_rules! outln {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

pub(crate) use outln;

/// Whether and how to colour state words. Colour is for people: only on a
/// terminal, never with `NO_COLOR` set (<https://no-color.org>), and forced
/// with `CLICOLOR_FORCE` (for screenshots and tests of the colours).
#[derive(Debug, Clone, Copy)]
pub(super) struct Style {
    color: bool,
}

impl Style {
    /// The style for a stream that is (or is not) a terminal.
    pub(super) fn for_stream(is_terminal: bool) -> Style {
        let set = |v: &str| std::env::var_os(v).is_some_and(|v| !v.is_empty());
        Style {
            color: !set("NO_COLOR") && (is_terminal || set("CLICOLOR_FORCE")),
        }
    }

    /// The style of standard output.
    pub(super) fn stdout() -> Style {
        Style::for_stream(std::io::stdout().is_terminal())
    }

    /// A state word (`failed`, `cached`, `succeeded`, …) padded to `width`,
    /// coloured by what it means.
    pub(super) fn state(&self, word: &str, width: usize) -> String {
        let padded = format!("{word:<width$}");
        if !self.color {
            return padded;
        }
        let code = match word {
            "done" | "executed" | "succeeded" | "ok" | "same" => "32",
            "cached" => "36",
            "failed" | "FAILED" | "interrupted" | "DIFFERS" => "31",
            "running" | "queued" | "retrying" => "33",
            _ => "2",
        };
        format!("\x1b[{code}m{padded}\x1b[0m")
    }
}

pub(super) fn print_json(v: &impl serde::Serialize) {
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(v).expect("serialisable")
    );
}

pub(super) fn ago(ms: i64) -> String {
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

pub(super) fn took(row_start: Option<i64>, row_end: Option<i64>) -> String {
    match (row_start, row_end) {
        (Some(a), Some(b)) => secs(Duration::from_millis((b - a).max(0) as u64)),
        _ => String::new(),
    }
}

/// Writes one line per blob of `value`: its label, digest, size and path
/// under `blobs`, the store's blob directory as the user named it.
pub(super) fn write_output_lines(out: &mut Vec<u8>, label: &str, value: &Value, blobs: &str) {
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
pub(super) fn blobs_dir(store_dir: &Path) -> String {
    store_dir.join("blobs").display().to_string()
}

pub(super) fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

pub(super) fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

pub(super) struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Ticker {
    pub(super) fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Renders scheduler events: a live status line on a terminal, plain lines
/// otherwise. The only place `cairn run` writes progress.
pub(super) struct Printer {
    store: Arc<Store>,
    live: bool,
    style: Style,
    quiet: bool,
    state: Mutex<LiveState>,
}

#[derive(Default)]
pub(super) struct LiveState {
    running: Vec<(usize, Instant)>,
    queued: usize,
    finished: usize,
    status_shown: bool,
}

impl Printer {
    pub(super) fn new(quiet: bool, store: Arc<Store>) -> Self {
        Printer {
            store,
            live: std::io::stderr().is_terminal() && !quiet,
            style: Style::for_stream(std::io::stderr().is_terminal()),
            quiet,
            state: Mutex::new(LiveState::default()),
        }
    }

    pub(super) fn note(&self, msg: &str) {
        if msg.starts_with("warning:") {
            self.line(msg);
        } else if !self.quiet {
            self.line(&format!("  {msg}"));
        }
    }

    /// Prints a line above the live status line (clearing and redrawing it).
    pub(super) fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let mut st = self.state.lock().unwrap();
        if st.status_shown {
            let _ = write!(err, "\r\x1b[2K");
            st.status_shown = false;
        }
        let _ = writeln!(err, "{text}");
    }

    /// Redraws the live status line every 100 ms until stopped.
    pub(super) fn start_ticker(self: Arc<Self>, plan: &Arc<Plan>) -> Ticker {
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

    pub(super) fn redraw(&self, plan: &Plan) {
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

    pub(super) fn summary(&self, plan: &Plan, report: &RunReport, store_dir: &Path) {
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
        // Kept under -q: like the verdict, one line a script reads.
        if !report.remote_calls.is_empty() {
            let total: u64 = report.remote_calls.iter().map(|(_, n)| n).sum();
            let each: Vec<String> = report
                .remote_calls
                .iter()
                .map(|(m, n)| format!("{m} {n}"))
                .collect();
            self.line(&format!("remote: {total} calls ({})", each.join(", ")));
        }
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
                        1 => self.line(&format!("{}{}", self.style.state("running", 9), name(*id))),
                        n => self.line(&format!(
                            "{}{} (attempt {n})",
                            self.style.state("running", 9),
                            name(*id)
                        )),
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
                    "{}{} in {}: attempt {attempt} failed: {}",
                    self.style.state("retrying", 9),
                    name(*job),
                    secs(*backoff),
                    failure.cause()
                ));
            }
            Event::Done(id, report) => {
                let (status, elapsed) = (&report.status, &report.elapsed);
                let text = match status {
                    JobStatus::Executed => format!(
                        "{}{} ({})",
                        self.style.state("done", 9),
                        name(*id),
                        secs(*elapsed)
                    ),
                    JobStatus::Cached => format!("{}{}", self.style.state("cached", 9), name(*id)),
                    JobStatus::Failed(f) => {
                        // The cause first, in words; a backtrace below it.
                        let job = &plan.jobs[*id];
                        let not_retried = (job.retry.attempts > 1)
                            .then(|| crate::run::scheduler::not_retried(job, f.kind))
                            .flatten()
                            .map(|why| {
                                format!(
                                    "\n         not retried: {why} (`retry: {{ always: true }}` retries it anyway)"
                                )
                            })
                            .unwrap_or_default();
                        format!(
                            "{}{}: {}{not_retried}",
                            self.style.state("failed", 9),
                            name(*id),
                            f.describe().replace('\n', "\n         ")
                        )
                    }
                    JobStatus::Skipped(SkipReason::Upstream(up)) => {
                        format!(
                            "{}{} (needs {}, which did not succeed)",
                            self.style.state("skipped", 9),
                            name(*id),
                            name(*up)
                        )
                    }
                    JobStatus::Skipped(SkipReason::RunStopped) => {
                        format!(
                            "{}{} (the run stopped after a failure; see --keep-going)",
                            self.style.state("skipped", 9),
                            name(*id)
                        )
                    }
                    JobStatus::Skipped(SkipReason::Condition) => {
                        format!(
                            "{}{} (condition)",
                            self.style.state("skipped", 9),
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
    pub(super) fn print_log_tail(&self, f: &crate::run::outcome::Failure) {
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

/// A job as every `--json` output shows it (`run`, `plan`, `check`, and
/// `status` through its records): its id in the plan, its name and the ids
/// it waits for. Each command adds the job's `status` and what it knows.
pub(super) fn job_json(plan: &Plan, id: usize) -> serde_json::Map<String, serde_json::Value> {
    let job = &plan.jobs[id];
    let mut m = serde_json::Map::new();
    m.insert("job".into(), id.into());
    m.insert("name".into(), job.name.clone().into());
    m.insert("deps".into(), job.deps.clone().into());
    m
}

/// A finished job's fields, named as `cairn status --json` names them.
fn done_json(plan: &Plan, id: usize, report: &JobReport) -> serde_json::Value {
    use serde_json::Value as J;
    let mut m = job_json(plan, id);
    let status = match &report.status {
        JobStatus::Executed => "executed",
        JobStatus::Cached => "cached",
        JobStatus::Failed(_) => "failed",
        JobStatus::Skipped(_) => "skipped",
    };
    m.insert("status".into(), status.into());
    m.insert(
        "cache_key".into(),
        report.key.map_or(J::Null, |k| k.to_hex().into()),
    );
    m.insert("attempts".into(), report.attempts.into());
    m.insert(
        "elapsed_ms".into(),
        (report.elapsed.as_millis() as u64).into(),
    );
    match &report.status {
        JobStatus::Failed(f) => {
            m.insert("failure_kind".into(), f.kind.as_str().into());
            m.insert("cause".into(), f.cause().into());
            m.insert("failure".into(), f.message.clone().into());
            m.insert("exit_code".into(), f.exit_code.map_or(J::Null, J::from));
        }
        JobStatus::Skipped(reason) => {
            let name = |d: usize| plan.jobs[d].name.clone();
            m.insert("failure".into(), reason.describe(&name).into());
        }
        JobStatus::Executed | JobStatus::Cached => {
            let outputs: serde_json::Map<String, J> = report
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                .collect();
            m.insert("outputs".into(), outputs.into());
            if let Some(r) = report.manifest.as_ref().map(|m| &m.reported) {
                m.insert("labels".into(), serde_json::json!(r.labels));
            }
        }
    }
    J::Object(m)
}

/// `cairn run --json`: one JSON object per line on stdout as the run goes
/// (`started`, then `queued`, `running`, `retrying` and `done` per job,
/// then `finished`). Events that come before the run is recorded wait, so
/// `started` (with the run's id) is always the first line.
pub(super) struct JsonEvents {
    /// Lines held until `started`; `None` once it is printed.
    held: Mutex<Option<Vec<String>>>,
}

impl JsonEvents {
    pub(super) fn new() -> Self {
        JsonEvents {
            held: Mutex::new(Some(Vec::new())),
        }
    }

    fn emit(&self, v: serde_json::Value) {
        let line = v.to_string();
        let mut held = self.held.lock().unwrap();
        match held.as_mut() {
            Some(lines) => lines.push(line),
            None => outln!("{line}"),
        }
    }

    /// The run is recorded: its id first, then what was held.
    pub(super) fn started(&self, run: &str, plan: &Plan) {
        let mut held = self.held.lock().unwrap();
        outln!(
            "{}",
            serde_json::json!({
                "event": "started",
                "run": run,
                "workflow": plan.name,
                "jobs": plan.jobs.len(),
            })
        );
        for line in held.take().unwrap_or_default() {
            outln!("{line}");
        }
    }

    /// The last line: counts, and the outputs of the jobs nothing needs.
    pub(super) fn finished(&self, run: &str, plan: &Plan, report: &RunReport) {
        let mut consumed = vec![false; plan.jobs.len()];
        for j in &plan.jobs {
            for &d in &j.deps {
                consumed[d] = true;
            }
        }
        let outputs: Vec<serde_json::Value> = plan
            .jobs
            .iter()
            .zip(&report.jobs)
            .filter(|(j, r)| !consumed[j.id] && r.status.is_success())
            .flat_map(|(j, r)| {
                r.outputs.iter().map(|(name, value)| {
                    serde_json::json!({ "job": j.name, "name": name, "value": value })
                })
            })
            .collect();
        let calls: serde_json::Map<String, serde_json::Value> = report
            .remote_calls
            .iter()
            .map(|(m, n)| (m.to_string(), (*n).into()))
            .collect();
        self.emit(serde_json::json!({
            "event": "finished",
            "run": run,
            "workflow": plan.name,
            "status": if report.success() { "succeeded" } else { "failed" },
            "jobs": plan.jobs.len(),
            "executed": report.count(|s| *s == JobStatus::Executed),
            "cached": report.count(|s| *s == JobStatus::Cached),
            "failed": report.count(|s| matches!(s, JobStatus::Failed(_))),
            "skipped": report.count(|s| matches!(s, JobStatus::Skipped(_))),
            "elapsed_ms": report.elapsed.as_millis() as u64,
            "remote_calls": calls,
            "error": report.host_error,
            "outputs": outputs,
        }));
    }
}

impl EventSink for JsonEvents {
    fn event(&self, plan: &Plan, event: &Event) {
        let with = |id: usize, status: &str, extra: &[(&str, serde_json::Value)]| {
            let mut m = job_json(plan, id);
            m.insert("status".into(), status.into());
            for (k, v) in extra {
                m.insert((*k).into(), v.clone());
            }
            serde_json::Value::Object(m)
        };
        let (name, job) = match event {
            Event::Queued(id) => ("queued", with(*id, "queued", &[])),
            Event::Running(id, attempt) => (
                "running",
                with(*id, "running", &[("attempt", (*attempt).into())]),
            ),
            Event::Retrying {
                job,
                attempt,
                failure,
                backoff,
            } => (
                "retrying",
                with(
                    *job,
                    "retrying",
                    &[
                        ("attempt", (*attempt).into()),
                        ("failure_kind", failure.kind.as_str().into()),
                        ("cause", failure.cause().into()),
                        ("backoff_ms", (backoff.as_millis() as u64).into()),
                    ],
                ),
            ),
            Event::Done(id, report) => ("done", done_json(plan, *id, report)),
        };
        self.emit(serde_json::json!({ "event": name, "job": job }));
    }
}
