//! Typed tasks: the export's WIT signature is the task's interface, checked
//! before anything runs; values of every WIT kind and artifacts flow through.

use crate::execution::output_bytes;
use crate::util::Project;

const KINDS_ARGS: &str = "      b: true
      i8v: -128
      u16v: 65535
      i64v: -9007199254740993
      f: 2.5
      c: λ
      s: 'a string: with ${no} refs'
      l: [1, 2, 3]
      p: { x: -1, y: 2 }
      t: [7, seven]
      o: present
      r: { err: nope }
      col: green
      fl: [read, exec]
      sh: { circle: 1.5 }
";

#[test]
fn values_of_every_wit_kind_round_trip() {
    let p = Project::new();
    p.workflow(&format!(
        "jobs:\n  echo:\n    uses: {{TYPED_KINDS}}\n    with:\n{KINDS_ARGS}"
    ));
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    let out = |name: &str| output_bytes(&p, &run, &format!("echo.{name}"));
    assert_eq!(out("b"), "true");
    assert_eq!(out("i8v"), "-128");
    assert_eq!(out("u16v"), "65535");
    assert_eq!(out("i64v"), "-9007199254740993");
    assert_eq!(out("f"), "2.5");
    assert_eq!(out("c"), "\"λ\"");
    assert_eq!(out("s"), "\"a string: with ${no} refs\"");
    assert_eq!(out("l"), "[1,2,3]");
    assert_eq!(out("p"), "{\"x\":-1,\"y\":2}");
    assert_eq!(out("t"), "[7,\"seven\"]");
    assert_eq!(out("o"), "[\"present\"]");
    assert_eq!(out("r"), "{\"err\":\"nope\"}");
    assert_eq!(out("col"), "\"green\"");
    assert_eq!(out("fl"), "[\"exec\",\"read\"]");
    assert_eq!(out("sh"), "{\"circle\":1.5}");
    // Typed outputs feed typed parameters of later jobs.
    p.workflow(&format!(
        "jobs:\n  echo:\n    uses: {{TYPED_KINDS}}\n    with:\n{KINDS_ARGS}  half:\n    uses: {{TYPED_FAILS}}\n    with:\n      n: ${{{{ jobs.echo.outputs.u16v }}}}\n"
    ));
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 1, "65535 is odd: {run:?}");
    assert!(
        run.stderr
            .contains("failed   half: guest error: n must be even, got 65535"),
        "{run:?}"
    );
    assert_eq!(run.status_of("echo"), Some("cached"), "{run:?}");
}

/// `cairn check` on `yaml`: exit 2 and the diagnostics.
fn check_errors(yaml: &str) -> String {
    let p = Project::new();
    p.write("data.txt", "text");
    p.workflow(yaml);
    let run = p.cairn(&["check", "wf.yaml"]);
    assert_eq!(run.code, 2, "{run:?}");
    // `run` refuses to start on the same errors, before recording a run.
    let refused = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        !p.path().join(".cairn/runs.db").exists(),
        "nothing was recorded"
    );
    run.stderr
}

fn has(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "missing {n:?} in:\n{text}");
    }
}

#[test]
fn type_errors_are_found_before_running_with_the_wit_type_spelled_out() {
    let e = check_errors(&format!(
        "jobs:\n  echo:\n    uses: {{TYPED_KINDS}}\n    with:\n{}",
        KINDS_ARGS
            .replace("u16v: 65535", "u16v: 65536")
            .replace("col: green", "col: grene")
            .replace("p: { x: -1, y: 2 }", "p: { x: -1, z: 2 }")
            .replace("b: true", "b: yes")
    ));
    has(
        &e,
        &[
            "error: found `yes`",
            "--> wf.yaml:5:10",
            "expected bool",
            "error: 65536 is out of range (0..=65535)",
            "--> wf.yaml:7:13",
            "expected u16",
            "error: unknown field `z`",
            "expected record { x: s32, y: s32 }",
            "error: `grene` is not a case",
            "expected enum { red, green, blue }",
            "did you mean `green`?",
            "4 errors in wf.yaml",
        ],
    );
}

