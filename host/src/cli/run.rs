//! `cairn run`, `cairn check` and `cairn plan`: the commands that load a
//! workflow.

use super::args::*;
use super::print::*;
use super::*;
use crate::run::executor::ExecLimits;
use crate::run::scheduler::{EventSink, RunOptions};
use crate::run::session::{self, Error, NoEvents};
use crate::store::blobs::Store;
use crate::workflow::load::{Loaded, load};
use crate::workflow::plan::Plan;
use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::process::Stdio;
use std::sync::Arc;

/// Jobs in flight by default when they execute remotely.
const REMOTE_JOBS: usize = 48;

/// Loads, builds, stores and type-checks a workflow without running it:
/// what `check` and `plan` start from.
pub(super) fn prepare_only(wf: &WorkflowArgs) -> Result<Prepared, Error> {
    let loaded = load(&wf.workflow, &wf.overrides())?;
    let (store, runtime) = session::open(&wf.store_dir())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Host(e.to_string()))?;
    let target = wf.remote.target().map_err(Error::Config)?;
    let note: crate::remote::cache::Note = Arc::new(|n: &str| eprintln!("{n}"));
    // Connected before anything is stored, so blobs get their remote names.
    let remote = match &target {
        Some(t) => Some(rt.block_on(session::Connected::connect(t, store.clone(), note))?),
        None => None,
    };
    let prepared = session::prepare(&loaded, &store, &runtime, &rt, &mut |n| eprintln!("  {n}"))?;
    Ok(Prepared {
        loaded,
        store,
        prepared,
        rt,
        remote,
    })
}

/// A workflow loaded, built and checked, with what a dry run needs.
pub(super) struct Prepared {
    loaded: Loaded,
    store: Arc<Store>,
    prepared: session::Prepared,
    rt: tokio::runtime::Runtime,
    remote: Option<session::Connected>,
}

pub(super) fn check(wf: &WorkflowArgs, json: bool) -> i32 {
    let result = prepare_only(wf).and_then(
        |Prepared {
             loaded, prepared, ..
         }| {
            session::unusable(&loaded, &prepared)?;
            Ok((loaded, prepared))
        },
    );
    let workflow = wf.workflow.display().to_string();
    match result {
        Ok((loaded, prepared)) => {
            let typed = |c: &crate::workflow::check::Call| {
                matches!(c, crate::workflow::check::Call::Typed(_))
            };
            if json {
                let jobs: Vec<serde_json::Value> = prepared
                    .calls
                    .iter()
                    .enumerate()
                    .map(|(id, c)| {
                        let mut m = job_json(&loaded.plan, id);
                        m.insert("status".into(), "ok".into());
                        m.insert(
                            "kind".into(),
                            if typed(c) { "typed" } else { "command" }.into(),
                        );
                        serde_json::Value::Object(m)
                    })
                    .collect();
                print_json(&serde_json::json!({
                    "workflow": workflow,
                    "ok": true,
                    "jobs": jobs,
                    "problems": [],
                }));
                return EXIT_OK;
            }
            let typed = prepared.calls.iter().filter(|c| typed(c)).count();
            outln!(
                "{}: ok: {} jobs ({typed} typed, {} command)",
                loaded.path.display(),
                prepared.calls.len(),
                prepared.calls.len() - typed
            );
            EXIT_OK
        }
        Err(e) if json => {
            let problems: Vec<serde_json::Value> = match &e {
                Error::Workflow(d) => d
                    .items
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "file": d.source.name,
                            "line": p.span.map(|s| s.start.line),
                            "col": p.span.map(|s| s.start.col),
                            "message": p.message,
                            "expected": p.expected,
                            "help": p.help,
                        })
                    })
                    .collect(),
                other => vec![serde_json::json!({
                    "file": null, "line": null, "col": null,
                    "message": other.to_string().trim_end(),
                    "expected": null, "help": null,
                })],
            };
            print_json(&serde_json::json!({
                "workflow": workflow,
                "ok": false,
                "jobs": [],
                "problems": problems,
            }));
            if e.is_user_error() {
                EXIT_USAGE
            } else {
                EXIT_HOST
            }
        }
        Err(e) => report_error(&e),
    }
}

