//! `kill -9` at random moments: a workflow of a few hundred jobs with real
//! outputs is killed 50 times, each time at another moment of its run (real
//! processes, a real store). After every kill the store verifies clean, the
//! records read back with the killed run interrupted, and a rerun finishes,
//! executing only what had not finished, with the bytes a clean run gives.

use crate::util::{Project, run_cairn};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills per test run.
const KILLS: usize = 50;
/// Jobs per matrix: the workflow has `3 * WIDTH + 1` jobs.
const WIDTH: usize = 80;

/// A small deterministic generator (xorshift64*), so a failure names its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `salt` makes every job's key and bytes differ between iterations: each
/// kill interrupts fresh work, not a fully cached rerun.
fn workflow(p: &Project) {
    let matrix: Vec<String> = (0..WIDTH).map(|i| i.to_string()).collect();
    p.workflow(&format!(
        "name: crash
params:
  salt: '0'
jobs:
  line:
    uses: {{ECHO_ARGS}}
    strategy:
      matrix:
        i: [{m}]
    args: ['line ${{{{ matrix.i }}}} of run ${{{{ params.salt }}}}', '${{{{ params.salt }}}}']
    stdout: text
  up:
    uses: {{UPPER}}
    strategy:
      matrix:
        i: [{m}]
    inputs:
      text: ${{{{ jobs.line.outputs.text[matrix.i] }}}}
    outputs: [text]
  copy:
    uses: {{COPY}}
    strategy:
      matrix:
        i: [{m}]
    args: [text, copied]
    inputs:
      text: ${{{{ jobs.up.outputs.text[matrix.i] }}}}
    outputs: [copied]
  all:
    uses: {{CONCAT}}
    args: [parts, all]
    inputs:
      parts: ${{{{ jobs.copy.outputs.copied }}}}
    outputs: [all]
",
        m = matrix.join(", ")
    ));
}

/// What a clean run of iteration `salt` puts in `all`.
fn expected_all(salt: usize) -> String {
    (0..WIDTH)
        .map(|i| format!("LINE {i} OF RUN {salt}\n{salt}\n"))
        .collect()
}

fn cairn(dir: &Path, args: &[&str]) -> crate::util::Run {
    run_cairn(dir, args, &[])
}

/// The newest run's id, if any run is recorded.
fn newest(dir: &Path) -> Option<String> {
    let runs = cairn(dir, &["runs", "--json", "--limit", "1"]);
    assert_eq!(runs.code, 0, "the records read back: {runs:?}");
    runs.json()[0]["id"].as_str().map(String::from)
}

