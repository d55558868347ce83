//! Tasks in any language: the polyglot conformance workflow (the same
//! contract in Rust, Python, JavaScript and C as typed tasks, and in C, Zig
//! and Go as command tasks) built from source by cairn and required to
//! agree byte for byte; `cairn build`; wasip1 core modules adapted.
//!
//! The guest toolchains come from `tests/toolchains/install`, which this
//! test runs first (it is quick when they are installed). These tests are
//! never skipped: a toolchain that cannot be installed fails them with the
//! command to fix it.

use crate::util::{Project, Run, run_cairn};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// `target/toolchains`, installed (once per test process).
fn toolchains() -> &'static str {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let out = Command::new("bash")
                .arg(root().join("tests/toolchains/install"))
                .arg("all")
                .current_dir(root())
                .output()
                .expect("bash runs");
            assert!(
                out.status.success(),
                "installing the guest toolchains failed; run `tests/toolchains/install all` \
                 from the repository root to see why and fix it:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            root().join("target/toolchains")
        })
        .to_str()
        .unwrap()
}

fn cairn(args: &[&str], store: &Path) -> Run {
    let env = [
        ("CAIRN_TOOLCHAINS", toolchains()),
        ("CAIRN_STORE", store.to_str().unwrap()),
    ];
    run_cairn(root(), args, &env)
}

const TYPED: [&str; 4] = ["rust", "python", "js", "c"];
const ALL: [&str; 7] = ["rust", "python", "js", "c", "c-command", "zig", "go"];

#[test]
fn every_language_agrees_on_the_conformance_workflow() {
    let store = tempfile::tempdir().unwrap();
    let wf = root().join("examples/polyglot/polyglot.yaml");
    let wf = wf.to_str().unwrap();

    let first = cairn(&["run", wf], store.path());
    assert_eq!(first.code, 0, "{first:?}");
    assert!(
        first.stderr.contains("8 jobs, 8 executed"),
        "every task built and ran: {first:?}"
    );
    for lang in ["Rust", "Python", "JavaScript", "C", "Zig", "Go"] {
        assert!(
            first.stderr.contains(&format!("({lang})")),
            "cairn built the {lang} tasks: {first:?}"
        );
    }
    let id = latest_run(store.path());
    let output = outputs(&id, store.path());
    assert_eq!(
        output("agree", "verdict").lines().last().unwrap(),
        "all 7 implementations agree: rust, python, js, c, c-command, zig, go"
    );

    // The typed values (canonical JSON), not only the artifacts, are the
    // same everywhere, and all are what the contract says.
    let sample = std::fs::read(root().join("examples/polyglot/data/sample.txt")).unwrap();
    let expected = expected_profile(&sample);
    for lang in TYPED {
        assert_eq!(output(lang, "words"), expected.words.to_string(), "{lang}");
        assert_eq!(
            output(lang, "distinct"),
            expected.distinct.to_string(),
            "{lang}"
        );
        let mean: f64 = output(lang, "mean-length").parse().unwrap();
        assert_eq!(
            mean,
            expected.letters as f64 / expected.words as f64,
            "{lang}"
        );
    }
    for lang in ALL {
        assert_eq!(output(lang, "top"), expected.top, "{lang}");
        assert_eq!(output(lang, "summary"), expected.summary, "{lang}");
        assert_eq!(
            output(lang, "text").as_bytes(),
            String::from_utf8_lossy(&sample.to_ascii_lowercase()).as_bytes(),
            "{lang}"
        );
    }

    // The log line, metric and label each typed task reports.
    let metrics = cairn(&["metrics", &id, "--json"], store.path()).json();
    for lang in TYPED {
        let logs = cairn(&["logs", &id, lang], store.path());
        assert!(
            logs.stdout.contains(&format!(
                "[info] counted {} words ({} distinct)",
                expected.words, expected.distinct
            )),
            "{lang}: {logs:?}"
        );
        let reported = metrics
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["job"] == lang)
            .unwrap_or_else(|| panic!("{lang}: {metrics}"));
        assert!(
            reported
                .to_string()
                .contains(&format!("{}", expected.words)),
            "{lang}: {reported}"
        );
    }

    // A rerun executes nothing: builds and results are all cached.
    let again = cairn(&["run", wf], store.path());
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("0 executed, 8 cached"), "{again:?}");
    assert!(!again.stderr.contains("built "), "{again:?}");

    // The error path: every implementation fails alone, with the same
    // reason, classified (a typed task's `err`, a command's exit status).
    let failing = cairn(
        &["run", wf, "--param", "min=99", "--keep-going"],
        store.path(),
    );
    assert_eq!(failing.code, 1, "{failing:?}");
    let id = latest_run(store.path());
    let status = cairn(&["status", &id, "--json"], store.path()).json();
    for lang in ALL {
        let job = status["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == lang)
            .unwrap_or_else(|| panic!("{lang} in {status}"));
        assert_eq!(job["status"], "failed", "{lang}: {job}");
        let (kind, reason) = if TYPED.contains(&lang) {
            ("guest_error", "no words counted (min-length 99)")
        } else {
            ("exit", "exit code 1")
        };
        assert_eq!(job["failure_kind"], kind, "{lang}: {job}");
        assert_eq!(job["failure"], reason, "{lang}: {job}");
        if !TYPED.contains(&lang) {
            // A command says why on stderr, its log.
            let logs = cairn(&["logs", &id, lang], store.path());
            assert!(
                logs.stdout.contains("no words counted (min-length 99)"),
                "{lang}: {logs:?}"
            );
        }
    }
    assert!(failing.stderr.contains("skipped  agree"), "{failing:?}");

    // The command tasks on an input whose heap outgrows the initial memory:
    // Go's runtime and Debian's (2022) wasi-libc take every page of linear
    // memory as theirs, which the preview 1 adapter's state must not share.
    let big = Project::new();
    let mut text = Vec::new();
    for i in 0..1_200_000u32 {
        text.extend_from_slice(format!("w{} ", i.wrapping_mul(2_654_435_761) % 150_000).as_bytes());
        if i % 13 == 0 {
            text.push(b'\n');
        }
    }
    big.write("big.txt", &text);
    let tasks = root().join("examples/polyglot/tasks");
    let mut yaml = String::from("inputs:\n  text: big.txt\njobs:\n");
    for lang in ["c-command", "zig", "go"] {
        yaml.push_str(&format!(
            "  {lang}:\n    uses: {}\n    args: [lower, \"2\", \"5\"]\n    inputs: {{ text: \"${{{{ inputs.text }}}}\" }}\n    outputs: [top, summary]\n",
            tasks.join(lang).display()
        ));
    }
    let wf = big.write("big.yaml", yaml);
    let run = cairn(&["run", wf.to_str().unwrap()], store.path());
    assert_eq!(run.code, 0, "{run:?}");
    let output = outputs(&latest_run(store.path()), store.path());
    for lang in ["zig", "go"] {
        assert_eq!(output(lang, "top"), output("c-command", "top"), "{lang}");
        assert_eq!(
            output(lang, "summary"),
            output("c-command", "summary"),
            "{lang}"
        );
    }
    assert!(output("go", "summary").starts_with("words 1200000\n"));
}

