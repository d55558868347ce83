//! The attack suite: one test per attack, each run through the real
//! `cairn` binary with real components, each asserting that nothing
//! escaped and that the host neither panicked nor aborted (it exits with
//! one of its documented codes). `RELIABILITY.md` lists them with what
//! stops each; the store faults, `kill -9` and concurrency are in
//! `store_faults`, `crash` and `concurrency`.

use crate::execution::output_bytes;
use crate::util::{Project, Run, run_cairn};

/// The host survived: a documented exit code, no panic, no abort.
fn contained(run: &Run) {
    assert!(
        [0, 1, 2, 3].contains(&run.code),
        "cairn exited {} (a panic is 101, an abort -1): {run:?}",
        run.code
    );
    assert!(!run.stderr.contains("panicked at"), "{run:?}");
}

/// `cairn run wf.yaml ARGS…`, which must not panic.
fn run(p: &Project, args: &[&str]) -> Run {
    let mut all = vec!["run", "wf.yaml"];
    all.extend(args);
    let run = p.cairn(&all);
    contained(&run);
    run
}

/// A report's lines, each of which must end in `: denied`; returns how many.
fn all_denied(report: &str) -> usize {
    for line in report.lines() {
        assert!(line.ends_with(": denied"), "escaped: {line}\n{report}");
    }
    report.lines().count()
}

/// A command component whose `wasi:cli/run` runs `run` (core wasm) in a
/// module with `fields` (functions, tables, memories) besides it.
fn command_component(fields: &str, run: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
  (core module $m
    {fields}
    (func (export "run") (result i32)
      {run}
      i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $r (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $r)))"#
    ))
    .unwrap()
}

