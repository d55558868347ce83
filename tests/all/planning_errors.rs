//! Every planning error is reported before anything runs, at file:line:col
//! with a caret and what was expected, and exits 2.

use crate::util::Project;

/// Runs `cairn run` on `yaml` and returns stderr, asserting exit code 2.
fn error_for(yaml: &str, extra: &[&str]) -> String {
    let p = Project::new();
    p.write("a.wasm", b"not run");
    p.workflow(yaml);
    let mut args = vec!["run", "wf.yaml"];
    args.extend(extra);
    let run = p.cairn(&args);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        !p.path().join(".cairn").exists() || extra.contains(&"--param"),
        "nothing ran"
    );
    run.stderr
}

fn assert_has(stderr: &str, needles: &[&str]) {
    for n in needles {
        assert!(stderr.contains(n), "missing {n:?} in:\n{stderr}");
    }
}

#[test]
fn yaml_syntax_errors() {
    let e = error_for("jobs:\n  a:\n    uses: a.wasm\n    args: [x, y\n", &[]);
    assert_has(&e, &["error: invalid YAML", "--> wf.yaml:5:1"]);
}

#[test]
fn unknown_keys_with_suggestions() {
    let e = error_for("jobs:\n  a:\n    uses: a.wasm\n    outptus: [x]\n", &[]);
    assert_has(
        &e,
        &[
            "error: unknown key `outptus`",
            "--> wf.yaml:4:5",
            "4 |     outptus: [x]",
            "  |     ^^^^^^^ expected one of: uses, needs",
            "did you mean `outputs`?",
        ],
    );
}

#[test]
fn unknown_references() {
    let e = error_for(
        "params:\n  n: 1\njobs:\n  a:\n    uses: a.wasm\n    outputs: [out]\n  b:\n    uses: a.wasm\n    args: ['${{ params.m }}']\n    inputs:\n      x: ${{ jobs.a.outputs.otu }}\n      y: ${{ jobs.c.outputs.out }}\n      z: ${{ inputs.nope }}\n",
        &[],
    );
    assert_has(
        &e,
        &[
            "error: no parameter named `m`",
            "--> wf.yaml:9:24",
            "error: job `a` has no output `otu`",
            "--> wf.yaml:11:29",
            "expected one of job `a`'s outputs: out",
            "error: no job named `c`",
            "--> wf.yaml:12:19",
            "error: no workflow input named `nope`",
            "expected an input declared under `inputs:`; this workflow declares none",
            "4 errors in wf.yaml",
        ],
    );
}

#[test]
fn cycles_name_every_job() {
    let e = error_for(
        "jobs:\n  a:\n    uses: a.wasm\n    needs: [c]\n  b:\n    uses: a.wasm\n    needs: [a]\n  c:\n    uses: a.wasm\n    needs: [b]\n",
        &[],
    );
    assert_has(
        &e,
        &[
            "error: jobs `a`, `b`, `c` depend on each other in a cycle",
            "--> wf.yaml:",
        ],
    );
}

#[test]
fn missing_component_files() {
    let e = error_for("jobs:\n  a:\n    uses: tasks/nothing.wasm\n", &[]);
    assert_has(
        &e,
        &[
            "error: component not found:",
            "--> wf.yaml:3:11",
            "^^^^^^^^^^^^^^^^^^ expected a .wasm component or a task source directory",
        ],
    );
}

#[test]
fn undeclared_params_and_inputs_on_the_command_line() {
    let e = error_for(
        "params:\n  top: 3\njobs:\n  a:\n    uses: a.wasm\n",
        &["--param", "tpo=4"],
    );
    assert_has(
        &e,
        &[
            "--param tpo=4: the workflow declares no parameter `tpo`",
            "expected one of: top",
            "did you mean `--param top=4`?",
        ],
    );
}