#[test]
fn missing_unknown_and_misplaced_arguments() {
    let e = check_errors(
        "inputs:\n  data: data.txt\njobs:\n  half:\n    uses: {TYPED_FAILS}\n    with:\n      m: 2\n  copy:\n    uses: {TYPED_COPY}\n    with:\n      input: 42\n  split:\n    uses: {TYPED_SPLIT}\n    with:\n      text: ${{ inputs.data }}\n      count: ${{ inputs.data }}\n  cmd:\n    uses: {ECHO_ARGS}\n    with:\n      x: 1\n",
    );
    has(
        &e,
        &[
            "error: `check` has no parameter `m`",
            "--> wf.yaml:7:7",
            "expected check: func(n: u32) -> result<u32, string>",
            "error: job `half` does not give parameter `n`",
            "error: a literal value where an artifact is expected",
            "--> wf.yaml:11:14",
            "expected borrow<artifact>",
            "error: this is artifact (a file)",
            "--> wf.yaml:16:14",
            "expected u32 for parameter `count`",
            "error: `with:` given to a command task",
        ],
    );
}

#[test]
fn references_to_outputs_a_typed_producer_lacks() {
    let e = check_errors(
        "inputs:\n  data: data.txt\njobs:\n  split:\n    uses: {TYPED_SPLIT}\n    with:\n      text: ${{ inputs.data }}\n      count: 2\n  join:\n    uses: {TYPED_CONCAT}\n    with:\n      parts: ${{ jobs.split.outputs.chunk }}\n",
    );
    has(
        &e,
        &[
            "error: job `split` has no output `chunk`",
            "expected one of job `split`'s outputs: chunks, lines",
            "did you mean `chunks`?",
        ],
    );
}

#[test]
fn artifacts_flow_between_typed_and_command_tasks() {
    let p = Project::new();
    p.write("text.txt", "one\ntwo\nthree\nfour\nfive\n");
    p.workflow(
        "inputs:\n  text: text.txt\njobs:
  split:
    uses: {TYPED_SPLIT}
    with:
      text: ${{ inputs.text }}
      count: 3
  join:
    uses: {TYPED_CONCAT}
    with:
      parts: ${{ jobs.split.outputs.chunks }}
  files:
    uses: {CONCAT}
    args: [chunks, joined]
    inputs:
      chunks: ${{ jobs.split.outputs.chunks }}
    outputs: [joined]
  parts:
    uses: {FANOUT}
    args: ['2']
    outputs: [parts]
  joined-files:
    uses: {TYPED_CONCAT}
    with:
      parts: ${{ jobs.parts.outputs.parts }}
",
    );
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        output_bytes(&p, &run, "join.out"),
        "one\ntwo\nthree\nfour\nfive\n"
    );
    assert_eq!(
        output_bytes(&p, &run, "files.joined"),
        "one\ntwo\nthree\nfour\nfive\n"
    );
    assert_eq!(
        output_bytes(&p, &run, "joined-files.out"),
        "part 0\npart 1\n"
    );
    let again = p.cairn(&["run", "wf.yaml"]);
    assert!(again.stderr.contains("0 executed, 5 cached"), "{again:?}");
}

#[test]
fn artifacts_of_0_1_and_64_mib_bytes_stream_through() {
    for size in [0u64, 1, 64 << 20] {
        let p = Project::new();
        p.workflow(&format!(
            "jobs:\n  gen:\n    uses: {{TYPED_GENERATE}}\n    with:\n      bytes: {size}\n  copy:\n    uses: {{TYPED_COPY}}\n    with:\n      input: ${{{{ jobs.gen.outputs.out }}}}\n    limits: {{ memory: 16MiB }}\n"
        ));
        let run = p.cairn(&["run", "wf.yaml"]);
        assert_eq!(run.code, 0, "{size}: {run:?}");
        let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let all = p.cairn(&["results", &id, "--all", "--json"]).json();
        let outs = all["outputs"].as_array().unwrap();
        let blob =
            |job: &str| outs.iter().find(|o| o["job"] == job).unwrap()["value"]["blob"].clone();
        assert_eq!(blob("gen"), blob("copy"), "{size} bytes copied exactly");
        assert_eq!(blob("copy")["size"], size);
    }
}