/// The latest run's jobs: name → `status --json` row.
fn jobs(p: &Project) -> std::collections::HashMap<String, serde_json::Value> {
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    p.cairn(&["status", &id, "--json"]).json()["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["name"].as_str().unwrap().to_string(), j.clone()))
        .collect()
}

#[test]
fn attack_output_names_that_climb_out_of_out() {
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {NOOP}\n    outputs: ['../../../tmp/x', '..', 'a/../../b']\n    stdout: '../stdout'\n");
    let r = run(&p, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    for name in ["../../../tmp/x", "..", "a/../../b", "../stdout"] {
        assert!(
            r.stderr.contains(&format!(
                "`{name}` is not a valid name: it would be the file /out/{name}"
            )),
            "{name}: {r:?}"
        );
    }
    assert!(!p.path().join(".cairn").exists() || jobs_ran(&p) == 0);
}

/// Runs recorded in the project's store.
fn jobs_ran(p: &Project) -> usize {
    p.cairn(&["runs", "--json"])
        .json()
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn attack_absolute_output_names() {
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {NOOP}\n    outputs: [/etc/cron.d/evil, /tmp]\n");
    let r = run(&p, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("`/etc/cron.d/evil` is not a valid name"),
        "{r:?}"
    );
    assert!(r.stderr.contains("`/tmp` is not a valid name"), "{r:?}");
    assert_eq!(jobs_ran(&p), 0);
}

#[test]
fn attack_input_names_that_climb_out_of_in_or_are_absolute() {
    let p = Project::new();
    p.write("x.txt", "x");
    p.workflow("inputs:\n  x: x.txt\njobs:\n  a:\n    uses: {NOOP}\n    inputs:\n      '../../x': ${{ inputs.x }}\n      /etc/passwd: ${{ inputs.x }}\n");
    let r = run(&p, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("it would be the file /in/../../x"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("it would be the file /in//etc/passwd"),
        "{r:?}"
    );
    assert_eq!(jobs_ran(&p), 0);
}

#[test]
fn attack_uses_naming_a_host_file_or_directory_outside_the_project() {
    let p = Project::new();
    p.write("secret.txt", "the host's secret\n");
    let depth = p.path().components().count();
    let climb = "../".repeat(depth);
    p.workflow(&format!(
        "jobs:\n  abs:\n    uses: /etc/passwd\n  rel:\n    uses: {climb}etc/passwd\n  local:\n    uses: secret.txt\n  fine:\n    uses: {{NOOP}}\n"
    ));
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    for job in ["abs", "rel", "local"] {
        assert!(
            r.stderr.contains(&format!(
                "failed   {job}: instantiation: not a WebAssembly component or module"
            )),
            "{job}: {r:?}"
        );
    }
    assert_eq!(r.status_of("fine"), Some("done"));
    // Read only to see that it is no wasm: its bytes are in no log, no
    // record and no blob.
    assert!(
        !r.stderr.contains("root:") && !r.stderr.contains("secret"),
        "{r:?}"
    );
    let store = p.path().join(".cairn/blobs");
    for f in crate::store_faults::files_below(&store) {
        let bytes = std::fs::read(store.join(&f)).unwrap();
        assert!(
            !bytes.starts_with(b"root:"),
            "/etc/passwd is in the store as {f}"
        );
        assert_ne!(
            bytes, b"the host's secret\n",
            "secret.txt is in the store as {f}"
        );
    }
    // A directory that is no task is refused before anything runs.
    p.workflow(&format!("jobs:\n  a:\n    uses: {climb}\n"));
    let r = run(&p, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("cannot tell what language this is"),
        "{r:?}"
    );
}

#[test]
fn attack_guest_reads_host_files_by_path_traversal() {
    let p = Project::new();
    p.write("secret.txt", "do not leak");
    p.workflow("inputs:\n  x: secret.txt\njobs:\n  escape:\n    uses: {ESCAPE}\n    inputs:\n      x: ${{ inputs.x }}\n    stdout: report\n");
    let r = run(&p, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let report = output_bytes(&p, &r, "escape.report");
    for attempt in [
        "read /etc/passwd",
        "read /in/../../etc/passwd",
        "read ../etc/passwd",
        "list /",
    ] {
        assert!(
            report.contains(&format!("{attempt}: denied")),
            "{attempt}: {report}"
        );
    }
    assert_eq!(all_denied(&report), 8);
}

#[test]
fn attack_guest_writes_its_inputs_or_outside_out() {
    let p = Project::new();
    p.write("in.txt", "original");
    p.workflow("inputs:\n  x: in.txt\njobs:\n  escape:\n    uses: {ESCAPE}\n    inputs:\n      x: ${{ inputs.x }}\n    stdout: report\n");
    let r = run(&p, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let report = output_bytes(&p, &r, "escape.report");
    assert!(report.contains("write /in/x: denied"), "{report}");
    assert!(report.contains("write /out/../x: denied"), "{report}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("in.txt")).unwrap(),
        "original"
    );
    // The input's blob (hard-linked into /in) is intact.
    crate::crash::assert_store_clean(&p.path().join(".cairn"), "after the writes");
}

#[test]
fn attack_symlinks_planted_in_out() {
    let p = Project::new();
    p.workflow("jobs:\n  leak:\n    uses: {SYMLINK_OUT}\n    outputs: [leak]\n  up:\n    uses: {SYMLINK_OUT}\n    args: [again]\n    outputs: [up]\n");
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    // A link to an absolute path is refused by WASI itself; one that
    // climbs out is made, but never followed when outputs are collected.
    assert!(r.stderr.contains("| symlink /out/leak: failed"), "{r:?}");
    assert!(
        r.stderr
            .contains("failed   leak: missing output: declared output `leak`"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(
            "failed   up: bad output: output /out/up is not a regular file or directory (symbolic links are not followed)"
        ),
        "{r:?}"
    );
    // Nothing of what they point at was collected.
    let store = p.path().join(".cairn/blobs");
    for f in crate::store_faults::files_below(&store) {
        assert!(!std::fs::read(store.join(&f)).unwrap().starts_with(b"root:"));
    }
}

#[test]
fn attack_hard_links_planted_in_out() {
    let p = Project::new();
    p.write("x.txt", "the input\n");
    p.workflow("inputs:\n  x: x.txt\njobs:\n  link:\n    uses: {HARD_LINK_OUT}\n    inputs:\n      x: ${{ inputs.x }}\n    outputs: [a, b]\n    stdout: report\n");
    let r = run(&p, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let report = output_bytes(&p, &r, "link.report");
    // From /in (the store's own blob) to /out: refused, so the blob can
    // never be written through an output. Within /out: harmless.
    assert!(
        report.contains("link /in/x /out/stolen: denied"),
        "{report}"
    );
    assert!(report.contains("write /out/stolen: denied"), "{report}");
    assert!(report.contains("link /out/a /out/b: ok"), "{report}");
    assert_eq!(output_bytes(&p, &r, "link.a"), "a\n");
    assert_eq!(output_bytes(&p, &r, "link.b"), "a\n");
    crate::crash::assert_store_clean(&p.path().join(".cairn"), "after the links");
    assert_eq!(
        std::fs::read_to_string(p.path().join("x.txt")).unwrap(),
        "the input\n"
    );
}

#[test]
fn attack_an_output_tree_a_million_directories_deep() {
    let p = Project::new();
    p.workflow("jobs:\n  deep:\n    uses: {DEEP_TREE}\n    args: ['1000000']\n    outputs: [deep]\n  fine:\n    uses: {NOOP}\n");
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("failed   deep: output limit: /out nests directories more than 64 deep"),
        "{r:?}"
    );
    assert_eq!(r.status_of("fine"), Some("done"));
    assert_eq!(
        crate::store_faults::files_below(&p.path().join(".cairn/tmp")),
        Vec::<String>::new()
    );
}

#[test]
fn attack_an_output_tree_a_million_entries_wide() {
    let p = Project::new();
    p.workflow(
        "jobs:\n  wide:\n    uses: {WIDE_TREE}\n    args: ['1000000']\n    outputs: [wide]\n",
    );
    let r = run(&p, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(
            "failed   wide: output limit: /out holds more than 100000 files and directories"
        ),
        "{r:?}"
    );
    // None of them became a blob; the scratch space is empty again.
    let blobs = crate::store_faults::files_below(&p.path().join(".cairn/blobs")).len();
    assert!(blobs < 10, "{blobs} blobs");
    assert_eq!(
        crate::store_faults::files_below(&p.path().join(".cairn/tmp")),
        Vec::<String>::new()
    );
}

#[test]
fn attack_environment_probing() {
    let p = Project::new();
    p.workflow("jobs:\n  escape:\n    uses: {ESCAPE}\n    stdout: report\n  args:\n    uses: {ECHO_ARGS}\n    args: [only, these]\n    stdout: out\n");
    let r = run_cairn(
        p.path(),
        &["run", "wf.yaml"],
        &[
            ("CAIRN_TEST_SECRET", "hunter2"),
            ("AWS_SECRET_ACCESS_KEY", "hunter3"),
        ],
    );
    contained(&r);
    assert_eq!(r.code, 0, "{r:?}");
    let report = output_bytes(&p, &r, "escape.report");
    assert!(report.contains("env vars: denied"), "{report}");
    assert!(!report.contains("hunter"), "{report}");
    assert_eq!(output_bytes(&p, &r, "args.out"), "only\nthese\n");
}

#[test]
fn attack_sockets() {
    let p = Project::new();
    p.workflow("jobs:\n  net:\n    uses: {CONNECT}\n    stdout: report\n");
    let r = run(&p, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(all_denied(&output_bytes(&p, &r, "net.report")), 4);
}

#[test]
fn attack_host_name_lookup() {
    let p = Project::new();
    p.workflow("jobs:\n  dns:\n    uses: {RESOLVE}\n    stdout: report\n");
    let r = run(&p, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(all_denied(&output_bytes(&p, &r, "dns.report")), 2);
}

#[test]
fn attack_the_clock_and_randomness_are_hermetic() {
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {CLOCK_RANDOM}\n    stdout: out\n");
    let first = run(&p, &[]);
    let second = run(&p, &["--no-cache"]);
    assert_eq!((first.code, second.code), (0, 0));
    let (a, b) = (
        output_bytes(&p, &first, "a.out"),
        output_bytes(&p, &second, "a.out"),
    );
    assert_eq!(a, b, "the same bytes from two executions");
    assert!(a.starts_with("wall 1577836800.000000\n"), "{a}");
}

#[test]
fn attack_an_infinite_loop_meets_its_timeout() {
    let p = Project::new();
    p.workflow("jobs:\n  spin:\n    uses: {SPIN}\n    limits: { timeout: 500ms }\n  nap:\n    uses: {SLEEP_MS}\n    args: ['600000']\n    limits: { timeout: 500ms }\n");
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    // Spinning in wasm, and blocked in a host call (a ten-minute sleep).
    assert!(
        r.stderr.contains("failed   spin: timeout after 500ms"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("failed   nap: timeout after 500ms"),
        "{r:?}"
    );
}

#[test]
fn attack_an_infinite_loop_runs_out_of_fuel() {
    let p = Project::new();
    p.workflow("jobs:\n  spin:\n    uses: {SPIN}\n    limits: { fuel: 5e6 }\n");
    let r = run(&p, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("failed   spin: out of fuel"), "{r:?}");
}

#[test]
fn attack_a_memory_bomb() {
    let p = Project::new();
    p.workflow("jobs:\n  bomb:\n    uses: {MEMORY_BOMB}\n    limits: { memory: 64MiB }\n  fine:\n    uses: {NOOP}\n");
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("failed   bomb: memory limit 64 MiB"),
        "{r:?}"
    );
    assert_eq!(r.status_of("fine"), Some("done"));
    let attempts = jobs(&p)["bomb"]["attempts"].as_i64();
    assert_eq!(attempts, Some(1), "not retried: it would recur");
}

#[test]
fn attack_a_table_bomb() {
    let p = Project::new();
    // Grows its table until the host says no, then traps; or asks for a
    // table of a hundred million entries up front.
    p.write(
        "grow.wasm",
        command_component(
            "(table 1 funcref)",
            "(block (loop (br_if 1 (i32.eq (table.grow (ref.null func) (i32.const 65536)) (i32.const -1))) (br 0))) unreachable",
        ),
    );
    p.write(
        "huge.wasm",
        command_component("(table 100000000 funcref)", ""),
    );
    p.workflow("jobs:\n  grow:\n    uses: grow.wasm\n  huge:\n    uses: huge.wasm\n  fine:\n    uses: {NOOP}\n");
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("failed   grow: unreachable code reached"),
        "{r:?}"
    );
    assert!(r.stderr.contains("failed   huge: "), "{r:?}");
    assert_eq!(r.status_of("fine"), Some("done"));
}

#[test]
fn attack_a_stack_bomb() {
    let p = Project::new();
    // In linear memory (Rust's shadow stack) and on wasm's own call stack.
    p.write(
        "rec.wasm",
        command_component(
            "(func $rec (param i64) (result i64) (call $rec (local.get 0)))",
            "(drop (call $rec (i64.const 1)))",
        ),
    );
    p.workflow("jobs:\n  shadow:\n    uses: {RECURSE}\n  native:\n    uses: rec.wasm\n");
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("failed   shadow: stack overflow"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("failed   native: stack overflow"),
        "{r:?}"
    );
}

#[test]
fn attack_an_output_flood() {
    let p = Project::new();
    p.workflow("jobs:\n  big:\n    uses: {BIG_OUTPUT}\n    args: ['10']\n    outputs: [big]\n    limits: { output: 8MiB }\n  stdout:\n    uses: {CHATTY}\n    args: ['100']\n    stdout: out\n    limits: { output: 8MiB }\n");
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("failed   big: output limit 8 MiB"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("failed   stdout: output limit 8 MiB"),
        "{r:?}"
    );
    // Stopped early: the store holds nothing near 10 GiB or 100 MiB.
    let store = p.path().join(".cairn/blobs");
    let total: u64 = crate::store_faults::files_below(&store)
        .iter()
        .map(|f| std::fs::metadata(store.join(f)).unwrap().len())
        .sum();
    assert!(total < 32 << 20, "{total} bytes stored");
}

#[test]
fn attack_a_log_flood() {
    let p = Project::new();
    p.workflow(
        "jobs:\n  chatty:\n    uses: {CHATTY}\n    args: ['100']\n    limits: { log: 1MiB }\n",
    );
    let r = run(&p, &[]);
    assert_eq!(r.code, 0, "a chatty job is not killed: {r:?}");
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let log = p.cairn(&["logs", &id, "chatty"]);
    assert!(
        log.stdout.len() < 2 << 20,
        "{} bytes kept",
        log.stdout.len()
    );
    assert!(
        log.stdout.contains("[cairn: log truncated: the job wrote"),
        "marked"
    );
}

#[test]
fn attack_huge_argv() {
    let p = Project::new();
    let big = "x".repeat(1 << 20);
    p.workflow(&format!(
        "jobs:\n  a:\n    uses: {{ECHO_ARGS}}\n    args: ['{big}']\n"
    ));
    let r = run(&p, &[]);
    assert_eq!(r.code, 2, "{}", &r.stderr[..r.stderr.len().min(2000)]);
    assert!(
        r.stderr
            .contains("the arguments of job `a` add up to 1048577 bytes"),
        "{}",
        &r.stderr[..2000]
    );
    assert!(
        r.stderr.len() < 10_000,
        "the error shows a window of the line, not all of it"
    );
    // Many small ones, through a parameter and a matrix, add up too.
    let args: Vec<&str> = vec!["'${{ params.p }}'"; 600];
    p.workflow(&format!(
        "params:\n  p: {}\njobs:\n  a:\n    uses: {{ECHO_ARGS}}\n    strategy: {{ matrix: {{ i: [0, 1] }} }}\n    args: [{}]\n",
        "y".repeat(2000),
        args.join(", ")
    ));
    let r = run(&p, &[]);
    assert_eq!(r.code, 2, "{}", &r.stderr[..r.stderr.len().min(2000)]);
    assert!(
        r.stderr.contains("add up to 1200600 bytes"),
        "{}",
        &r.stderr[..r.stderr.len().min(2000)]
    );
}

#[test]
fn attack_a_yaml_alias_bomb() {
    let p = Project::new();
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        yaml.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    yaml.push_str("jobs:\n  a:\n    uses: {NOOP}\n    args: *a9\n");
    p.workflow(&yaml);
    let r = run(&p, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("aliases expand this document past its size limit"),
        "{r:?}"
    );
}

#[test]
fn attack_deeply_nested_yaml() {
    let p = Project::new();
    for (open, close) in [("[", "]"), ("{a: ", "}"), ("- ", "")] {
        let n = 100_000;
        let nested = if open == "- " {
            // Block style: each level one more indentation step.
            (0..2000)
                .map(|i| format!("{}- ", " ".repeat(2 * i)))
                .collect::<Vec<_>>()
                .join("\n")
                + "x"
        } else {
            format!("{}1{}", open.repeat(n), close.repeat(n))
        };
        p.workflow(&format!(
            "jobs:\n  a:\n    uses: {{NOOP}}\n    with:\n      x: {nested}\n"
        ));
        let r = run(&p, &[]);
        assert_eq!(
            r.code,
            2,
            "{open}: {}",
            &r.stderr[..r.stderr.len().min(2000)]
        );
        assert!(r.stderr.contains("error: "), "{open}");
        assert!(
            r.stderr.len() < 10_000,
            "{open}: {} bytes of error",
            r.stderr.len()
        );
    }
}

#[test]
fn attack_invalid_wasm() {
    let p = Project::new();
    let real = std::fs::read(cairn_tests::NOOP).unwrap();
    p.write("garbage.wasm", b"this is not wasm at all");
    p.write("empty.wasm", b"");
    p.write("truncated.wasm", &real[..real.len() / 2]);
    let mut flipped = real.clone();
    for b in flipped.iter_mut().skip(64).step_by(97) {
        *b ^= 0x5a;
    }
    p.write("flipped.wasm", flipped);
    p.workflow("jobs:\n  garbage:\n    uses: garbage.wasm\n  empty:\n    uses: empty.wasm\n  truncated:\n    uses: truncated.wasm\n  flipped:\n    uses: flipped.wasm\n  fine:\n    uses: {NOOP}\n");
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    for job in ["garbage", "empty", "truncated", "flipped"] {
        assert!(
            r.stderr
                .contains(&format!("failed   {job}: instantiation: ")),
            "{job}: {r:?}"
        );
    }
    assert_eq!(r.status_of("fine"), Some("done"));
}

#[test]
fn attack_a_core_module() {
    let p = Project::new();
    p.write(
        "reactor.wasm",
        wat::parse_str("(module (memory (export \"memory\") 1))").unwrap(),
    );
    p.write(
        "env.wasm",
        wat::parse_str(r#"(module (import "env" "magic" (func)) (func (export "_start") call 0) (memory (export "memory") 1))"#).unwrap(),
    );
    p.workflow("jobs:\n  reactor:\n    uses: reactor.wasm\n  env:\n    uses: env.wasm\n");
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("failed   reactor: instantiation: a core module without `_start`"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("failed   env: instantiation: ") && r.stderr.contains("env::magic"),
        "{r:?}"
    );
}

#[test]
fn attack_a_component_importing_what_is_not_granted() {
    let p = Project::new();
    for (name, import) in [
        ("http", "wasi:http/outgoing-handler@0.2.0"),
        ("nowhere", "cairn:nowhere/frobnicate@1.0.0"),
    ] {
        p.write(
            &format!("{name}.wasm"),
            wat::parse_str(format!(
                r#"(component (import "{import}" (instance (export "handle" (func))))
                    (core module $m (func (export "run") (result i32) i32.const 0))
                    (core instance $i (instantiate $m))
                    (func $run (result (result)) (canon lift (core func $i "run")))
                    (instance $r (export "run" (func $run)))
                    (export "wasi:cli/run@0.2.0" (instance $r)))"#
            ))
            .unwrap(),
        );
    }
    p.workflow("jobs:\n  http:\n    uses: http.wasm\n  nowhere:\n    uses: nowhere.wasm\n");
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    for (job, import) in [
        ("http", "wasi:http/outgoing-handler@0.2.0"),
        ("nowhere", "cairn:nowhere/frobnicate@1.0.0"),
    ] {
        assert!(
            r.stderr.contains(&format!(
                "failed   {job}: instantiation: the host cannot satisfy"
            )),
            "{job}: {r:?}"
        );
        assert!(r.stderr.contains(import), "names {import}: {r:?}");
    }
}

#[test]
fn attack_a_component_that_traps_mid_write() {
    let p = Project::new();
    p.workflow("jobs:\n  trap:\n    uses: {TRAP_MID_WRITE}\n    outputs: [partial]\n  after:\n    uses: {COPY}\n    args: [p, c]\n    inputs:\n      p: ${{ jobs.trap.outputs.partial }}\n    outputs: [c]\n");
    let r = run(&p, &["--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("failed   trap: unreachable code reached"),
        "{r:?}"
    );
    assert_eq!(r.status_of("after"), Some("skipped"), "{r:?}");
    // The half-written output never became a blob.
    let partial = cairn::Digest::of(&vec![b'x'; 1 << 20]);
    assert!(
        !cairn::Store::open(p.path().join(".cairn"))
            .unwrap()
            .contains(&partial)
    );
}
