//! Command tasks: argv, inputs, outputs, stdout, logs, exit status.

use crate::util::Project;

#[test]
fn argv_inputs_and_outputs_reach_the_task() {
    let p = Project::new();
    p.write("data.txt", "hello\n");
    p.workflow(
        "inputs:\n  data: data.txt\nparams:\n  who: world\njobs:\n  echo:\n    uses: {ECHO_ARGS}\n    args: [one, 'two words', '--who=${{ params.who }}']\n    stdout: said\n  copy:\n    uses: {COPY}\n    args: [src, dst]\n    inputs:\n      src: ${{ inputs.data }}\n    outputs: [dst]\n",
    );
    let run = p.cairn(&["run", "wf.yaml", "--param", "who=cairn"]);
    assert_eq!(run.code, 0, "{run:?}");
    // Final outputs are listed with digest and store path; check their bytes.
    let said = output_bytes(&p, &run, "echo.said");
    assert_eq!(said, "one\ntwo words\n--who=cairn\n");
    assert_eq!(output_bytes(&p, &run, "copy.dst"), "hello\n");
}

#[test]
fn stdout_can_be_an_output_and_stderr_stays_in_the_log() {
    let p = Project::new();
    p.workflow("jobs:\n  w:\n    uses: {WRITE_STDOUT}\n    args: [payload]\n    stdout: text\n");
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(output_bytes(&p, &run, "w.text"), "payload");
}

#[test]
fn exit_zero_is_success_and_failures_are_classified() {
    let p = Project::new();
    p.workflow(
        "jobs:\n  bye:\n    uses: {EXIT_ZERO}\n    stdout: out\n  fail:\n    uses: {FAIL}\n  missing:\n    uses: {MISSING_OUTPUT}\n    outputs: [result]\n",
    );
    let run = p.cairn(&["run", "wf.yaml", "--keep-going"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.status_of("bye"), Some("done"), "{run:?}");
    assert!(
        run.stderr.contains("failed   fail: exit status failure"),
        "{run:?}"
    );
    // The failing job's own stderr is shown under it.
    assert!(run.stderr.contains("| about to fail"), "{run:?}");
    assert!(
        run.stderr.contains("failed   missing: missing output: declared output `result` was not written to /out/result"),
        "{run:?}"
    );
}

#[test]
fn a_failed_job_is_never_cached() {
    let p = Project::new();
    p.workflow("jobs:\n  fail:\n    uses: {FAIL}\n");
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 1);
    let again = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(again.code, 1);
    assert_eq!(again.status_of("fail"), Some("failed"), "{again:?}");
}

#[test]
fn a_core_module_is_rejected_with_a_reason() {
    let p = Project::new();
    // The smallest valid core module: magic and version only.
    p.write("core.wasm", b"\0asm\x01\0\0\0");
    p.workflow("jobs:\n  core:\n    uses: core.wasm\n");
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("failed   core: instantiation:"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("a core module without `_start` is not a command"),
        "{run:?}"
    );
}

/// The bytes of a final output, found through the path `cairn run` printed.
pub fn output_bytes(p: &Project, run: &crate::util::Run, label: &str) -> String {
    let line = run
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label))
        .unwrap_or_else(|| panic!("no output {label} in {run:?}"));
    let path = line.split_whitespace().last().unwrap();
    std::fs::read_to_string(p.path().join(path)).unwrap()
}