pub(super) fn dry_run(wf: &WorkflowArgs, format: &str) -> i32 {
    use crate::run::scheduler::{Forecast, SkipCause};
    let result = prepare_only(wf).and_then(|p| {
        let Prepared {
            loaded,
            store,
            prepared,
            rt,
            remote,
        } = p;
        let opts = RunOptions {
            jobs: 1,
            keep_going: false,
            no_cache: false,
            limits: ExecLimits::default(),
            secrets: Default::default(),
            secret_key: store.secret_key().map_err(|e| Error::Host(e.to_string()))?,
        };
        let local = crate::store::cache::LocalCache::new(store.clone());
        let f = rt.block_on(async {
            // A dry run asks the remote cache too, when there is one.
            let cache: Box<dyn crate::store::cache::ActionCache> = match &remote {
                Some(c) => Box::new(crate::remote::cache::RemoteCache::new(
                    local,
                    c.remote.clone(),
                    c.note.clone(),
                )),
                None => Box::new(local),
            };
            // An `if:` reads typed outputs of cached jobs from the store.
            let reader = store.clone();
            let blobs = move |d: &crate::store::digest::Digest| reader.read(d).ok();
            crate::run::scheduler::forecast(
                &loaded.plan,
                &prepared.calls,
                &prepared.components,
                &prepared.inputs,
                cache.as_ref(),
                &blobs,
                &opts,
            )
            .await
        });
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
        Forecast::Unknown | Forecast::DependsOn(_) => "waits",
        Forecast::Skipped(_) => "skipped",
    };
    // What a job's state alone does not say: why it is skipped or waits.
    let why = |f: &Forecast| match f {
        Forecast::Skipped(SkipCause::Condition(c)) => format!("(if: {c})"),
        Forecast::Skipped(SkipCause::Needs(d)) => format!("(needs {d}, which is skipped)"),
        Forecast::DependsOn(jobs) => format!("if: depends on {}", jobs.join(", ")),
        Forecast::Unknown => "key not known until its inputs are".to_string(),
        Forecast::Hit(k) | Forecast::Miss(k) => format!("key {}", &k.to_hex()[..16]),
    };
    match format {
        "json" => {
            let jobs: Vec<serde_json::Value> = plan
                .jobs
                .iter()
                .map(|j| {
                    let f = &forecast[j.id];
                    let mut m = job_json(plan, j.id);
                    m.insert("status".into(), state(f).into());
                    let key = match f {
                        Forecast::Hit(k) | Forecast::Miss(k) => k.to_hex().into(),
                        _ => serde_json::Value::Null,
                    };
                    m.insert("cache_key".into(), key);
                    m.insert("layer".into(), layer[j.id].into());
                    let reason = match f {
                        Forecast::Hit(_) | Forecast::Miss(_) => serde_json::Value::Null,
                        f => why(f).into(),
                    };
                    m.insert("reason".into(), reason);
                    if let Forecast::DependsOn(on) = f {
                        m.insert("depends_on".into(), on.clone().into());
                    }
                    serde_json::Value::Object(m)
                })
                .collect();
            let count = |f: fn(&Forecast) -> bool| forecast.iter().filter(|x| f(x)).count();
            print_json(&serde_json::json!({
                "workflow": plan.name,
                "jobs": jobs,
                "cached": count(|f| matches!(f, Forecast::Hit(_))),
                "runs": count(|f| matches!(f, Forecast::Miss(_))),
                "skipped": count(|f| matches!(f, Forecast::Skipped(_))),
            }));
        }
        "dot" => {
            outln!("digraph {:?} {{", plan.name);
            outln!("  rankdir=LR;");
            for j in &plan.jobs {
                let color = match forecast[j.id] {
                    Forecast::Hit(_) => "palegreen",
                    Forecast::Miss(_) => "orange",
                    Forecast::Unknown | Forecast::DependsOn(_) => "lightgrey",
                    Forecast::Skipped(_) => "white",
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
        "svg" => {
            // The picture the web view draws, with the forecast for states.
            let notes: Vec<String> = plan
                .jobs
                .iter()
                .map(|j| match &forecast[j.id] {
                    Forecast::Hit(_) => "cached".to_string(),
                    Forecast::Miss(k) => format!("runs · key {}", &k.to_hex()[..8]),
                    Forecast::Unknown => "waits".to_string(),
                    f => why(f),
                })
                .collect();
            let nodes: Vec<crate::serve::dag::Node<'_>> = plan
                .jobs
                .iter()
                .zip(notes)
                .map(|(j, note)| crate::serve::dag::Node {
                    name: &j.name,
                    deps: &j.deps,
                    state: state(&forecast[j.id]),
                    note,
                })
                .collect();
            outln!("{}", crate::serve::dag::svg(&nodes));
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
            let skips = forecast
                .iter()
                .filter(|f| matches!(f, Forecast::Skipped(_)))
                .count();
            let skips = if skips > 0 {
                format!(", {skips} would be skipped")
            } else {
                String::new()
            };
            outln!(
                "{}: {} jobs in {layers} layers; {hits} would come from the cache{skips}",
                plan.name,
                plan.jobs.len()
            );
            for l in 0..layers {
                outln!("layer {l}");
                for j in plan.jobs.iter().filter(|j| layer[j.id] == l) {
                    let f = &forecast[j.id];
                    outln!("  {:<7} {:<24} {}", state(f), j.name, why(f));
                }
            }
        }
    }
    EXIT_OK
}

pub(super) fn run(args: RunArgs) -> i32 {
    let overrides = args.wf.overrides();
    // Planning errors are reported here, before anything is recorded, even
    // for --detach: they are the caller's to fix.
    let loaded = match load(&args.wf.workflow, &overrides) {
        Ok(l) => l,
        Err(e) => return report_error(&e.into()),
    };
    if args.detach {
        return detach();
    }
    let store_dir = args.wf.store_dir();
    let target = match args.wf.remote.target() {
        Ok(t) => t,
        Err(msg) => {
            eprintln!("error: {msg}");
            return EXIT_USAGE;
        }
    };
    // Executing remotely, a slot is an open execution, not a core here.
    let default_jobs = if target.as_ref().is_some_and(|t| t.exec) {
        REMOTE_JOBS
    } else {
        cores()
    };
    let jobs = args.jobs.unwrap_or(default_jobs).max(1);
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
    let quiet = args.quiet || args.detached_child || args.json;
    let printer = Arc::new(Printer::new(quiet, store.clone()));
    let json = args.json.then(|| Arc::new(JsonEvents::new()));
    let events: Arc<dyn EventSink> = match &json {
        _ if args.detached_child => Arc::new(NoEvents),
        Some(j) => j.clone(),
        None => printer.clone(),
    };
    let note_printer = printer.clone();
    let plan = loaded.plan.clone();
    let started = match session::start(
        loaded,
        &store_dir,
        opts,
        events,
        Arc::new(move |n: &str| note_printer.note(n)),
        target.as_ref(),
    ) {
        Ok(s) => s,
        Err(e) => return report_error(&e),
    };
    if args.detached_child {
        // The parent relays this line and exits; nothing else goes to stdout.
        outln!("{}", started.run.id());
        let _ = std::io::stdout().flush();
    }
    if let Some(j) = &json {
        j.started(started.run.id(), &plan);
    }
    let run_id = started.run.id().to_string();
    let ticker = printer.clone().start_ticker(&plan);
    // The process exits right after: no need to wait for the teardown.
    let result = started.wait();
    ticker.stop();
    match result {
        Ok(report) => {
            match &json {
                Some(j) => j.finished(&run_id, &plan, &report),
                None if !args.detached_child => printer.summary(&plan, &report, &store_dir),
                None => {}
            }
            let ok = report.success();
            if let Some(e) = &report.host_error {
                eprintln!("error: {e}");
            }
            // A job that failed because the machine or the server did is
            // not the workflow's fault.
            let host = report.host_error.is_some()
                || report.jobs.iter().any(|j| {
                    matches!(&j.status, crate::run::scheduler::JobStatus::Failed(f)
                    if f.kind == crate::run::outcome::FailureKind::Host)
                });
            // The process exits next, and the OS frees the report at once;
            // freeing it piece by piece takes 16 ms at 10,000 jobs.
            std::mem::forget(report);
            if ok {
                EXIT_OK
            } else if host {
                EXIT_HOST
            } else {
                EXIT_JOB_FAILED
            }
        }
        Err(e) => report_error(&e),
    }
}

/// Re-runs this command line as a background process (in its own process
/// group, so a terminal's signals do not reach it), relays the run id it
/// prints once the run is recorded, and returns.
pub(super) fn detach() -> i32 {
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
pub(super) fn read_secrets(
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