#[test]
fn usage_errors_exit_2() {
    let p = Project::new();
    let run = p.cairn(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = p.cairn(&["run", "missing.yaml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("cannot read workflow missing.yaml"),
        "{run:?}"
    );
    let help = p.cairn(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit codes:"), "{help:?}");
}

#[test]
fn an_output_declared_twice_is_refused_where_it_is_written() {
    let e = error_for(
        "jobs:\n  a:\n    uses: a.wasm\n    outputs: [report]\n    stdout: report\n  b:\n    uses: a.wasm\n    outputs: [x, y, x]\n  c:\n    uses: a.wasm\n    inputs:\n      y: ${{ jobs.b.outputs.y }}\n      x: ${{ jobs.b.outputs.x }}\n    outputs: [x]\n",
        &[],
    );
    assert_has(
        &e,
        &[
            "error: output `report` of job `a` is declared twice",
            "--> wf.yaml:5:13",
            "expected each output once, either under `outputs:` (a file in /out) or as `stdout:`",
            "the output `report` is at line 4, column 15",
            "error: output `x` of job `b` is declared twice",
            "--> wf.yaml:8:21",
            // An input and an output may share a name (job `c`): /in/x and
            // /out/x are two files.
            "2 errors in wf.yaml",
        ],
    );
}

#[test]
fn names_that_are_not_one_path_component_are_refused() {
    let e = error_for(
        "jobs:\n  a:\n    uses: a.wasm\n    outputs: ['../../etc/x', /abs, ok]\n    stdout: 'a/b'\n  b:\n    uses: a.wasm\n    inputs:\n      '..': ${{ jobs.a.outputs.ok }}\n  'c/d':\n    uses: a.wasm\n",
        &[],
    );
    assert_has(
        &e,
        &[
            "error: `../../etc/x` is not a valid name: it would be the file /out/../../etc/x",
            "--> wf.yaml:4:15",
            "expected one path component of letters, digits",
            "error: `/abs` is not a valid name: it would be the file /out//abs",
            "error: `a/b` is not a valid name: it would be the file /out/a/b",
            "error: `..` is not a valid name: it would be the file /in/..",
            "--> wf.yaml:9:7",
            "error: `c/d` is not a valid name",
            "--> wf.yaml:10:3",
        ],
    );
}

#[test]
fn a_matrix_past_a_million_jobs_is_refused_before_it_is_expanded() {
    let keys: Vec<String> = (0..7)
        .map(|i| format!("        k{i}: [0, 1, 2, 3, 4, 5, 6, 7]"))
        .collect();
    let e = error_for(
        &format!(
            "jobs:\n  a:\n    uses: a.wasm\n    strategy:\n      matrix:\n{}\n",
            keys.join("\n")
        ),
        &[],
    );
    assert_has(
        &e,
        &[
            "error: job `a` would make the workflow 2097152 jobs",
            "--> wf.yaml:6:9",
            "expected at most 1000000 jobs in one workflow",
        ],
    );
}

#[test]
fn references_to_outputs_a_task_does_not_have_are_refused_before_anything_runs() {
    let p = Project::new();
    // The producers' outputs are known only from the components: a command
    // that declares none, and a typed task whose signature has no `nope`.
    p.workflow(
        "jobs:\n  quiet:\n    uses: {NOOP}\n  typed:\n    uses: {TYPED_GENERATE}\n    with: { bytes: 2 }\n  a:\n    uses: {COPY}\n    args: [x, y]\n    inputs:\n      x: ${{ jobs.quiet.outputs.x }}\n    outputs: [y]\n  b:\n    uses: {COPY}\n    args: [x, y]\n    inputs:\n      x: ${{ jobs.typed.outputs.nope }}\n    outputs: [y]\n",
    );
    let run = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_has(
        &run.stderr,
        &[
            "error: job `quiet` has no output `x`",
            "--> wf.yaml:11:10",
            "expected an output of job `quiet`, which has none",
            "error: job `typed` has no output `nope`",
            "--> wf.yaml:17:10",
        ],
    );
    let runs = p.cairn(&["runs", "--json"]).json();
    assert_eq!(runs.as_array().map(Vec::len), Some(0), "nothing ran");
}
