//! The action cache: hits, misses, invalidation, early cutoff, portability.

use crate::util::{Project, run_cairn};

const CHAIN: &str = "inputs:\n  text: text.txt\njobs:\n  upper:\n    uses: {UPPER}\n    inputs:\n      text: ${{ inputs.text }}\n    outputs: [text]\n  copy:\n    uses: {COPY}\n    args: [t, out]\n    inputs:\n      t: ${{ jobs.upper.outputs.text }}\n    outputs: [out]\n  other:\n    uses: {ECHO_ARGS}\n    args: [unrelated]\n    stdout: out\n";

#[test]
fn unchanged_reruns_execute_nothing() {
    let p = Project::new();
    p.write("text.txt", "abc");
    p.workflow(CHAIN);
    let first = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(first.code, 0, "{first:?}");
    for job in ["upper", "copy", "other"] {
        assert_eq!(first.status_of(job), Some("done"), "{first:?}");
    }
    let second = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(second.code, 0, "{second:?}");
    for job in ["upper", "copy", "other"] {
        assert_eq!(second.status_of(job), Some("cached"), "{second:?}");
    }
    assert!(second.stderr.contains("0 executed, 3 cached"), "{second:?}");
    assert_eq!(first.stdout, second.stdout, "same outputs, same digests");
}

#[test]
fn a_changed_input_reexecutes_only_its_readers_and_identical_outputs_cut_off() {
    let p = Project::new();
    p.write("text.txt", "abc");
    p.workflow(CHAIN);
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);

    // "ABC" uppercases to the same bytes as "abc": upper re-executes, copy
    // sees an identical input and is not re-executed (early cutoff).
    p.write("text.txt", "ABC");
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.status_of("upper"), Some("done"), "{run:?}");
    assert_eq!(run.status_of("copy"), Some("cached"), "{run:?}");
    assert_eq!(run.status_of("other"), Some("cached"), "{run:?}");

    // Different bytes flow downstream.
    p.write("text.txt", "xyz");
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.status_of("upper"), Some("done"), "{run:?}");
    assert_eq!(run.status_of("copy"), Some("done"), "{run:?}");

    // --no-cache executes everything.
    let run = p.cairn(&["run", "wf.yaml", "--no-cache"]);
    assert!(run.stderr.contains("3 executed, 0 cached"), "{run:?}");
}

#[test]
fn the_same_workflow_in_two_directories_shares_cache_entries() {
    let store = tempfile::tempdir().unwrap();
    let store_dir = store.path().to_str().unwrap();
    let a = Project::new();
    let b = Project::new();
    for p in [&a, &b] {
        p.write("text.txt", "same bytes");
        p.workflow(CHAIN);
    }
    let first = run_cairn(a.path(), &["run", "wf.yaml"], &[("CAIRN_STORE", store_dir)]);
    assert!(first.stderr.contains("3 executed"), "{first:?}");
    let second = run_cairn(b.path(), &["run", "wf.yaml"], &[("CAIRN_STORE", store_dir)]);
    assert!(second.stderr.contains("0 executed, 3 cached"), "{second:?}");
}

#[test]
fn a_cache_entry_whose_blobs_are_gone_is_a_miss() {
    let p = Project::new();
    p.write("text.txt", "abc");
    p.workflow(CHAIN);
    let first = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(first.code, 0);
    // Delete a final output's blob behind cairn's back.
    let line = first
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("other.out"))
        .unwrap();
    let blob = p.path().join(line.split_whitespace().last().unwrap());
    std::fs::remove_file(&blob).unwrap();
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.status_of("other"), Some("done"), "{run:?}");
    assert_eq!(run.status_of("upper"), Some("cached"), "{run:?}");
    assert_eq!(run.status_of("copy"), Some("cached"), "{run:?}");
    assert!(blob.exists(), "the blob is back");
}

#[test]
fn compiled_components_are_reused_across_runs() {
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {NOOP}\n");
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    let compiled: Vec<_> = walk(&p.path().join(".cairn/compiled"));
    assert_eq!(compiled.len(), 1, "one precompiled component: {compiled:?}");
    let before = std::fs::metadata(&compiled[0]).unwrap().modified().unwrap();
    assert_eq!(p.cairn(&["run", "wf.yaml", "--no-cache"]).code, 0);
    let after = std::fs::metadata(&compiled[0]).unwrap().modified().unwrap();
    assert_eq!(before, after, "loaded, not compiled and written again");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn plan_forecasts_keys_and_hits_that_the_run_then_uses() {
    let p = Project::new();
    p.write("text.txt", "abc");
    p.workflow(CHAIN);
    let before = p.cairn(&["plan", "wf.yaml"]);
    assert_eq!(before.code, 0, "{before:?}");
    assert!(
        before
            .stdout
            .contains("wf: 3 jobs in 2 layers; 0 would come from the cache"),
        "{before:?}"
    );
    assert!(
        before.stdout.contains("  waits   copy "),
        "copy's input is not known yet: {before:?}"
    );
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    p.write("text.txt", "xyz");
    let after = p.cairn(&["plan", "wf.yaml"]);
    assert!(
        after.stdout.contains("1 would come from the cache"),
        "{after:?}"
    );
    let key_of = |job: &str| -> String {
        let line = after
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(job))
            .unwrap();
        line.split_whitespace().last().unwrap().to_string()
    };
    assert!(after.stdout.contains("  runs    upper "), "{after:?}");
    assert!(after.stdout.contains("  cached  other "), "{after:?}");
    // The keys it shows are the ones the run uses.
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = p.cairn(&["status", &id, "--json"]).json();
    let recorded = |job: &str| -> String {
        let j = status["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == job)
            .unwrap();
        j["cache_key"].as_str().unwrap()[..16].to_string()
    };
    assert_eq!(key_of("upper"), recorded("upper"));
    assert_eq!(key_of("other"), recorded("other"));
    let dot = p.cairn(&["plan", "wf.yaml", "--format", "dot"]);
    assert!(dot.stdout.starts_with("digraph \"wf\" {"), "{dot:?}");
    assert!(dot.stdout.contains("j0 -> j1;"), "{dot:?}");
    let mermaid = p.cairn(&["plan", "wf.yaml", "--format", "mermaid"]);
    assert!(mermaid.stdout.starts_with("flowchart LR"), "{mermaid:?}");
}