/// What the contract gives for `text` with the workflow's default options
/// (lower case, min-length 2, top 5, its stop words), computed here
/// independently of every implementation.
struct Profile {
    words: u64,
    distinct: usize,
    letters: u64,
    top: String,
    summary: String,
}

fn expected_profile(text: &[u8]) -> Profile {
    let lower = text.to_ascii_lowercase();
    let stop = ["the", "a", "an"];
    let mut counts = std::collections::BTreeMap::<&[u8], u64>::new();
    let (mut words, mut letters) = (0u64, 0u64);
    for w in lower.split(|b| !b.is_ascii_alphanumeric()) {
        if w.len() >= 2 && !stop.contains(&std::str::from_utf8(w).unwrap()) {
            words += 1;
            letters += w.len() as u64;
            *counts.entry(w).or_default() += 1;
        }
    }
    let mut by_count: Vec<(&[u8], u64)> = counts.iter().map(|(w, n)| (*w, *n)).collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top = by_count
        .iter()
        .take(5)
        .map(|(w, n)| format!("{}\t{n}\n", String::from_utf8_lossy(w)))
        .collect();
    Profile {
        words,
        distinct: counts.len(),
        letters,
        top,
        summary: format!(
            "words {words}\ndistinct {}\nletters {letters}\n",
            counts.len()
        ),
    }
}

/// The newest run's id.
fn latest_run(store: &Path) -> String {
    let runs = run_cairn(
        root(),
        &["runs", "--json", "--store", store.to_str().unwrap()],
        &[],
    );
    runs.json()[0]["id"].as_str().unwrap().to_string()
}

