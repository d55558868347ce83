//! A failed job names its cause in a user's words on its first line, the
//! same in the terminal, in `cairn status --json` and in the records, and
//! conditions can read it (`jobs.a.cause`, `jobs.a.result`,
//! `jobs.a.exit_code`).

use crate::util::Project;
use serde_json::Value as Json;
use std::collections::HashMap;

/// A command component whose `wasi:cli/run` executes `body` (core wasm
/// instructions) with one page of memory and a table holding, at 1 and 2,
/// functions of type `[] -> [i32]` and `[] -> []` (0 is null).
pub fn trap_component(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
  (core module $m
    (memory 1)
    (type $n (func (result i32)))
    (table 3 funcref)
    (func $zero (result i32) i32.const 0)
    (func $void)
    (elem (i32.const 1) func $zero $void)
    (func (export "run") (result i32)
      {body}
      i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $r (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $r)))"#
    ))
    .unwrap()
}

/// The latest run's `status --json` jobs by name.
fn status_jobs(p: &Project) -> (String, HashMap<String, Json>) {
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = p.cairn(&["status", &id, "--json"]).json();
    let jobs = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["name"].as_str().unwrap().to_string(), j.clone()))
        .collect();
    (id, jobs)
}

#[test]
fn every_trap_limit_and_exit_names_its_cause_first() {
    let p = Project::new();
    let traps = [
        ("unreachable", "unreachable"),
        ("divide", "i32.const 1 i32.const 0 i32.div_s drop"),
        (
            "overflow",
            "i32.const 0x80000000 i32.const -1 i32.div_s drop",
        ),
        ("convert", "f32.const nan i32.trunc_f32_s drop"),
        ("load", "i32.const 0x10000 i32.load drop"),
        ("table", "i32.const 7 call_indirect (type $n) drop"),
        ("null", "i32.const 0 call_indirect (type $n) drop"),
        ("signature", "i32.const 2 call_indirect (type $n) drop"),
    ];
    let mut yaml = String::from("jobs:\n");
    for (name, body) in traps {
        p.write(&format!("{name}.wasm"), trap_component(body));
        yaml.push_str(&format!("  {name}:\n    uses: {name}.wasm\n"));
    }
    yaml.push_str(
        "  stack:
    uses: {RECURSE}
  abort:
    uses: {TRAP_MID_WRITE}
    outputs: [partial]
  oob:
    uses: {OOB_READ}
  spin:
    uses: {SPIN}
    limits: { timeout: 2s }
  fuel:
    uses: {SPIN}
    limits: { fuel: 1e6 }
  bomb:
    uses: {MEMORY_BOMB}
    limits: { memory: 64MiB }
  big:
    uses: {BIG_OUTPUT}
    args: ['1']
    outputs: [big]
    limits: { output: 1MiB }
  flood:
    uses: {CHATTY}
    args: ['4']
    stdout: out
    limits: { output: 1MiB }
  code:
    uses: {EXIT_WITH_CODE}
  p1:
    uses: {EXIT3_P1}
  p2:
    uses: {EXIT3}
",
    );
    p.workflow(&yaml);
    let run = p.cairn(&["run", "wf.yaml", "--keep-going"]);
    assert_eq!(run.code, 1, "{run:?}");
    // (job, failure kind, first line of the failure, exit code)
    let expected: &[(&str, &str, &str, Option<i64>)] = &[
        (
            "unreachable",
            "unreachable",
            "unreachable code reached",
            None,
        ),
        ("divide", "divide_by_zero", "integer divide by zero", None),
        ("overflow", "integer_overflow", "integer overflow", None),
        (
            "convert",
            "bad_conversion",
            "invalid conversion to integer",
            None,
        ),
        (
            "load",
            "memory_out_of_bounds",
            "out-of-bounds memory access",
            None,
        ),
        (
            "table",
            "table_out_of_bounds",
            "out-of-bounds table access",
            None,
        ),
        (
            "null",
            "null_call",
            "indirect call to a null table entry",
            None,
        ),
        (
            "signature",
            "bad_signature",
            "indirect call type mismatch",
            None,
        ),
        ("stack", "stack_overflow", "stack overflow", None),
        ("abort", "unreachable", "unreachable code reached", None),
        (
            "oob",
            "memory_out_of_bounds",
            "out-of-bounds memory access",
            None,
        ),
        ("spin", "timeout", "timeout after 2s", None),
        (
            "fuel",
            "out_of_fuel",
            "out of fuel: the job used all of its 1000000 fuel",
            None,
        ),
        (
            "bomb",
            "out_of_memory",
            "memory limit 64 MiB: linear memory would have grown past it",
            None,
        ),
        (
            "big",
            "output_limit",
            "output limit 1 MiB: the job's outputs grew past it",
            None,
        ),
        (
            "flood",
            "output_limit",
            "output limit 1 MiB: the job's outputs grew past it",
            None,
        ),
        ("code", "exit", "exit code 3", Some(3)),
        ("p1", "exit", "exit code 3", Some(3)),
        (
            "p2",
            "exit",
            "exit status failure, without a code (WASI 0.2's `exit(err)` carries none)",
            None,
        ),
    ];
    let (id, jobs) = status_jobs(&p);
    let store = p.path().join(".cairn");
    let records = cairn::Records::open(&store).unwrap();
    let rows: HashMap<String, cairn::JobRow> = records
        .jobs(&id)
        .unwrap()
        .into_iter()
        .map(|j| (j.name.clone(), j))
        .collect();
    for (name, kind, cause, code) in expected {
        let j = &jobs[*name];
        assert_eq!(j["failure_kind"], *kind, "{name}: {j}");
        assert_eq!(j["cause"], *cause, "{name}: {j}");
        let first = j["failure"].as_str().unwrap().lines().next().unwrap();
        assert!(
            cause.ends_with(first),
            "{name}: the failure starts with its cause: {j}"
        );
        assert_eq!(j["exit_code"].as_i64(), *code, "{name}: {j}");
        // The records say the same, to any reader.
        let row = &rows[*name];
        assert_eq!(row.failure_kind.as_deref(), Some(*kind), "{name}");
        assert_eq!(row.cause.as_deref(), Some(*cause), "{name}");
        assert_eq!(row.exit_code, *code, "{name}");
        // And the terminal, on the job's first line.
        assert!(
            run.stderr.contains(&format!("failed   {name}: {cause}")),
            "{name}: {run:?}"
        );
    }
}

