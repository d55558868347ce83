//! Untrusted tasks fail alone, with a reason a person can act on: limits,
//! traps, attacks, retries. One tiny guest per behaviour.

use crate::util::{Project, Run};

/// The latest run's jobs by name: (status, failure kind, failure, attempts).
fn jobs(p: &Project) -> std::collections::HashMap<String, (String, String, String, i64)> {
    let runs = p.cairn(&["runs", "--json"]).json();
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let status = p.cairn(&["status", &id, "--json"]).json();
    status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let s = |k: &str| j[k].as_str().unwrap_or_default().to_string();
            (
                s("name"),
                (
                    s("status"),
                    s("failure_kind"),
                    s("failure"),
                    j["attempts"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
fn every_limit_fails_its_job_alone_with_its_class() {
    let p = Project::new();
    p.workflow(
        "jobs:
  spin:
    uses: {SPIN}
    limits: { timeout: 300ms }
  bomb:
    uses: {MEMORY_BOMB}
    limits: { memory: 64MiB }
  recurse:
    uses: {RECURSE}
  fuel:
    uses: {SPIN}
    limits: { fuel: 1e6 }
  big:
    uses: {BIG_OUTPUT}
    args: ['10']
    outputs: [big]
    limits: { output: 8MiB }
  chatty:
    uses: {CHATTY}
    args: ['100']
    limits: { log: 1MiB }
  fine:
    uses: {ECHO_ARGS}
    args: [still, here]
    stdout: out
",
    );
    let run = p.cairn(&["run", "wf.yaml", "--keep-going"]);
    assert_eq!(run.code, 1, "{run:?}");
    let jobs = jobs(&p);
    let class = |n: &str| (jobs[n].0.as_str(), jobs[n].1.as_str());
    assert_eq!(class("spin"), ("failed", "timeout"));
    assert_eq!(class("bomb"), ("failed", "out_of_memory"));
    assert_eq!(class("recurse"), ("failed", "stack_overflow"));
    assert_eq!(class("fuel"), ("failed", "out_of_fuel"));
    assert_eq!(class("big"), ("failed", "output_limit"));
    // A chatty job is not killed: its log is cut at the limit and marked.
    assert_eq!(class("chatty"), ("executed", ""));
    assert_eq!(class("fine"), ("executed", ""));
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let log = p.cairn(&["logs", &id, "chatty"]);
    assert!(
        log.stdout.len() < 2 << 20,
        "log kept {} bytes",
        log.stdout.len()
    );
    assert!(
        log.stdout.contains("[cairn: log truncated: the job wrote"),
        "marker missing"
    );
    assert!(log.stdout.contains("more than the limit of 1048576]"));
    // The output limit stopped the 10 GiB writer early, and nothing of it was kept.
    assert_eq!(
        crate::store_faults::files_below(&p.path().join(".cairn/tmp")),
        Vec::<String>::new(),
        "scratch space is cleaned up"
    );
}

#[test]
fn traps_carry_the_wasm_backtrace_and_leave_no_partial_blob() {
    let p = Project::new();
    p.workflow("jobs:\n  trap:\n    uses: {TRAP_MID_WRITE}\n    outputs: [partial]\n");
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    // The cause first, then the guest's own frames (its runtime's left out).
    assert!(
        run.stderr.contains(
            "failed   trap: unreachable code reached\n           at trap_mid_write::main (wasm offset"
        ),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("frames of the language runtime not shown"),
        "{run:?}"
    );
    assert!(
        !run.stderr.contains("Stack backtrace"),
        "no host backtrace: {run:?}"
    );
    // The half-written output never became a blob.
    let partial = cairn::Digest::of(&vec![b'x'; 1 << 20]);
    let store = cairn::Store::open(p.path().join(".cairn")).unwrap();
    assert!(!store.contains(&partial));
}

#[test]
fn bad_components_are_instantiation_errors() {
    let p = Project::new();
    p.write("garbage.wasm", b"this is not wasm at all");
    // A component that imports an interface no host provides.
    let missing = wat::parse_str(
        r#"(component
            (import "cairn:nowhere/frobnicate@1.0.0" (instance (export "go" (func))))
        )"#,
    )
    .unwrap();
    p.write("missing.wasm", missing);
    p.write("core.wasm", wat::parse_str("(module)").unwrap());
    p.workflow("jobs:\n  garbage:\n    uses: garbage.wasm\n  missing:\n    uses: missing.wasm\n  core:\n    uses: core.wasm\n  fine:\n    uses: {NOOP}\n");
    let run = p.cairn(&["run", "wf.yaml", "--keep-going"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("failed   garbage: instantiation: not a WebAssembly component"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("failed   missing: instantiation: the host cannot satisfy"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("cairn:nowhere/frobnicate@1.0.0"),
        "names the import: {run:?}"
    );
    assert!(
        run.stderr.contains(
            "failed   core: instantiation: a core module without `_start` is not a command"
        ),
        "{run:?}"
    );
    assert_eq!(run.status_of("fine"), Some("done"));
}

#[test]
fn exit_codes_symlinks_and_sockets() {
    let p = Project::new();
    p.workflow("jobs:\n  exit3:\n    uses: {EXIT3}\n  links:\n    uses: {SYMLINK_OUT}\n    outputs: [up]\n  sockets:\n    uses: {CONNECT}\n    stdout: report\n");
    let run = p.cairn(&["run", "wf.yaml", "--keep-going"]);
    assert_eq!(run.code, 1, "{run:?}");
    // WASI 0.2.0's `exit`, which Rust's std calls, carries only success or
    // failure (tests/all/causes.rs has the guests whose code arrives).
    assert!(
        run.stderr
            .contains("failed   exit3: exit status failure, without a code"),
        "{run:?}"
    );
    // A link planted in /out is never followed when collecting outputs.
    assert!(
        run.stderr
            .contains("failed   links: bad output: output /out/up is not a regular file"),
        "{run:?}"
    );
    let report = crate::execution::output_bytes(&p, &run, "sockets.report");
    assert_eq!(report.lines().count(), 4, "{report}");
    assert!(report.lines().all(|l| l.ends_with(": denied")), "{report}");
}

#[test]
fn failures_are_retried_with_backoff_unless_they_would_recur() {
    let p = Project::new();
    p.workflow(
        "jobs:
  flaky:
    uses: {EXIT3}
    retry: { attempts: 3, backoff: 10ms }
  bomb:
    uses: {MEMORY_BOMB}
    limits: { memory: 32MiB }
    retry: { attempts: 3, backoff: 10ms }
  bomb-always:
    uses: {MEMORY_BOMB}
    limits: { memory: 32MiB }
    retry: { attempts: 2, backoff: 10ms, always: true }
",
    );
    let run = p.cairn(&["run", "wf.yaml", "--keep-going"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("retrying flaky in 10ms: attempt 1 failed: exit status failure"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("retrying flaky in 20ms: attempt 2 failed: exit status failure"),
        "{run:?}"
    );
    let jobs = jobs(&p);
    assert_eq!(jobs["flaky"].3, 3, "three attempts recorded");
    assert_eq!(
        jobs["bomb"].3, 1,
        "out of memory with the same limit is not retried"
    );
    assert_eq!(jobs["bomb-always"].3, 2, "unless the job asks");
    assert!(
        run.stderr
            .contains("not retried: it would fail the same way with the same limits and inputs"),
        "{run:?}"
    );
}

#[test]
fn hermetic_jobs_see_the_same_time_and_randomness_every_run() {
    let p = Project::new();
    p.workflow(
        "jobs:
  a:
    uses: {CLOCK_RANDOM}
    stdout: out
  b:
    uses: {CLOCK_RANDOM}
    args: [other]
    stdout: out
  host:
    uses: {CLOCK_RANDOM}
    hermetic: false
    stdout: out
  host-cached:
    uses: {CLOCK_RANDOM}
    args: [cached]
    hermetic: false
    cache: true
    stdout: out
",
    );
    let first = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(first.code, 0, "{first:?}");
    let second = p.cairn(&["run", "wf.yaml", "--no-cache"]);
    assert_eq!(second.code, 0, "{second:?}");
    let out = |run: &Run, job: &str| crate::execution::output_bytes(&p, run, &format!("{job}.out"));
    assert_eq!(
        out(&first, "a"),
        out(&second, "a"),
        "identical bytes on two executions"
    );
    assert_eq!(out(&first, "b"), out(&second, "b"));
    assert!(
        out(&first, "a").starts_with("wall 1577836800.000000\n"),
        "{}",
        out(&first, "a")
    );
    // Different jobs draw different randomness (it is seeded by the job's key).
    let random = |s: String| s.lines().nth(2).unwrap().to_string();
    assert_ne!(random(out(&first, "a")), random(out(&first, "b")));
    // The host's clock and randomness differ between executions…
    assert_ne!(out(&first, "host"), out(&second, "host"));
    // …so such a job is not cached unless it asks.
    let third = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(third.status_of("a"), Some("cached"), "{third:?}");
    assert_eq!(third.status_of("host"), Some("done"), "{third:?}");
    assert_eq!(third.status_of("host-cached"), Some("cached"), "{third:?}");
}