/// A reader of run `id`'s outputs (every job's) as text, by job and name.
fn outputs(id: &str, store: &Path) -> impl Fn(&str, &str) -> String + use<> {
    let store = store.to_str().unwrap().to_string();
    let results = run_cairn(
        root(),
        &["results", id, "--all", "--json", "--store", &store],
        &[],
    );
    assert_eq!(results.code, 0, "{results:?}");
    let results = results.json();
    move |job, name| {
        let digest =
            results["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["job"] == job && o["name"] == name)
                .unwrap_or_else(|| panic!("no output {job}.{name} in {results}"))["value"]["blob"]
                ["digest"]
                .as_str()
                .unwrap()
                .to_string();
        let cat = run_cairn(root(), &["cat", &digest, "--store", &store], &[]);
        assert_eq!(cat.code, 0, "{cat:?}");
        cat.stdout
    }
}

#[test]
fn cairn_build_prints_the_component_and_caches_it() {
    let store = tempfile::tempdir().unwrap();
    let dir = root().join("examples/polyglot/tasks/go");
    let dir = dir.to_str().unwrap();
    let first = cairn(&["build", dir, "--json"], store.path());
    assert_eq!(first.code, 0, "{first:?}");
    let built = first.json();
    assert_eq!(built["language"], "Go");
    assert_eq!(built["fresh"], true);
    let component = PathBuf::from(built["component"].as_str().unwrap());
    let bytes = std::fs::read(&component).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\0asm\x01\0\0\0",
        "a preview 1 command module, kept as it is"
    );
    assert_eq!(
        built["digest"].as_str().unwrap(),
        blake3::hash(&bytes).to_hex().as_str()
    );
    let again = cairn(&["build", dir], store.path());
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.starts_with("up to date"), "{again:?}");
    assert!(
        again.stdout.contains(built["digest"].as_str().unwrap()),
        "{again:?}"
    );
    let inspect = cairn(&["inspect", dir], store.path());
    assert!(inspect.stdout.contains("kind       command"), "{inspect:?}");
}

#[test]
fn a_missing_toolchain_names_the_command_that_installs_it() {
    let store = tempfile::tempdir().unwrap();
    let dir = root().join("examples/polyglot/tasks/python");
    let run = run_cairn(
        root(),
        &[
            "build",
            dir.to_str().unwrap(),
            "--store",
            store.path().to_str().unwrap(),
        ],
        &[
            ("PATH", "/nonexistent"),
            ("CAIRN_TOOLCHAINS", "/nonexistent"),
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("componentize-py was not found")
            && run.stderr.contains("tests/toolchains/install python"),
        "{run:?}"
    );
}

#[test]
fn a_failing_build_shows_the_tools_own_error() {
    let p = Project::new();
    p.write(
        "task/main.c",
        "int main(void) { return undefined_thing; }\n",
    );
    let store = p.path().join("store");
    let run = cairn(&["build", p.path().join("task").to_str().unwrap()], &store);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("building") && run.stderr.contains("undefined_thing"),
        "clang's own message: {run:?}"
    );
}

/// A wasip1 command module (what any C, Zig or Go toolchain makes): it
/// writes a line to stdout through `fd_write`, then exits with status 0.
const WASIP1_ECHO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wasip1\n")
  (func (export "_start")
    ;; iovec at 0: base 16, length 18
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 18))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

#[test]
fn a_wasip1_core_module_runs_as_a_command_task() {
    let p = Project::new();
    p.write("echo.wasm", wat::parse_str(WASIP1_ECHO).unwrap());
    let wf = p.write(
        "wf.yaml",
        "jobs:\n  echo:\n    uses: echo.wasm\n    stdout: out\n",
    );
    let store = p.path().join("store");
    let env = [("CAIRN_STORE", store.to_str().unwrap())];
    let run = run_cairn(p.path(), &["run", wf.to_str().unwrap()], &env);
    assert_eq!(run.code, 0, "{run:?}");
    let out = outputs(&latest_run(&store), &store);
    assert_eq!(out("echo", "out"), "hello from wasip1\n");
    // The second run hits the cache.
    let again = run_cairn(p.path(), &["run", wf.to_str().unwrap()], &env);
    assert!(again.stderr.contains("1 cached"), "{again:?}");

    // A module that imports something the host does not provide fails
    // alone, at instantiation, naming the import.
    p.write(
        "bad.wasm",
        wat::parse_str(r#"(module (import "env" "magic" (func)) (memory (export "memory") 1) (func (export "_start")))"#).unwrap(),
    );
    let wf = p.write("bad.yaml", "jobs:\n  bad:\n    uses: bad.wasm\n");
    let bad = run_cairn(p.path(), &["run", wf.to_str().unwrap()], &env);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(
        bad.stderr.contains("failed   bad: instantiation:") && bad.stderr.contains("env::magic"),
        "{bad:?}"
    );

    // A module without `_start` or a component type has nothing to call:
    // it fails alone too, saying so.
    p.write(
        "reactor.wasm",
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_initialize")))"#)
            .unwrap(),
    );
    let wf = p.write("reactor.yaml", "jobs:\n  r:\n    uses: reactor.wasm\n");
    let refused = run_cairn(p.path(), &["run", wf.to_str().unwrap()], &env);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("failed   r: instantiation: a core module without `_start`")
            && refused.stderr.contains("neither `_start`"),
        "{refused:?}"
    );
}