/// A run's status and its jobs' (name → status), read by another process.
fn recorded(dir: &Path, id: &str) -> (String, BTreeMap<String, String>) {
    let status = cairn(dir, &["status", id, "--json"]);
    let v: Json = serde_json::from_str(&status.stdout)
        .unwrap_or_else(|e| panic!("status of {id} is not JSON ({e}): {status:?}"));
    let jobs = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap().to_string(),
                j["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (v["run"]["status"].as_str().unwrap().to_string(), jobs)
}

/// `cairn run wf.yaml -q --param PARAM`, started.
fn spawn(dir: &Path, param: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["run", "wf.yaml", "-q", "--param", param])
        .current_dir(dir)
        .env_remove("CAIRN_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `cairn store verify` of the store at `store` exits 0 and reports no problem.
pub fn assert_store_clean(store: &Path, when: &str) {
    let v = cairn(
        store,
        &["store", "verify", "--store", store.to_str().unwrap()],
    );
    assert_eq!(v.code, 0, "store verify {when}: {v:?}");
    assert!(v.stdout.contains(", 0 problems"), "{when}: {v:?}");
}

#[test]
fn kill_9_at_fifty_moments_loses_nothing_and_reruns_only_what_had_not_finished() {
    let p = Project::new();
    workflow(&p);
    let dir = p.path();
    let jobs = 3 * WIDTH + 1;

    let seed = 0x5eed_c0de_u64;
    let mut rng = Rng(seed);

    // Killed while it compiles the components, a run leaves no compiled
    // component under its final name half-written; what it was writing is
    // swept by the next process once it is a minute old (aged here).
    let mut partial = 0;
    for _ in 0..3 {
        let mut child = spawn(dir, "salt=cold");
        std::thread::sleep(Duration::from_micros(rng.below(1_500_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        for e in std::fs::read_dir(dir.join(".cairn/compiled"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(e.path()).unwrap().flatten() {
                if !f.file_name().to_string_lossy().ends_with(".cwasm") {
                    partial += 1;
                    let old = std::time::SystemTime::now() - Duration::from_secs(120);
                    std::fs::File::options()
                        .write(true)
                        .open(f.path())
                        .unwrap()
                        .set_modified(old)
                        .unwrap();
                }
            }
        }
        assert_store_clean(&dir.join(".cairn"), "after a kill while compiling");
    }

    // A clean run compiles the components; a second one, timed, gives the
    // span the kills are spread over.
    let clean = cairn(dir, &["run", "wf.yaml", "-q", "--param", "salt=cold"]);
    assert_eq!(clean.code, 0, "{clean:?}");
    for e in std::fs::read_dir(dir.join(".cairn/compiled"))
        .unwrap()
        .flatten()
    {
        for f in std::fs::read_dir(e.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            assert!(name.ends_with(".cwasm"), "{name} left in compiled/");
        }
    }
    let started = Instant::now();
    let clean = cairn(dir, &["run", "wf.yaml", "-q", "--param", "salt=warm"]);
    let span = started.elapsed();
    assert_eq!(clean.code, 0, "{clean:?}");

    let mut before_recorded = 0;
    let mut redone_total = 0;
    for salt in 0..KILLS {
        let salt_arg = format!("salt={salt}");
        let before = newest(dir);
        let mut child = spawn(dir, &salt_arg);
        // Anywhere from before the run is recorded to near its end.
        let at = Duration::from_micros(rng.below(span.as_micros() as u64));
        std::thread::sleep(at);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let when = format!("kill {salt} at {at:?} (seed {seed:#x})");

        // The store holds no blob whose bytes differ from its name and no
        // cache entry naming a missing blob.
        assert_store_clean(&dir.join(".cairn"), &when);
        // The records read back; the killed run, if it got recorded, is
        // interrupted (or finished, if the kill came after its end).
        let killed = newest(dir).filter(|id| Some(id) != before.as_ref());
        let finished: BTreeSet<String> = match killed {
            None => {
                before_recorded += 1;
                BTreeSet::new()
            }
            Some(id) => {
                let (run_status, jobs) = recorded(dir, &id);
                // Killed after its end was recorded (before the process
                // exited), a run is rightly `succeeded`.
                let ended = status.code().is_some() || run_status == "succeeded";
                assert!(
                    run_status == "interrupted" || ended,
                    "{when}: the killed run is {run_status} ({status})"
                );
                assert!(
                    jobs.values().all(|s| s != "running" && s != "pending"),
                    "{when}: {jobs:?}"
                );
                jobs.iter()
                    .filter(|(_, s)| *s == "executed" || *s == "cached")
                    .map(|(n, _)| n.clone())
                    .collect()
            }
        };

        // A rerun finishes and executes only what had not finished.
        let rerun = cairn(dir, &["run", "wf.yaml", "--param", &salt_arg]);
        assert_eq!(rerun.code, 0, "{when}: {rerun:?}");
        let id = newest(dir).unwrap();
        let (run_status, rerun_jobs) = recorded(dir, &id);
        assert_eq!(run_status, "succeeded", "{when}");
        assert_eq!(rerun_jobs.len(), jobs, "{when}");
        let executed: BTreeSet<&String> = rerun_jobs
            .iter()
            .filter(|(_, s)| *s == "executed")
            .map(|(n, _)| n)
            .collect();
        let again: Vec<_> = executed.iter().filter(|n| finished.contains(**n)).collect();
        assert!(
            again.is_empty(),
            "{when}: finished, yet executed again: {again:?}"
        );
        redone_total += executed.len();
        let all = crate::execution::output_bytes(&p, &rerun, "all.all");
        assert_eq!(all, expected_all(salt), "{when}");
    }
    assert_store_clean(&dir.join(".cairn"), "at the end");
    // What the killed runs were writing is gone too: each process's scratch
    // is removed by the next one that finds its owner dead.
    assert_eq!(
        crate::store_faults::files_below(&dir.join(".cairn/tmp")),
        Vec::<String>::new()
    );
    eprintln!(
        "{KILLS} kills over {span:?} runs of {jobs} jobs: {before_recorded} before the run was recorded; \
         the reruns executed {redone_total} jobs in all; 3 kills while compiling left {partial} partial files, swept"
    );
}
