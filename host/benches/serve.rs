//! How `cairn serve` holds up on a big store: real runs of real components
//! (the test guests' `noop`) fill one store with 100 runs of 10,000 jobs,
//! then the real `cairn serve` answers every page and API route while
//! this measures, over loopback, and Chromium loads the heaviest pages.
//!
//!     cargo bench -p cairn --bench serve                 # 100 runs × 10,000 jobs
//!     cargo bench -p cairn --bench serve -- --runs 10 --jobs 1000
//!     cargo bench -p cairn --bench serve -- --fresh      # rebuild the store
//!
//! The store is kept in `target/serve-bench/` (making it takes minutes), and
//! reused when it already holds the runs asked for. Half the runs are of a
//! fan-out workflow (one matrix job of `jobs - 2` instances between a source
//! and a sink: one box of cells in the DAG), half of a lattice of distinct
//! jobs (100 per layer, each needing up to three of the layer before: many
//! boxes and edges). Each workflow runs twice per salt, so half the runs
//! execute every job and half are answered from the cache. Chromium comes
//! from `tests/web/install`; without it the browser figures are skipped and
//! say so.

use cairn_tests::browser::{Browser, get};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SAMPLES: usize = 7;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let runs = opt("--runs", 100);
    let jobs = opt("--jobs", 10_000).max(10);
    let fresh = args.iter().any(|a| a == "--fresh");
    let work = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join(format!("target/serve-bench/{runs}x{jobs}"));
    let store = work.join("store");
    if fresh {
        let _ = std::fs::remove_dir_all(&work);
    }
    std::fs::create_dir_all(&work).unwrap();
    let marker = work.join("complete");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&store);
        fill(&work, &store, runs, jobs);
        std::fs::write(&marker, "").unwrap();
    } else {
        println!("reusing the store in {}", store.display());
    }
    let db = std::fs::metadata(store.join("runs.db")).map_or(0, |m| m.len())
        + std::fs::metadata(store.join("runs.db-wal")).map_or(0, |m| m.len());
    println!(
        "store: {runs} runs × {jobs} jobs, runs.db {:.0} MiB",
        db as f64 / (1 << 20) as f64
    );
    measure(&store, jobs);
}

