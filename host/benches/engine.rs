//! Whole-process benchmarks of the real `cairn` binary (release build).
//!
//!     cargo bench -p cairn --bench engine            # all scenarios
//!     cargo bench -p cairn --bench engine -- noop    # names containing "noop"
//!
//! Every figure is reported with a baseline measured in the same run, as a
//! ratio, because these machines are noisy:
//!
//! - `wordcount`: the example on a 32 MiB generated corpus: `--no-cache`
//!   (components already compiled) against a fully cached rerun.
//! - `noop-1000`: 1,000 independent no-op command jobs, against a one-job
//!   workflow (the fixed cost of starting cairn), giving the marginal wall
//!   time per job.
//! - `stream`: a 1 GiB artifact made by one typed task and streamed through
//!   another, with the process's peak RSS, against `cp` of the same bytes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 7;

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let work = tempfile::tempdir().unwrap();
    println!(
        "cairn {} benchmarks, {RUNS} runs each; median (min–max)",
        env!("CARGO_PKG_VERSION")
    );
    if wanted("wordcount") {
        wordcount(work.path());
    }
    if wanted("noop") {
        noop(work.path());
    }
    if wanted("stream") {
        stream(work.path());
    }
}

/// A 1 GiB artifact written by one typed task and streamed through another,
/// with the whole process's peak RSS (GNU time), against `cp` of the same bytes.
fn stream(work: &Path) {
    let wf = work.join("stream.yaml");
    let yaml = format!(
        "jobs:\n  gen:\n    uses: {}\n    with: {{ bytes: 1073741824 }}\n  copy:\n    uses: {}\n    with:\n      input: ${{{{ jobs.gen.outputs.out }}}}\n    limits: {{ memory: 16MiB }}\n",
        cairn_tests::TYPED_GENERATE,
        cairn_tests::TYPED_COPY
    );
    std::fs::write(&wf, yaml).unwrap();
    let store = work.join("stream-store");
    let args = |extra: &str| {
        let mut a = vec![
            "-f".to_string(),
            "%M".to_string(),
            env!("CARGO_BIN_EXE_cairn").to_string(),
        ];
        a.extend(
            [
                "run",
                wf.to_str().unwrap(),
                "-q",
                "--store",
                store.to_str().unwrap(),
            ]
            .map(String::from),
        );
        if !extra.is_empty() {
            a.push(extra.to_string());
        }
        a
    };
    let timed = |a: &[String]| {
        let start = Instant::now();
        let out = Command::new("/usr/bin/time")
            .args(a)
            .output()
            .expect("GNU time at /usr/bin/time");
        let elapsed = start.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rss_kib: u64 = String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        (elapsed, rss_kib)
    };
    timed(&args("")); // warm-up: compile the components
    let mut runs: Vec<(Duration, u64)> = (0..3).map(|_| timed(&args("--no-cache"))).collect();
    runs.sort();
    let (t, _) = runs[1];
    let rss = runs.iter().map(|r| r.1).max().unwrap_or(0);
    // The same bytes copied by cp on the same disk, as the floor.
    let blob = std::fs::read_dir(store.join("blobs"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == 1 << 30))
        .expect("the 1 GiB blob");
    let copy = work.join("cp-copy");
    let cp: Vec<Duration> = (0..3)
        .map(|_| {
            let _ = std::fs::remove_file(&copy);
            let start = Instant::now();
            assert!(
                Command::new("cp")
                    .arg(&blob)
                    .arg(&copy)
                    .status()
                    .unwrap()
                    .success()
            );
            start.elapsed()
        })
        .collect();
    let mut cp = cp;
    cp.sort();
    println!("stream (typed: generate 1 GiB → copy through wasi:io streams, 16 MiB guest memory)");
    println!(
        "  2 jobs, --no-cache, median of 3      {:8.1} ms",
        t.as_secs_f64() * 1e3
    );
    println!(
        "  peak RSS of the cairn process         {:8.1} MiB",
        rss as f64 / 1024.0
    );
    println!(
        "  cp of the same 1 GiB                  {:8.1} ms",
        cp[1].as_secs_f64() * 1e3
    );
    println!(
        "  cairn / cp: {:.1}x (both write 1 GiB twice: generate and copy)",
        t.as_secs_f64() / cp[1].as_secs_f64()
    );
}

