//! The README's example, run as a user would: the real binary, the tasks
//! built from source by cairn itself.

use crate::util::run_cairn;
use std::path::Path;

#[test]
fn the_wordcount_example_runs_and_reruns_from_cache() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let store = tempfile::tempdir().unwrap();
    let store = store.path().to_str().unwrap();
    let wf = root.join("examples/wordcount/wordcount.yaml");
    let wf = wf.to_str().unwrap();
    let env = [("CAIRN_STORE", store)];
    let first = run_cairn(root, &["run", wf, "--param", "top=5"], &env);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stderr.contains("7 jobs, 7 executed"), "{first:?}");
    let line = first
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("report.report"))
        .unwrap();
    let digest = line.split_whitespace().nth(1).unwrap();
    let report = run_cairn(root, &["cat", digest, "--store", store], &[]);
    assert_eq!(report.code, 0, "{report:?}");
    let lines: Vec<&str> = report.stdout.lines().collect();
    assert!(lines[0].starts_with("top 5 of "), "{report:?}");
    assert_eq!(
        lines.len(),
        2 + 5,
        "header, column names, five rows: {report:?}"
    );
    assert!(lines[2].contains(" the "), "the commonest word: {report:?}");

    let again = run_cairn(root, &["run", wf, "--param", "top=5"], &env);
    assert!(again.stderr.contains("0 executed, 7 cached"), "{again:?}");
    assert_eq!(first.stdout, again.stdout);
}

#[test]
fn the_typed_wordcount_example_gives_the_same_counts_as_the_command_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let store = tempfile::tempdir().unwrap();
    let store = store.path().to_str().unwrap();
    let run = |wf: &str| {
        let wf = root.join(wf);
        let r = run_cairn(root, &["run", wf.to_str().unwrap(), "--store", store], &[]);
        assert_eq!(r.code, 0, "{r:?}");
        let id = run_cairn(root, &["runs", "--store", store, "--json"], &[]).json()[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        run_cairn(
            root,
            &["results", &id, "--all", "--json", "--store", store],
            &[],
        )
        .json()
    };
    let digest = |results: &serde_json::Value, job: &str| -> String {
        let o = results["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["job"] == job)
            .unwrap();
        o["value"]["blob"]["digest"].as_str().unwrap().to_string()
    };
    let command = run("examples/wordcount/wordcount.yaml");
    let typed = run("examples/wordcount-typed/wordcount.yaml");
    // The merged counts are byte-identical, whichever kind of task made them.
    assert_eq!(digest(&command, "merge"), digest(&typed, "merge"));
    let cat = |d: String| run_cairn(root, &["cat", &d, "--store", store], &[]).stdout;
    let table: String = serde_json::from_str(&cat(digest(&typed, "report"))).unwrap();
    assert_eq!(table, cat(digest(&command, "report")));
}