/// Fills the store with real runs of two workflows.
fn fill(work: &Path, store: &Path, runs: usize, jobs: usize) {
    let fan = work.join("fan.yaml");
    let values: Vec<String> = (0..jobs - 2).map(|i| i.to_string()).collect();
    std::fs::write(
        &fan,
        format!(
            "name: fan\nparams:\n  salt: 0\njobs:\n  source:\n    uses: {noop}\n    args: [\"${{{{ params.salt }}}}\"]\n  work:\n    uses: {noop}\n    needs: [source]\n    strategy:\n      matrix:\n        i: [{}]\n    args: [\"${{{{ matrix.i }}}}\", \"${{{{ params.salt }}}}\"]\n  sink:\n    uses: {noop}\n    needs: [work]\n    args: [\"${{{{ params.salt }}}}\"]\n",
            values.join(", "),
            noop = cairn_tests::NOOP
        ),
    )
    .unwrap();
    let lattice = work.join("lattice.yaml");
    let width = 100.min(jobs);
    let mut y = String::from("name: lattice\nparams:\n  salt: 0\njobs:\n");
    for j in 0..jobs {
        let (layer, col) = (j / width, j % width);
        y.push_str(&format!(
            "  n{layer}_{col}:\n    uses: {}\n    args: [\"{j}\", \"${{{{ params.salt }}}}\"]\n",
            cairn_tests::NOOP
        ));
        if layer > 0 {
            let needs: Vec<String> = [col.saturating_sub(1), col, (col + 1).min(width - 1)]
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|c| format!("n{}_{c}", layer - 1))
                .collect();
            y.push_str(&format!("    needs: [{}]\n", needs.join(", ")));
        }
    }
    std::fs::write(&lattice, y).unwrap();
    let started = Instant::now();
    for k in 0..runs {
        let wf = if k % 2 == 0 { &fan } else { &lattice };
        let salt = (k / 4).to_string();
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args([
                "run",
                wf.to_str().unwrap(),
                "-q",
                "--store",
                store.to_str().unwrap(),
            ])
            .args(["--param", &format!("salt={salt}")])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "run {k}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "run {:>3}/{runs}: {} salt {salt}: {:.2} s",
            k + 1,
            wf.file_stem().unwrap().to_string_lossy(),
            t.elapsed().as_secs_f64()
        );
    }
    println!(
        "filled the store in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

struct Serving {
    child: std::process::Child,
    url: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(store: &Path) -> Serving {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["serve", "--store", store.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    Serving {
        child,
        url: url.trim().trim_end_matches('/').to_string(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times `SAMPLES` GETs of `path` (after the first, reported apart: it
/// fills caches) and prints the median and the worst.
fn row(s: &Serving, what: &str, path: &str) {
    let url = format!("{}{path}", s.url);
    let t = Instant::now();
    let first = get(&url);
    let cold = t.elapsed();
    assert_eq!(first.status, 200, "{path}: {}", first.text());
    let mut times: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            let g = get(&url);
            assert_eq!(g.status, 200);
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "| {what} | `{}` | {:.0} KiB | {:.1} | {:.1} | {:.1} |",
        if path.len() > 60 { &path[..60] } else { path },
        first.body.len() as f64 / 1024.0,
        ms(cold),
        ms(times[SAMPLES / 2]),
        ms(times[SAMPLES - 1])
    );
}

fn measure(store: &Path, jobs: usize) {
    let s = serve(store);
    // The first list reads every run's counts (then kept for ended runs).
    let t = Instant::now();
    let runs = get(&format!("{}/api/runs?limit=10000", s.url)).json();
    let cold = t.elapsed();
    let runs = runs.as_array().unwrap();
    let id = |wf: &str, status: &str| {
        runs.iter()
            .find(|r| {
                r["workflow"] == wf && (status.is_empty() || r["counts"][status].as_u64() > Some(0))
            })
            .map(|r| r["id"].as_str().unwrap().to_string())
            .expect("a run of that workflow")
    };
    let (fan_x, fan_c) = (id("fan", "executed"), id("fan", "cached"));
    let lattice = id("lattice", "executed");
    let mid = format!("work%5Bi%3D{}%5D", (jobs - 2) / 2);
    println!(
        "\nthe first runs list after starting (each of {} runs' counts read): {:.0} ms",
        runs.len(),
        ms(cold)
    );
    println!("\nGET over loopback, {SAMPLES} samples after a first one, ms\n");
    println!("| what | path | size | first | median | worst |\n|---|---|---|---|---|---|");
    row(&s, "runs list page", "/");
    row(&s, "runs list, JSON", "/api/runs");
    row(
        &s,
        "runs of one workflow and state",
        "/?workflow=fan&status=succeeded",
    );
    row(
        &s,
        "run page, fan-out (executed)",
        &format!("/runs/{fan_x}"),
    );
    row(&s, "run page, fan-out (cached)", &format!("/runs/{fan_c}"));
    row(&s, "run page, lattice", &format!("/runs/{lattice}"));
    row(&s, "run JSON, lattice", &format!("/api/runs/{lattice}"));
    row(
        &s,
        "DAG SVG, lattice",
        &format!("/api/runs/{lattice}/dag.svg"),
    );
    row(
        &s,
        "job page (why, logs)",
        &format!("/runs/{fan_x}/jobs/{mid}"),
    );
    row(&s, "job JSON", &format!("/api/runs/{fan_c}/jobs/{mid}"));
    row(
        &s,
        "job page, lattice",
        &format!("/runs/{lattice}/jobs/n50_50"),
    );
    row(
        &s,
        "event stream of an ended run",
        &format!("/api/runs/{lattice}/events"),
    );
    row(
        &s,
        "a log, streamed",
        &format!("/api/runs/{fan_x}/jobs/{mid}/logs/stderr"),
    );

    // A run going on while the pages are read: its events as they come.
    follow_live(&s, store);
    browser(&s, &fan_x, &lattice, &mid);
}

fn follow_live(s: &Serving, store: &Path) {
    use std::io::{BufRead, BufReader};
    let wf = store.parent().unwrap().join("fan.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "run",
            wf.to_str().unwrap(),
            "--detach",
            "--no-cache",
            "--store",
            store.to_str().unwrap(),
        ])
        .args(["--param", "salt=live"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let t = Instant::now();
    let res = cairn_tests::browser::http()
        .get(format!("{}/api/runs/{id}/events", s.url))
        .call()
        .unwrap();
    let mut lines = BufReader::new(res.into_body().into_reader()).lines();
    let (mut events, mut first, mut changes) = (0, None, 0usize);
    while let Some(Ok(line)) = lines.next() {
        if let Some(data) = line.strip_prefix("data: ") {
            if data.starts_with('{') {
                events += 1;
                first.get_or_insert(t.elapsed());
                let v: serde_json::Value = serde_json::from_str(data).unwrap();
                changes += v["jobs"].as_array().map_or(0, Vec::len);
            }
        } else if line == "event: end" {
            break;
        }
    }
    // Meanwhile-style latency: a page read right after the run ended.
    println!(
        "\nlive run {id}: first event after {:.0} ms, {events} state events carrying {changes} job changes, stream ended {:.1} s after connecting",
        ms(first.unwrap_or_default()),
        t.elapsed().as_secs_f64()
    );
}

fn browser(s: &Serving, fan: &str, lattice: &str, mid: &str) {
    if !Path::new(cairn_tests::browser::CHROMIUM).exists() {
        println!(
            "\nno Chromium ({}): run tests/web/install for the browser figures",
            cairn_tests::browser::CHROMIUM
        );
        return;
    }
    let b = Browser::start();
    println!(
        "\nChromium, page loaded to `load` (navigation timing), ms\n\n| page | DOM nodes | load |\n|---|---|---|"
    );
    let shots: PathBuf = Browser::artifacts();
    for (what, path, shot) in [
        ("runs list", "/".to_string(), "bench-runs.png"),
        (
            "fan-out run, 10,000 jobs",
            format!("/runs/{fan}"),
            "bench-fan.png",
        ),
        (
            "lattice run, 10,000 jobs",
            format!("/runs/{lattice}"),
            "bench-lattice.png",
        ),
        (
            "job page",
            format!("/runs/{fan}/jobs/{mid}"),
            "bench-job.png",
        ),
    ] {
        let mut loads = Vec::new();
        let mut nodes = 0;
        for _ in 0..3 {
            b.goto(&format!("{}{path}", s.url));
            let v = b.eval(
                "const n = performance.getEntriesByType('navigation')[0]; \
                 return [n.loadEventEnd - n.startTime, document.getElementsByTagName('*').length];",
            );
            loads.push(v[0].as_f64().unwrap());
            nodes = v[1].as_u64().unwrap();
        }
        loads.sort_by(f64::total_cmp);
        b.screenshot(&shots.join(shot));
        println!("| {what} | {nodes} | {:.0} |", loads[1]);
    }
}