#[test]
fn the_host_streams_artifacts_in_bounded_memory() {
    // 64 MiB written through one task's output stream and read through the
    // next one's input stream: the cairn process never holds it whole.
    let p = Project::new();
    let size = 64u64 << 20;
    p.workflow(&format!(
        "jobs:\n  gen:\n    uses: {{TYPED_GENERATE}}\n    with:\n      bytes: {size}\n  copy:\n    uses: {{TYPED_COPY}}\n    with:\n      input: ${{{{ jobs.gen.outputs.out }}}}\n"
    ));
    let out = std::process::Command::new("/usr/bin/time")
        .args([
            "-f",
            "%M",
            env!("CARGO_BIN_EXE_cairn"),
            "run",
            "wf.yaml",
            "-q",
        ])
        .current_dir(p.path())
        .output()
        .expect("GNU time (Debian package `time`)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let peak_kib: u64 = stderr.lines().last().unwrap().trim().parse().unwrap();
    eprintln!("peak RSS streaming 64 MiB twice: {} MiB", peak_kib / 1024);
    assert!(
        peak_kib < 48 << 10,
        "peak RSS {peak_kib} KiB: an artifact was held in memory"
    );
}

#[test]
fn logs_and_metrics_from_the_context_are_recorded() {
    let p = Project::new();
    p.workflow("jobs:\n  ctx:\n    uses: {TYPED_CONTEXT}\n    with:\n      name: cairn\n");
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(output_bytes(&p, &run, "ctx.out"), "\"token:none\"");
    // `cairn run` shows what the task reported.
    assert!(
        run.stderr.contains("metrics loss[1]=0.5 loss[2]=0.25"),
        "{run:?}"
    );
    assert!(run.stderr.contains("labels  owner=cairn"), "{run:?}");
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let logs = p.cairn(&["logs", &id, "ctx"]);
    assert!(logs.stdout.contains("[info] hello cairn"), "{logs:?}");
    let metrics = p.cairn(&["metrics", &id, "--json"]).json();
    let loss: Vec<(i64, f64)> = metrics
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "loss")
        .map(|m| (m["step"].as_i64().unwrap(), m["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(loss, [(1, 0.5), (2, 0.25)]);
}

#[test]
fn inspect_describes_a_typed_component() {
    let p = Project::new();
    let run = p.cairn(&["inspect", cairn_tests::TYPED_FAILS]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("kind       typed task"), "{run:?}");
    assert!(
        run.stdout
            .contains("export     check: func(n: u32) -> result<u32, string>"),
        "{run:?}"
    );
    assert!(run.stdout.contains("provided cairn:task/"), "{run:?}");
    let cmd = p.cairn(&["inspect", cairn_tests::NOOP]);
    assert!(cmd.stdout.contains("kind       command"), "{cmd:?}");
}

#[test]
fn a_hermetic_err_is_not_retried_unless_asked() {
    let p = Project::new();
    p.workflow(
        "jobs:
  odd:
    uses: {TYPED_FAILS}
    with: { n: 3 }
    retry: { attempts: 3, backoff: 10ms }
  odd-always:
    uses: {TYPED_FAILS}
    with: { n: 5 }
    retry: { attempts: 2, backoff: 10ms, always: true }
",
    );
    let run = p.cairn(&["run", "wf.yaml", "--keep-going"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("not retried: a hermetic job's `err` comes back the same"),
        "{run:?}"
    );
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = p.cairn(&["status", &id, "--json"]).json();
    let attempts = |name: &str| {
        status["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .unwrap()["attempts"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(attempts("odd"), 1, "the same inputs give the same err");
    assert_eq!(attempts("odd-always"), 2);
    let why = p.cairn(&["why", &id, "odd", "--json"]).json();
    assert_eq!(why["executed"], true);
    assert!(
        why["answer"].as_str().unwrap().contains("no earlier run"),
        "{why}"
    );
    let logs = p.cairn(&["logs", &id, "odd", "--json"]);
    let line: serde_json::Value =
        serde_json::from_str(logs.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["job"], "odd");
    assert_eq!(line["status"], "failed");
}

#[test]
fn secrets_reach_only_jobs_that_declare_them_and_are_never_stored() {
    use crate::util::run_cairn;
    let p = Project::new();
    p.workflow(
        "jobs:
  ctx:
    uses: {TYPED_CONTEXT}
    with: { name: a }
    secrets: [TOKEN]
  keyed:
    uses: {TYPED_CONTEXT}
    with: { name: b }
    secrets: [TOKEN]
    secrets-in-key: true
  nosy:
    uses: {TYPED_CONTEXT}
    with: { name: c }
",
    );
    let missing = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(
        missing.stderr.contains(
            "job `ctx` declares secret `TOKEN`, which was not given; pass --secret TOKEN"
        ),
        "{missing:?}"
    );

    let value = "hunter2-secret-value";
    let run = run_cairn(
        p.path(),
        &["run", "wf.yaml", "--secret", "TOKEN"],
        &[("TOKEN", value)],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(output_bytes(&p, &run, "ctx.out"), "\"token:20\"");
    assert_eq!(
        output_bytes(&p, &run, "nosy.out"),
        "\"token:none\"",
        "undeclared: not visible"
    );
    // The value is nowhere in the store: not in records, cache entries, keys or logs.
    fn scan(dir: &std::path::Path, needle: &[u8]) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                scan(&path, needle);
            } else if let Ok(bytes) = std::fs::read(&path) {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "secret found in {}",
                    path.display()
                );
            }
        }
    }
    scan(&p.path().join(".cairn"), value.as_bytes());
    // The guest put the value in a label and a metric name: both blanked.
    assert!(
        !run.stdout.contains(value) && !run.stderr.contains(value),
        "{run:?}"
    );
    assert!(run.stderr.contains("token=[secret]"), "{run:?}");
    // Keys hold the secret's name; a job that asks also keys on a hash of the value.
    let other = run_cairn(
        p.path(),
        &["run", "wf.yaml", "--secret", "TOKEN"],
        &[("TOKEN", "another")],
    );
    assert_eq!(other.status_of("ctx"), Some("cached"), "{other:?}");
    assert_eq!(other.status_of("keyed"), Some("done"), "{other:?}");
}

const CONDITIONAL: &str = "params:
  mode: full
jobs:
  half:
    uses: {TYPED_FAILS}
    with: { n: 8 }
  big:
    uses: {ECHO_ARGS}
    if: ${{ params.mode == 'full' && jobs.half.outputs.out > 3 }}
    args: [ran]
    stdout: out
  after:
    uses: {NOOP}
    needs: big
";

#[test]
fn a_condition_true_in_one_run_and_false_in_the_next() {
    let p = Project::new();
    p.workflow(CONDITIONAL);
    let first = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(first.status_of("big"), Some("done"), "{first:?}");
    assert_eq!(first.status_of("after"), Some("done"), "{first:?}");
    let second = p.cairn(&["run", "wf.yaml", "--param", "mode=quick"]);
    assert_eq!(
        second.code, 0,
        "a false condition is not a failure: {second:?}"
    );
    assert!(
        second.stderr.contains("skipped  big (condition)"),
        "{second:?}"
    );
    assert!(
        second.stderr.contains("skipped  after (condition)"),
        "dependents too: {second:?}"
    );
    assert_eq!(second.status_of("half"), Some("cached"));
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = p.cairn(&["status", &id, "--json"]).json();
    let big = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "big")
        .unwrap()
        .clone();
    assert_eq!(big["status"], "skipped");
    assert!(
        big["failure"].as_str().unwrap().starts_with("condition"),
        "{big}"
    );
}

#[test]
fn conditions_are_type_checked_before_running() {
    let e = check_errors(
        &CONDITIONAL.replace("jobs.half.outputs.out > 3", "jobs.half.outputs.out == 'x'"),
    );
    has(
        &e,
        &[
            "error: comparing a number with a string",
            "expected a number like the left side",
        ],
    );
    let e = check_errors(
        &CONDITIONAL.replace("needs: big", "if: ${{ jobs.big.outputs.out == 'ran' }}"),
    );
    has(
        &e,
        &["error: job `big` is a command task; its outputs are files"],
    );
    let e = check_errors(&CONDITIONAL.replace("params.mode == 'full'", "params.mdoe == 'full'"));
    has(&e, &["error: no parameter named `mdoe`"]);
}

#[test]
fn why_names_a_secret_whose_value_changed() {
    use crate::util::run_cairn;
    let p = Project::new();
    p.workflow(
        "jobs:
  keyed:
    uses: {TYPED_CONTEXT}
    with: { name: b }
    secrets: [TOKEN]
    secrets-in-key: true
",
    );
    let secret = |v: &str| {
        run_cairn(
            p.path(),
            &["run", "wf.yaml", "--secret", "TOKEN"],
            &[("TOKEN", v)],
        )
    };
    assert_eq!(secret("first-value").code, 0);
    let second = secret("second-value");
    assert_eq!(second.status_of("keyed"), Some("done"), "{second:?}");
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let why = p.cairn(&["why", &id, "keyed"]);
    assert_eq!(why.code, 0, "{why:?}");
    assert!(
        why.stdout.contains("secret `TOKEN`'s value changed"),
        "{why:?}"
    );
    assert!(!why.stdout.contains("the same"), "{why:?}");
    assert!(!why.stdout.contains("value\"") && !why.stdout.contains("second-value"));
}
