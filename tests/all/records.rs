//! Run records across processes: detached runs, waiting for results from
//! another process, concurrent runs on one store, `kill -9`, and `why`.

use crate::util::{Project, run_cairn};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `cairn status --json` until `done` holds (or panics after a while).
fn wait_for(
    dir: &Path,
    id: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let s = run_cairn(dir, &["status", id, "--json"], &[]);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&s.stdout)
            && done(&v)
        {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn job_status<'a>(status: &'a serde_json::Value, job: &str) -> &'a str {
    status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == job)
        .and_then(|j| j["status"].as_str())
        .unwrap()
}

#[test]
fn a_detached_run_is_followed_from_another_process() {
    let p = Project::new();
    p.workflow("jobs:\n  nap:\n    uses: {SLEEP_MS}\n    args: ['700']\n    stdout: said\n");
    let detached = p.cairn(&["run", "wf.yaml", "--detach"]);
    assert_eq!(detached.code, 0, "{detached:?}");
    let id = detached.stdout.trim().to_string();
    assert_eq!(id.len(), 11, "{detached:?}");

    // Right away the run exists and is not finished; results without --wait says so.
    let early = p.cairn(&["results", &id[..8]]);
    assert_eq!(early.code, 4, "{early:?}");
    assert!(
        early.stderr.contains("is still running; wait for it with"),
        "{early:?}"
    );

    // Another process blocks until the run ends.
    let waited = p.cairn(&["results", &id[..8], "--wait", "--json"]);
    assert_eq!(waited.code, 0, "{waited:?}");
    let v = waited.json();
    assert_eq!(v["run"]["status"], "succeeded");
    let out = &v["outputs"][0];
    assert_eq!(
        (out["job"].as_str(), out["name"].as_str()),
        (Some("nap"), Some("said"))
    );
    let digest = out["value"]["blob"]["digest"].as_str().unwrap();
    assert_eq!(p.cairn(&["cat", digest]).stdout, "slept 700\n");
    // And `get` copies it out.
    let got = p.cairn(&["get", &id, "nap", "said", "-o", "said.txt"]);
    assert_eq!(got.code, 0, "{got:?}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("said.txt")).unwrap(),
        "slept 700\n"
    );
    let logs = p.cairn(&["logs", &id, "nap"]);
    assert!(
        logs.stdout.contains("== nap (executed)\nslept 700"),
        "{logs:?}"
    );
}

