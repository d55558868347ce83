//! The sandbox: a job sees its inputs, its outputs and nothing else.

use crate::execution::output_bytes;
use crate::util::{Project, run_cairn};

#[test]
fn a_guest_cannot_reach_host_files_the_environment_or_the_network() {
    let p = Project::new();
    p.write("secret.txt", "do not leak");
    p.workflow("inputs:\n  x: secret.txt\njobs:\n  escape:\n    uses: {ESCAPE}\n    inputs:\n      x: ${{ inputs.x }}\n    stdout: report\n");
    let run = run_cairn(
        p.path(),
        &["run", "wf.yaml"],
        &[("CAIRN_TEST_SECRET", "hunter2")],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let report = output_bytes(&p, &run, "escape.report");
    let attempts: Vec<&str> = report.lines().collect();
    assert!(attempts.len() >= 7, "every attempt reports: {report}");
    for line in &attempts {
        assert!(
            line.ends_with(": denied"),
            "sandbox escape: {line}\n{report}"
        );
    }
    assert!(!report.contains("hunter2"));
}

#[test]
fn inputs_are_read_only_inside_the_sandbox_and_the_store_is_intact() {
    let p = Project::new();
    p.write("in.txt", "original");
    p.workflow("inputs:\n  x: in.txt\njobs:\n  escape:\n    uses: {ESCAPE}\n    inputs:\n      x: ${{ inputs.x }}\n    stdout: report\n  copy:\n    uses: {COPY}\n    needs: escape\n    args: [x, y]\n    inputs:\n      x: ${{ inputs.x }}\n    outputs: [y]\n");
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(output_bytes(&p, &run, "copy.y"), "original");
    assert_eq!(
        std::fs::read_to_string(p.path().join("in.txt")).unwrap(),
        "original"
    );
}