fn wordcount(work: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let corpus = work.join("corpus.txt");
    let status = Command::new("python3")
        .arg(root.join("examples/wordcount/gen_corpus.py"))
        .arg(&corpus)
        .args(["--mb", "32"])
        .status()
        .expect("python3 runs the corpus generator");
    assert!(status.success());
    let store = work.join("wordcount-store");
    let wf = root.join("examples/wordcount/wordcount.yaml");
    let input = format!("corpus={}", corpus.display());
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = vec!["run".into(), wf.display().to_string(), "-q".into()];
        a.extend([
            "--input".into(),
            input.clone(),
            "--store".into(),
            store.display().to_string(),
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // Warm-up: builds the tasks, compiles the components, fills the cache.
    cairn(&args(&[]));
    let uncached = measure(|| cairn(&args(&["--no-cache"])));
    let cached = measure(|| cairn(&args(&[])));
    println!("wordcount (32 MiB corpus, 7 jobs)");
    println!("  --no-cache, components compiled  {}", show(&uncached));
    println!("  fully cached rerun               {}", show(&cached));
    println!(
        "  cached rerun is {:.1}x faster (goal: >= 20x)",
        median(&uncached).as_secs_f64() / median(&cached).as_secs_f64()
    );
}

fn noop(work: &Path) {
    let workflow = |n: usize| {
        let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let path = work.join(format!("noop-{n}.yaml"));
        let yaml = format!(
            "jobs:\n  noop:\n    uses: {}\n    strategy:\n      matrix:\n        i: [{}]\n    args: ['${{{{ matrix.i }}}}']\n",
            cairn_tests::NOOP,
            values.join(", ")
        );
        std::fs::write(&path, yaml).unwrap();
        path
    };
    let store = work.join("noop-store");
    let run = |wf: &PathBuf, extra: &[&str]| {
        let mut a = vec![
            "run".to_string(),
            wf.display().to_string(),
            "-q".into(),
            "--store".into(),
        ];
        a.push(store.display().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        cairn(&a)
    };
    let one = workflow(1);
    let thousand = workflow(1000);
    run(&thousand, &[]);
    let base = measure(|| run(&one, &["--no-cache"]));
    let uncached = measure(|| run(&thousand, &["--no-cache"]));
    let cached = measure(|| run(&thousand, &[]));
    let per_job =
        |t: &[Duration]| (median(t).saturating_sub(median(&base))).as_secs_f64() * 1e3 / 999.0;
    println!("noop-1000 (independent no-op command jobs, whole process)");
    println!("  1 job (baseline: process, plan, engine)  {}", show(&base));
    println!(
        "  1,000 jobs executed                      {}",
        show(&uncached)
    );
    println!(
        "  1,000 jobs cached                        {}",
        show(&cached)
    );
    println!(
        "  per executed job: {:.3} ms over the baseline; {:.3} ms whole-run average (goal: < 1 ms)",
        per_job(&uncached),
        median(&uncached).as_secs_f64() * 1e3 / 1000.0
    );
    println!(
        "  per cached job: {:.3} ms over the baseline",
        per_job(&cached)
    );
    println!(
        "  1,000 executed jobs cost {:.1}x a 1-job run",
        median(&uncached).as_secs_f64() / median(&base).as_secs_f64()
    );
}

fn cairn(args: &[String]) -> Duration {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "cairn {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn measure(mut f: impl FnMut() -> Duration) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..RUNS).map(|_| f()).collect();
    times.sort();
    times
}

fn median(sorted: &[Duration]) -> Duration {
    sorted[sorted.len() / 2]
}

fn show(sorted: &[Duration]) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{:8.1} ms ({:.1}–{:.1})",
        ms(median(sorted)),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1])
    )
}