#[test]
fn results_wait_gives_up_after_its_timeout() {
    let p = Project::new();
    p.workflow("jobs:\n  nap:\n    uses: {SLEEP_MS}\n    args: ['3000']\n");
    let id = p
        .cairn(&["run", "wf.yaml", "--detach"])
        .stdout
        .trim()
        .to_string();
    let r = p.cairn(&["results", &id, "--wait", "--timeout", "200ms"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("still running after waiting"), "{r:?}");
    assert_eq!(p.cairn(&["results", &id, "--wait"]).code, 0);
}

#[test]
fn two_workflows_run_at_once_on_one_store() {
    let store = tempfile::tempdir().unwrap();
    let env = [("CAIRN_STORE", store.path().to_str().unwrap())];
    let a = Project::new();
    let b = Project::new();
    a.workflow("name: alpha\njobs:\n  x:\n    uses: {SLEEP_MS}\n    strategy: { matrix: { ms: [300, 310, 320, 330] } }\n    args: ['${{ matrix.ms }}']\n");
    b.workflow("name: beta\njobs:\n  y:\n    uses: {SLEEP_MS}\n    strategy: { matrix: { ms: [301, 311, 321, 331] } }\n    args: ['${{ matrix.ms }}']\n");
    let spawn = |p: &Project| {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["run", "wf.yaml"])
            .current_dir(p.path())
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (ca, cb) = (spawn(&a), spawn(&b));
    let (oa, ob) = (
        ca.wait_with_output().unwrap(),
        cb.wait_with_output().unwrap(),
    );
    assert!(
        oa.status.success(),
        "{}",
        String::from_utf8_lossy(&oa.stderr)
    );
    assert!(
        ob.status.success(),
        "{}",
        String::from_utf8_lossy(&ob.stderr)
    );
    let runs = run_cairn(a.path(), &["runs", "--json"], &env).json();
    let names: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["workflow"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{runs}");
    assert!(names.contains(&"alpha") && names.contains(&"beta"));
    for r in runs.as_array().unwrap() {
        assert_eq!(r["status"], "succeeded");
        let id = r["id"].as_str().unwrap();
        let status = run_cairn(a.path(), &["status", id, "--json"], &env).json();
        assert!(
            status["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|j| j["status"] == "executed"),
            "{status}"
        );
    }
    let only_beta = run_cairn(a.path(), &["runs", "--workflow", "beta", "--json"], &env).json();
    assert_eq!(only_beta.as_array().unwrap().len(), 1);
}

#[test]
fn a_killed_run_shows_as_interrupted_and_a_rerun_reuses_finished_jobs() {
    let p = Project::new();
    p.workflow("params:\n  ms: 30000\njobs:\n  quick:\n    uses: {ECHO_ARGS}\n    args: [done]\n    stdout: out\n  slow:\n    uses: {SLEEP_MS}\n    needs: quick\n    args: ['${{ params.ms }}']\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["run", "wf.yaml"])
        .current_dir(p.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Find the run and wait until `quick` is done and `slow` is running.
    let started = Instant::now();
    let id = loop {
        let runs = p.cairn(&["runs", "--json"]);
        if let Some(id) = serde_json::from_str::<serde_json::Value>(&runs.stdout)
            .ok()
            .and_then(|v| v[0]["id"].as_str().map(String::from))
        {
            break id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no run recorded: {runs:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    wait_for(p.path(), &id, "slow to start", |s| {
        job_status(s, "slow") == "running"
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let status = p.cairn(&["status", &id, "--json"]);
    assert_eq!(status.code, 1, "{status:?}");
    let v = status.json();
    assert_eq!(v["run"]["status"], "interrupted", "{v}");
    assert_eq!(job_status(&v, "quick"), "executed");
    assert_eq!(job_status(&v, "slow"), "interrupted");
    // The state word never runs into the job's name: names line up.
    let human = p.cairn(&["status", &id]);
    let column = |job: &str| {
        human
            .stdout
            .lines()
            .find_map(|l| l.find(&format!(" {job} ")))
            .unwrap_or_else(|| panic!("{job}: {human:?}"))
    };
    assert_eq!(column("quick"), column("slow"), "{human:?}");
    assert!(human.stdout.contains("interrupted  slow"), "{human:?}");
    let listed = p.cairn(&["runs", "--status", "interrupted", "--json"]);
    assert_eq!(listed.json().as_array().unwrap().len(), 1, "{listed:?}");

    let rerun = p.cairn(&["run", "wf.yaml", "--param", "ms=10"]);
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert_eq!(rerun.status_of("quick"), Some("cached"), "{rerun:?}");
    assert_eq!(rerun.status_of("slow"), Some("done"), "{rerun:?}");
}

#[test]
fn why_names_the_input_that_changed() {
    let p = Project::new();
    p.write("a.txt", "one");
    p.write("b.txt", "two");
    p.workflow("inputs:\n  a: a.txt\n  b: b.txt\njobs:\n  cat:\n    uses: {CONCAT}\n    args: [both, out]\n    inputs:\n      both: ${{ jobs.pair.outputs.parts }}\n    outputs: [out]\n  pair:\n    uses: {FANOUT}\n    args: ['2']\n    outputs: [parts]\n  copy:\n    uses: {COPY}\n    args: [a, out]\n    inputs:\n      a: ${{ inputs.a }}\n      b: ${{ inputs.b }}\n    outputs: [out]\n");
    let first = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(first.code, 0, "{first:?}");
    let first_id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let why_first = p.cairn(&["why", &first_id, "copy"]);
    assert!(
        why_first
            .stdout
            .contains("no earlier run of workflow `wf` has a job `copy`"),
        "{why_first:?}"
    );

    p.write("b.txt", "TWO");
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let why = p.cairn(&["why", &id, "copy"]);
    assert_eq!(why.code, 0, "{why:?}");
    assert!(
        why.stdout
            .contains(&format!("copy executed: compared with run {first_id}")),
        "{why:?}"
    );
    assert!(why.stdout.contains("- input `b` changed:"), "{why:?}");
    assert!(!why.stdout.contains("input `a`"), "{why:?}");
    assert!(
        p.cairn(&["why", &id, "pair"])
            .stdout
            .contains("came from the cache")
    );
    let unknown = p.cairn(&["why", &id, "cpy"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("did you mean `copy`?"),
        "{unknown:?}"
    );
}

#[test]
fn unknown_and_ambiguous_run_ids_are_usage_errors() {
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {NOOP}\n");
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    let nope = p.cairn(&["status", "zzzz"]);
    assert_eq!(nope.code, 2);
    assert!(nope.stderr.contains("no run `zzzz`"), "{nope:?}");
    // Both runs start with the same time-ordered prefix.
    let ids = p.cairn(&["runs", "--json"]).json();
    let (a, b) = (
        ids[0]["id"].as_str().unwrap(),
        ids[1]["id"].as_str().unwrap(),
    );
    let common: String = a
        .chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect();
    let amb = p.cairn(&["status", &common]);
    assert_eq!(amb.code, 2, "{amb:?}");
    assert!(amb.stderr.contains("matches 2 runs"), "{amb:?}");
    assert_eq!(p.cairn(&["metrics", a]).stdout, "no metrics recorded\n");
}
