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
