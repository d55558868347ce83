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

/// A plan decides an `if:` it can decide before running, and says what an
/// undecided one waits for; the run then does what the plan said.
#[test]
fn plan_honours_if() {
    let p = Project::new();
    p.workflow(
        "params:
  mode: fast
jobs:
  first:
    uses: {ECHO_ARGS}
    args: [one]
  full:
    uses: {ECHO_ARGS}
    args: [two]
    if: ${{ params.mode == 'full' }}
  after:
    uses: {ECHO_ARGS}
    needs: full
  handler:
    uses: {ECHO_ARGS}
    if: ${{ jobs.first.result == 'success' }}
",
    );
    let plan = p.cairn(&["plan", "wf.yaml"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let line = |job: &str| {
        plan.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(job))
            .unwrap_or_else(|| panic!("no line for {job}: {plan:?}"))
            .to_string()
    };
    assert!(
        line("full").contains("skipped") && line("full").contains("(if: 'fast' == 'full')"),
        "{plan:?}"
    );
    assert!(
        line("after").contains("(needs full, which is skipped)"),
        "{plan:?}"
    );
    assert!(line("handler").contains("if: depends on first"), "{plan:?}");
    assert!(line("first").trim_start().starts_with("runs"), "{plan:?}");
    assert!(plan.stdout.contains("2 would be skipped"), "{plan:?}");

    // Once `first` is cached, the handler's condition is decided too.
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    let again = p.cairn(&["plan", "wf.yaml"]);
    let handler = again
        .stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("handler"))
        .unwrap_or_default()
        .to_string();
    assert!(handler.trim_start().starts_with("cached"), "{again:?}");
    let full = p.cairn(&["plan", "wf.yaml", "--param", "mode=full"]);
    assert!(
        !full.stdout.contains("skipped"),
        "with mode=full nothing is skipped: {full:?}"
    );
}

/// Labels a job sets are shown by `status` (text and JSON) and select runs
/// in `runs --label`.
#[test]
fn labels_are_shown_and_queried() {
    let p = Project::new();
    p.workflow(
        "params:\n  who: ann\njobs:\n  ctx:\n    uses: {TYPED_CONTEXT}\n    with: { name: '${{ params.who }}' }\n  plain:\n    uses: {ECHO_ARGS}\n",
    );
    for who in ["ann", "bob"] {
        let run = p.cairn(&["run", "wf.yaml", "--param", &format!("who={who}")]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    let ids = |filter: &[&str]| -> Vec<String> {
        let mut args = vec!["runs", "--json"];
        args.extend_from_slice(filter);
        let r = p.cairn(&args);
        assert_eq!(r.code, 0, "{r:?}");
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = ids(&[]);
    assert_eq!(all.len(), 2);
    // Newest first: bob's run, then ann's.
    assert_eq!(ids(&["--label", "owner=ann"]), vec![all[1].clone()]);
    assert_eq!(ids(&["--label", "owner=bob"]), vec![all[0].clone()]);
    assert!(ids(&["--label", "owner=cat"]).is_empty());
    assert!(ids(&["--label", "owner=ann", "--label", "owner=bob"]).is_empty());
    let bad = p.cairn(&["runs", "--label", "owner"]);
    assert_eq!(bad.code, 2, "{bad:?}");

    let status = p.cairn(&["status", &all[1]]);
    assert!(status.stdout.contains("labels  owner=ann"), "{status:?}");
    let json = p.cairn(&["status", &all[1], "--json"]).json();
    assert_eq!(
        json["run"]["labels"],
        serde_json::json!([{ "key": "owner", "value": "ann" }])
    );
    let job = |name: &str| {
        json["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(job("ctx")["labels"], serde_json::json!({ "owner": "ann" }));
    assert_eq!(job("plain")["labels"], serde_json::json!({}));
}

/// `run`, `plan` and `check` speak JSON with the same job fields as
/// `status --json`; `run --json` prints one object per line as it goes.
#[test]
fn run_plan_and_check_print_json_with_the_same_job_fields() {
    let p = Project::new();
    p.workflow(
        "jobs:\n  a:\n    uses: {ECHO_ARGS}\n    args: [hi]\n    stdout: out\n  b:\n    uses: {ECHO_ARGS}\n    args: [there]\n    needs: a\n    stdout: out\n",
    );
    let common = |job: &serde_json::Value, what: &str| {
        for field in ["job", "name", "deps", "status"] {
            assert!(job.get(field).is_some(), "{what}: no `{field}` in {job}");
        }
    };

    let check = p.cairn(&["check", "wf.yaml", "--json"]);
    assert_eq!(check.code, 0, "{check:?}");
    let check = check.json();
    assert_eq!(check["ok"], true);
    assert_eq!(check["jobs"][1]["name"], "b");
    assert_eq!(check["jobs"][1]["deps"], serde_json::json!([0]));
    assert_eq!(check["jobs"][0]["kind"], "command");
    check["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .for_each(|j| common(j, "check"));

    let plan = p.cairn(&["plan", "wf.yaml", "--json"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let plan = plan.json();
    assert_eq!(plan["jobs"][0]["status"], "runs");
    assert_eq!(plan["jobs"][1]["status"], "waits");
    assert_eq!(plan["runs"], 1);
    let key = plan["jobs"][0]["cache_key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);
    plan["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .for_each(|j| common(j, "plan"));
    assert_eq!(
        p.cairn(&["plan", "wf.yaml", "--format", "json"]).json(),
        plan,
        "--format json is --json"
    );

    let run = p.cairn(&["run", "wf.yaml", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["event"], "started", "{run:?}");
    let id = lines[0]["run"].as_str().unwrap().to_string();
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "finished");
    assert_eq!(last["run"], id.as_str());
    assert_eq!(last["status"], "succeeded");
    assert_eq!(
        (last["executed"].clone(), last["cached"].clone()),
        (2.into(), 0.into())
    );
    assert_eq!(
        last["outputs"][0]["job"], "b",
        "the final job's outputs: {last}"
    );
    let done: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["event"] == "done")
        .map(|l| &l["job"])
        .collect();
    assert_eq!(done.len(), 2, "{run:?}");
    done.iter().for_each(|j| common(j, "run"));
    let a = done.iter().find(|j| j["name"] == "a").unwrap();
    assert_eq!(a["status"], "executed");
    assert_eq!(a["cache_key"], key.as_str(), "the key the plan gave");
    assert!(a["outputs"]["out"]["blob"]["digest"].is_string(), "{a}");
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "running" && l["job"]["name"] == "a"),
        "{run:?}"
    );

    let status = p.cairn(&["status", &id, "--json"]).json();
    status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .for_each(|j| common(j, "status"));
    assert_eq!(status["jobs"][0]["cache_key"], key.as_str());

    let again = p.cairn(&["run", "wf.yaml", "--json"]);
    let last: serde_json::Value =
        serde_json::from_str(again.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["cached"], 2, "{again:?}");

    // Problems as data, with where they are.
    p.workflow("jobs:\n  a:\n    uses: {ECHO_ARGS}\n    needs: nope\n");
    let bad = p.cairn(&["check", "wf.yaml", "--json"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    let bad = bad.json();
    assert_eq!(bad["ok"], false);
    assert_eq!(bad["problems"][0]["line"], 4, "{bad}");
    assert!(bad["problems"][0]["col"].is_number(), "{bad}");
    assert!(
        bad["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nope"),
        "{bad}"
    );
}
