//! Scheduling: dependency order, parallelism, fan-out/fan-in, failures.

use crate::execution::output_bytes;
use crate::util::{Project, id, run_library};
use cairn::{JobStatus, SkipReason};

const DIAMOND: &str = "jobs:\n  a:\n    uses: {SLEEP_MS}\n    args: ['50']\n  b:\n    uses: {SLEEP_MS}\n    needs: a\n    args: ['400']\n  c:\n    uses: {SLEEP_MS}\n    needs: a\n    args: ['400']\n  d:\n    uses: {SLEEP_MS}\n    needs: [b, c]\n    args: ['10']\n";

#[test]
fn jobs_start_only_after_their_dependencies_and_run_in_parallel() {
    let p = Project::new();
    let wf = p.workflow(DIAMOND);
    let (plan, report, ev) = run_library(&wf, 2, false);
    assert!(report.success());
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|n| id(&plan, n));
    assert!(ev.done(a) < ev.running(b) && ev.done(a) < ev.running(c));
    assert!(ev.done(b) < ev.running(d) && ev.done(c) < ev.running(d));
    // With two slots, b and c overlap: both start before either finishes.
    assert!(
        ev.running(b).max(ev.running(c)) < ev.done(b).min(ev.done(c)),
        "b and c ran in parallel"
    );
}

#[test]
fn one_slot_runs_one_job_at_a_time() {
    let p = Project::new();
    let wf = p.workflow(DIAMOND);
    let (plan, report, ev) = run_library(&wf, 1, false);
    assert!(report.success());
    let (b, c) = (id(&plan, "b"), id(&plan, "c"));
    let (first, second) = if ev.running(b) < ev.running(c) {
        (b, c)
    } else {
        (c, b)
    };
    assert!(ev.done(first) < ev.running(second), "never two at once");
}

#[test]
fn fan_out_over_a_list_output_and_fan_in_over_a_matrix() {
    let p = Project::new();
    p.workflow(
        "jobs:\n  parts:\n    uses: {FANOUT}\n    args: ['3']\n    outputs: [parts]\n  each:\n    uses: {COPY}\n    strategy:\n      matrix:\n        i: [0, 1, 2]\n    args: [p, copy]\n    inputs:\n      p: ${{ jobs.parts.outputs.parts[matrix.i] }}\n    outputs: [copy]\n  all:\n    uses: {CONCAT}\n    args: [pieces, joined]\n    inputs:\n      pieces: ${{ jobs.each.outputs.copy }}\n    outputs: [joined]\n  whole:\n    uses: {CONCAT}\n    args: [list, joined]\n    inputs:\n      list: ${{ jobs.parts.outputs.parts }}\n    outputs: [joined]\n",
    );
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    for i in 0..3 {
        assert_eq!(
            run.status_of(&format!("each[i={i}]")),
            Some("done"),
            "{run:?}"
        );
    }
    assert_eq!(
        output_bytes(&p, &run, "all.joined"),
        "part 0\npart 1\npart 2\n"
    );
    assert_eq!(
        output_bytes(&p, &run, "whole.joined"),
        "part 0\npart 1\npart 2\n"
    );
}

#[test]
fn an_index_past_the_end_of_a_list_fails_that_job() {
    let p = Project::new();
    p.workflow("jobs:\n  parts:\n    uses: {FANOUT}\n    args: ['2']\n    outputs: [parts]\n  third:\n    uses: {COPY}\n    args: [p, c]\n    inputs:\n      p: ${{ jobs.parts.outputs.parts[2] }}\n    outputs: [c]\n");
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "failed   third: input: jobs.parts.outputs.parts[2]: the list has 2 elements"
        ),
        "{run:?}"
    );
}

const FAILING: &str = "jobs:\n  bad:\n    uses: {FAIL}\n  after-bad:\n    uses: {NOOP}\n    needs: bad\n  slow:\n    uses: {SLEEP_MS}\n    args: ['300']\n  after-slow:\n    uses: {NOOP}\n    needs: slow\n";

#[test]
fn a_failure_skips_its_dependents_and_stops_the_run() {
    let p = Project::new();
    let wf = p.workflow(FAILING);
    let (plan, report, _) = run_library(&wf, 2, false);
    assert!(!report.success());
    let status = |n: &str| report.jobs[id(&plan, n)].status.clone();
    assert!(matches!(status("bad"), JobStatus::Failed(_)));
    assert_eq!(
        status("after-bad"),
        JobStatus::Skipped(SkipReason::Upstream(id(&plan, "bad")))
    );
    // `slow` was already running and finishes; nothing new starts after the failure.
    assert_eq!(status("slow"), JobStatus::Executed);
    assert_eq!(
        status("after-slow"),
        JobStatus::Skipped(SkipReason::RunStopped)
    );
}

#[test]
fn keep_going_runs_everything_that_does_not_depend_on_a_failure() {
    let p = Project::new();
    p.workflow(FAILING);
    let run = p.cairn(&["run", "wf.yaml", "--keep-going"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.status_of("bad"), Some("failed"));
    assert_eq!(run.status_of("after-bad"), Some("skipped"));
    assert_eq!(run.status_of("slow"), Some("done"));
    assert_eq!(run.status_of("after-slow"), Some("done"), "{run:?}");
}
