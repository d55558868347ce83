//! `cairn verify`, `cairn store verify`, `cairn store gc`, and a store that
//! survives `kill -9` at any moment.

use crate::util::Project;
use std::process::{Command, Stdio};
use std::time::Duration;

fn latest(p: &Project) -> String {
    p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

const PIPELINE: &str = "inputs:\n  text: text.txt\njobs:\n  upper:\n    uses: {UPPER}\n    inputs: { text: '${{ inputs.text }}' }\n    outputs: [text]\n  parts:\n    uses: {FANOUT}\n    args: ['3']\n    outputs: [parts]\n  each:\n    uses: {COPY}\n    strategy: { matrix: { i: [0, 1, 2] } }\n    args: [p, c]\n    inputs: { p: '${{ jobs.parts.outputs.parts[matrix.i] }}' }\n    outputs: [c]\n  all:\n    uses: {CONCAT}\n    args: [l, joined]\n    inputs: { l: '${{ jobs.each.outputs.c }}' }\n    outputs: [joined]\n  nap:\n    uses: {SLEEP_MS}\n    strategy: { matrix: { ms: [40, 80, 120, 160] } }\n    args: ['${{ matrix.ms }}']\n";

#[test]
fn verify_reexecutes_a_run_and_reports_differences() {
    let p = Project::new();
    p.write("text.txt", "abc");
    p.workflow(&format!(
        "{PIPELINE}  clock:\n    uses: {{CLOCK_RANDOM}}\n    hermetic: false\n    cache: true\n    stdout: out\n"
    ));
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    let id = latest(&p);
    // The host file changing later does not matter: the run's inputs are in the store.
    p.write("text.txt", "changed");
    let v = p.cairn(&["verify", &id]);
    assert_eq!(v.code, 1, "{v:?}");
    for job in ["upper", "parts", "each[i=0]", "all", "nap[ms=40]"] {
        assert!(
            v.stdout.contains(&format!("same     {job}\n")),
            "{job}: {v:?}"
        );
    }
    assert!(
        v.stdout.contains("DIFFERS  clock output `out`: recorded "),
        "{v:?}"
    );
    assert!(v.stdout.contains("11 jobs, 10 reproduced, 1 not"), "{v:?}");
}

#[test]
fn store_verify_finds_a_corrupt_blob() {
    let p = Project::new();
    p.write("text.txt", "abc");
    p.workflow(PIPELINE);
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    let ok = p.cairn(&["store", "verify"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains(" 0 problems"), "{ok:?}");
    let run = p.cairn(&["results", &latest(&p), "--json"]);
    let digest = run.json()["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["job"] == "all")
        .unwrap()["value"]["blob"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = p
        .path()
        .join(format!(".cairn/blobs/{}/{}", &digest[..2], &digest[2..]));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&path, "tampered").unwrap();
    let bad = p.cairn(&["store", "verify"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(
        bad.stdout.contains(&format!("corrupt blob {digest}")),
        "{bad:?}"
    );
}

#[test]
fn gc_keeps_what_kept_runs_need_and_removes_the_rest() {
    let p = Project::new();
    p.write("text.txt", "first");
    p.workflow(PIPELINE);
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    let old = latest(&p);
    p.write("text.txt", "second");
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    let new = latest(&p);
    let usage = p.cairn(&["store", "gc"]);
    assert_eq!(usage.code, 2, "gc needs to be told what to keep: {usage:?}");
    let gc = p.cairn(&["store", "gc", "--keep-last", "1"]);
    assert_eq!(gc.code, 0, "{gc:?}");
    assert!(gc.stdout.contains("kept 1 runs; removed 1 runs"), "{gc:?}");
    assert!(
        !gc.stdout.contains(" 0 blobs"),
        "the old input and upper's old output go: {gc:?}"
    );
    assert_eq!(
        p.cairn(&["status", &old]).code,
        2,
        "the old run's records are gone"
    );
    assert_eq!(p.cairn(&["store", "verify"]).code, 0);
    // The kept run is intact: verifiable, and a rerun is fully cached.
    assert_eq!(p.cairn(&["verify", &new]).code, 0);
    let again = p.cairn(&["run", "wf.yaml"]);
    assert!(again.stderr.contains("0 executed, 10 cached"), "{again:?}");
}

#[test]
fn the_store_survives_kill_9_at_random_moments() {
    let p = Project::new();
    // Compile the components once, so the kills below land in running jobs
    // rather than always in the first compilation.
    p.write("text.txt", "warm-up");
    p.workflow(PIPELINE);
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    p.write("text.txt", "abc");
    // A fixed sequence of "random" moments, spread over a run's lifetime.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let after = Duration::from_millis(x % 400);
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["run", "wf.yaml", "--no-cache"])
            .current_dir(p.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        let _ = child.kill();
        child.wait().unwrap();
        let check = p.cairn(&["store", "verify"]);
        assert_eq!(check.code, 0, "after kill {i} at {after:?}: {check:?}");
    }
    let runs = p.cairn(&["runs", "--json", "--limit", "100"]).json();
    let statuses: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert!(!statuses.contains(&"running"), "{statuses:?}");
    assert!(
        statuses.contains(&"interrupted"),
        "some kills hit a run mid-way: {statuses:?}"
    );
    // The rerun completes, and `upper` on the new input was finished by one
    // of the killed runs (the warm-up saw other bytes).
    let rerun = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert_eq!(rerun.status_of("upper"), Some("cached"), "{rerun:?}");
}
