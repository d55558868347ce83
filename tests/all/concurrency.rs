//! Many processes on one store at once: 4 processes × 100 runs of two
//! workflows (the same keys again and again, some re-executed with
//! `--no-cache`, so processes race to write the same blobs and cache
//! entries) lose no record, corrupt no blob, and every run's results read
//! back; and writers racing on one blob or one cache entry all succeed.

use crate::crash::assert_store_clean;
use crate::util::{Project, run_cairn};
use cairn::{Digest, Store};
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

const PROCESSES: usize = 4;
const RUNS: usize = 100;

/// Workflow A: a line, upper-cased, copied. Workflow B: a fan-out of
/// parts and their concatenation, and the same line job as A (same key).
const A: &str = "name: alpha
params:
  n: '0'
jobs:
  line:
    uses: {ECHO_ARGS}
    args: ['line ${{ params.n }}']
    stdout: text
  up:
    uses: {UPPER}
    inputs:
      text: ${{ jobs.line.outputs.text }}
    outputs: [text]
  copy:
    uses: {COPY}
    args: [t, out]
    inputs:
      t: ${{ jobs.up.outputs.text }}
    outputs: [out]
";
const B: &str = "name: beta
params:
  n: '0'
jobs:
  line:
    uses: {ECHO_ARGS}
    args: ['line ${{ params.n }}']
    stdout: text
  parts:
    uses: {FANOUT}
    args: ['${{ params.n }}']
    outputs: [parts]
  all:
    uses: {CONCAT}
    args: [p, out]
    inputs:
      p: ${{ jobs.parts.outputs.parts }}
    outputs: [out]
";

/// The bytes each output of workflow `wf` has for parameter `n`.
fn expected(wf: &str, n: usize) -> BTreeMap<String, String> {
    let line = format!("line {n}\n");
    let mut out = BTreeMap::new();
    out.insert("line.text".to_string(), line.clone());
    if wf == "alpha" {
        out.insert("up.text".into(), line.to_uppercase());
        out.insert("copy.out".into(), line.to_uppercase());
    } else {
        out.insert(
            "all.out".into(),
            (0..n).map(|i| format!("part {i}\n")).collect(),
        );
    }
    out
}

#[test]
fn four_processes_a_hundred_runs_each_on_one_store() {
    let store = tempfile::tempdir().unwrap();
    let store_dir = store.path().to_str().unwrap().to_string();
    let (a, b) = (Project::new(), Project::new());
    a.workflow(A);
    b.workflow(B);
    let dirs = [a.path().to_path_buf(), b.path().to_path_buf()];
    let drivers: Vec<_> = (0..PROCESSES)
        .map(|t| {
            let (dir, store_dir) = (dirs[t % 2].clone(), store_dir.clone());
            std::thread::spawn(move || {
                for i in 0..RUNS {
                    // Five parameter values: most runs share their keys with
                    // others, in this process and the others.
                    let n = format!("n={}", (i + t) % 5 + 1);
                    let mut args = vec!["run", "wf.yaml", "-q", "--param", &n];
                    if i % 3 == t % 3 {
                        args.push("--no-cache");
                    }
                    let run = run_cairn(&dir, &args, &[("CAIRN_STORE", &store_dir)]);
                    assert_eq!(run.code, 0, "process {t}, run {i}: {run:?}");
                }
            })
        })
        .collect();
    for d in drivers {
        d.join().unwrap();
    }

    let env = [("CAIRN_STORE", store_dir.as_str())];
    let runs = run_cairn(a.path(), &["runs", "--json", "--limit", "10000"], &env);
    let runs = runs.json();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), PROCESSES * RUNS, "no run record is lost");
    let cas = Store::open(store.path()).unwrap();
    for r in runs {
        let id = r["id"].as_str().unwrap();
        assert_eq!(r["status"], "succeeded", "{r}");
        let n: usize = r["params"]["n"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .parse()
            .unwrap();
        let wf = r["workflow"].as_str().unwrap();
        let results = run_cairn(a.path(), &["results", id, "--json", "--all"], &env);
        assert_eq!(results.code, 0, "{results:?}");
        let got: BTreeMap<String, String> = results.json()["outputs"]
            .as_array()
            .unwrap()
            .iter()
            // (A list output's parts are checked through their concatenation.)
            .filter_map(|o| Some((o, o["value"]["blob"]["digest"].as_str()?)))
            .map(|(o, digest)| {
                let digest: Digest = digest.parse().unwrap();
                let bytes = cas.read(&digest).unwrap_or_else(|e| panic!("{id}: {e}"));
                (
                    format!(
                        "{}.{}",
                        o["job"].as_str().unwrap(),
                        o["name"].as_str().unwrap()
                    ),
                    String::from_utf8(bytes).unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected(wf, n), "run {id} of {wf}");
    }
    assert_store_clean(store.path(), "after 400 concurrent runs");
}

#[test]
fn writers_racing_on_one_blob_and_one_cache_entry_all_succeed() {
    use cairn::{ActionKey, LocalCache, Manifest, Value};
    let dir = tempfile::tempdir().unwrap();
    const WRITERS: usize = 4;
    const ROUNDS: usize = 200;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (root, barrier) = (dir.path().to_path_buf(), barrier.clone());
            std::thread::spawn(move || {
                // A store of its own, as another process has: nothing is
                // known in memory, everything is asked of the disk.
                let store = Arc::new(Store::open(&root).unwrap());
                let cache = LocalCache::new(store.clone());
                for round in 0..ROUNDS {
                    let bytes = format!("round {round}").repeat(round + 1);
                    barrier.wait();
                    let blob = store.put_bytes(bytes.as_bytes()).unwrap();
                    // The same bytes through the path a job's output takes.
                    let mut owned = store.temp_file().unwrap();
                    std::io::Write::write_all(&mut owned, bytes.as_bytes()).unwrap();
                    let (_, path) = owned.keep().unwrap();
                    assert_eq!(store.put_owned_file(&path).unwrap(), blob);
                    let manifest = Manifest {
                        // (cairn's CACHE_FORMAT, which the store checks on read)
                        format: 1,
                        outputs: [(
                            "o".to_string(),
                            Value::Blob {
                                digest: blob.digest,
                                size: blob.size,
                            },
                        )]
                        .into(),
                        stdout: blob.digest,
                        stderr: blob.digest,
                        // Writers disagree on what does not count: the
                        // entry is replaced, not only kept.
                        exec_ms: w as u64,
                        peak_memory: 0,
                        fuel: None,
                        reported: Default::default(),
                    };
                    let key = ActionKey([round as u8; 32]);
                    barrier.wait();
                    cache.put(&key, &manifest).unwrap();
                    let got = cache.get(&key).unwrap_or_else(|| {
                        panic!("round {round}: writer {w} finds no entry after its put")
                    });
                    assert_eq!(got.outputs, manifest.outputs);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    for round in 0..ROUNDS {
        let bytes = format!("round {round}").repeat(round + 1);
        assert_eq!(
            store.read(&Digest::of(bytes.as_bytes())).unwrap(),
            bytes.as_bytes()
        );
    }
    let clean = run_cairn(
        dir.path(),
        &["store", "verify", "--store", dir.path().to_str().unwrap()],
        &[],
    );
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(
        clean.stdout.contains(&format!(
            "{ROUNDS} blobs re-hashed, {ROUNDS} cache entries checked, 0 problems"
        )),
        "{clean:?}"
    );
}