#[test]
fn a_backtrace_keeps_the_guests_own_frames() {
    let p = Project::new();
    p.workflow("jobs:\n  stack:\n    uses: {RECURSE}\n  abort:\n    uses: {TRAP_MID_WRITE}\n    outputs: [partial]\n");
    let run = p.cairn(&["run", "wf.yaml", "--keep-going"]);
    assert_eq!(run.code, 1, "{run:?}");
    let (_, jobs) = status_jobs(&p);
    let stack = jobs["stack"]["failure"].as_str().unwrap();
    // A recursion is one line with its depth, not a screenful of copies.
    let lines: Vec<&str> = stack.lines().collect();
    assert_eq!(lines[0], "stack overflow", "{stack}");
    assert!(
        lines[1].starts_with("  at recurse::dive (wasm offset 0x"),
        "{stack}"
    );
    assert!(lines[1].contains(" ×"), "{stack}");
    let abort = jobs["abort"]["failure"].as_str().unwrap();
    assert!(
        abort.contains("\n  at trap_mid_write::main (wasm offset"),
        "{abort}"
    );
    // Rust's panic and abort machinery and the start code are not the guest's.
    for runtime in ["std::", "core::", "__main_void", "_start", "abort"] {
        assert!(
            !abort.contains(&format!("at {runtime}")),
            "{runtime}: {abort}"
        );
    }
    assert!(
        abort.contains("frames of the language runtime not shown"),
        "{abort}"
    );
}

#[test]
fn a_condition_reads_how_a_job_ended() {
    let p = Project::new();
    p.workflow(
        "jobs:
  slow:
    uses: {SPIN}
    limits: { timeout: 200ms }
  code:
    uses: {EXIT_WITH_CODE}
  fine:
    uses: {NOOP}
  on-timeout:
    uses: {ECHO_ARGS}
    args: [on-timeout]
    if: ${{ jobs.slow.cause == 'timeout' }}
  on-oom:
    uses: {ECHO_ARGS}
    args: [on-oom]
    if: ${{ jobs.slow.cause == 'out_of_memory' }}
  on-code:
    uses: {ECHO_ARGS}
    args: [on-code]
    if: ${{ jobs.code.exit_code == 3 && jobs.code.result == 'failure' }}
  on-success:
    uses: {ECHO_ARGS}
    args: [on-success]
    if: ${{ jobs.fine.result == 'success' && jobs.fine.cause == '' && jobs.fine.exit_code == 0 }}
  after-handler:
    uses: {ECHO_ARGS}
    args: [after-handler]
    needs: [on-timeout]
",
    );
    // Without --keep-going: the handlers still run, since their conditions
    // are about the failures; nothing else starts after the first failure.
    let run = p.cairn(&["run", "wf.yaml", "-j", "1"]);
    assert_eq!(run.code, 1, "the failures still fail the run: {run:?}");
    let (_, jobs) = status_jobs(&p);
    let status = |n: &str| jobs[n]["status"].as_str().unwrap().to_string();
    assert_eq!(status("slow"), "failed");
    assert_eq!(status("on-timeout"), "executed", "{run:?}");
    assert_eq!(status("on-oom"), "skipped", "{run:?}");
    assert_eq!(status("on-code"), "executed", "{run:?}");
    assert_eq!(status("on-success"), "executed", "{run:?}");
    assert_eq!(status("after-handler"), "skipped", "{run:?}");

    // A cause that no job can have is refused before anything runs.
    p.workflow("jobs:\n  a:\n    uses: {NOOP}\n  b:\n    uses: {NOOP}\n    if: ${{ jobs.a.cause == 'timout' }}\n");
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("error: `timout` is not a cause a job can have"),
        "{run:?}"
    );
    assert!(run.stderr.contains("--> wf.yaml:6:29"), "{run:?}");
    assert!(run.stderr.contains("did you mean `timeout`?"), "{run:?}");
}
