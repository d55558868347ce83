//! The command line's small promises: exit codes, `error:` prefixes,
//! wording and names as `run` prints them.

use crate::util::Project;

#[test]
fn cat_of_a_missing_blob_is_a_usage_error() {
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {ECHO_ARGS}\n    args: [hi]\n    stdout: out\n");
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    let missing = "0".repeat(64);
    let cat = p.cairn(&["cat", &missing]);
    assert_eq!(cat.code, 2, "{cat:?}");
    assert!(cat.stderr.starts_with("error: no blob "), "{cat:?}");
}

#[test]
fn status_names_the_job_a_skipped_job_needed() {
    let p = Project::new();
    p.workflow(
        "jobs:\n  fail:\n    uses: {EXIT3}\n  after:\n    uses: {ECHO_ARGS}\n    needs: fail\n",
    );
    let run = p.cairn(&["run", "wf.yaml", "--keep-going"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("needs fail"), "{run:?}");
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = p.cairn(&["status", &id]);
    assert!(
        status.stdout.contains("needs fail, which did not succeed"),
        "{status:?}"
    );
    assert!(!status.stdout.contains("needs job"), "{status:?}");
}

#[test]
fn a_missing_workflow_file_is_reported_as_an_error() {
    let p = Project::new();
    let run = p.cairn(&["run", "/nonexistent.yaml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: cannot read workflow /nonexistent.yaml"),
        "{run:?}"
    );
}

#[test]
fn store_verify_counts_one_problem_in_the_singular() {
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {ECHO_ARGS}\n    args: [hi]\n    stdout: out\n");
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    p.write(".cairn/blobs/zz/stray", "not a blob");
    let verify = p.cairn(&["store", "verify"]);
    assert_eq!(verify.code, 1, "{verify:?}");
    assert!(
        verify.stdout.trim_end().ends_with(", 1 problem"),
        "{verify:?}"
    );
}
