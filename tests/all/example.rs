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

/// Copies `from` to `to`, leaving out build output and stores.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "target" || name == ".cairn" {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Whether `actual` is `expected` as the README prints it: the same words,
/// where a word the README shortens with `…` is a prefix.
fn printed_as(expected: &str, actual: &str) -> bool {
    let (e, a): (Vec<&str>, Vec<&str>) = (
        expected.split_whitespace().collect(),
        actual.split_whitespace().collect(),
    );
    e.len() == a.len()
        && e.iter().zip(&a).all(|(e, a)| match e.strip_suffix('…') {
            Some(prefix) => a.starts_with(prefix),
            None => e == a,
        })
}

/// The README's detached example, each command exactly as printed, from
/// the top of a checkout with no store: the run keeps its store where the
/// queries look for it, and each command prints what the README shows.
#[test]
fn the_readmes_detached_example_works_as_printed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("$ cairn run examples/wordcount/wordcount.yaml --param top=4 --detach")
        .expect("the README shows the detached example");
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    // Commands and what each prints.
    let mut steps: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in block.lines() {
        match line.strip_prefix("$ ") {
            Some(cmd) => steps.push((cmd, Vec::new())),
            None => steps.last_mut().unwrap().1.push(line),
        }
    }
    assert_eq!(steps.len(), 3, "run, results, why: {block}");
    let printed_id = steps[0].1[0].trim();
    let earlier_id = steps[2].1[0]
        .split("compared with run ")
        .nth(1)
        .and_then(|s| s.strip_suffix(','))
        .expect("why names the earlier run");

    let checkout = tempfile::tempdir().unwrap();
    let top = checkout.path();
    copy_tree(
        &root.join("examples/wordcount"),
        &top.join("examples/wordcount"),
    );
    // The README's first command, whose run `why` compares with.
    let first = run_cairn(top, &["run", "examples/wordcount/wordcount.yaml"], &[]);
    assert_eq!(first.code, 0, "{first:?}");
    let first_id = run_cairn(top, &["runs", "--json"], &[]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut id = String::new();
    for (i, (cmd, expected)) in steps.iter().enumerate() {
        let cmd = cmd.replace(printed_id, &id);
        let args: Vec<&str> = cmd.split_whitespace().collect();
        assert_eq!(args[0], "cairn", "{cmd}");
        let r = run_cairn(top, &args[1..], &[]);
        assert_eq!(r.code, 0, "`{cmd}` exits 0: {r:?}");
        if i == 0 {
            id = r.stdout.trim().to_string();
            assert!(!id.is_empty(), "the detached run prints its id: {r:?}");
            continue;
        }
        let out: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(out.len(), expected.len(), "`{cmd}`: {r:?}");
        for (e, a) in expected.iter().zip(out) {
            let e = e.replace(printed_id, &id).replace(earlier_id, &first_id);
            assert!(
                printed_as(&e, a),
                "`{cmd}` prints\n{a}\nwhere the README shows\n{e}"
            );
        }
    }
}
