//! What editors and shells read: the workflow file's JSON Schema (`cairn
//! schema`, and its committed copy `host/workflow.schema.json`), checked
//! with a real JSON Schema validator against every example workflow and a
//! corpus of bad files (`tests/schema/bad/`); and the shell completions.

use crate::util::run_cairn;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn schema() -> Value {
    let run = run_cairn(root(), &["schema"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).unwrap()
}

/// A YAML document as the JSON value an editor's schema check sees.
fn yaml_to_json(text: &str) -> Value {
    use yaml_rust2::Yaml;
    fn conv(y: &Yaml) -> Value {
        match y {
            Yaml::Null => Value::Null,
            Yaml::Boolean(b) => Value::Bool(*b),
            Yaml::Integer(i) => Value::from(*i),
            Yaml::Real(r) => {
                serde_json::Number::from_f64(r.parse().unwrap()).map_or(Value::Null, Value::Number)
            }
            Yaml::String(s) => Value::String(s.clone()),
            Yaml::Array(items) => Value::Array(items.iter().map(conv).collect()),
            Yaml::Hash(h) => Value::Object(
                h.iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Yaml::String(s) => s.clone(),
                            Yaml::Integer(i) => i.to_string(),
                            Yaml::Real(r) => r.clone(),
                            Yaml::Boolean(b) => b.to_string(),
                            other => panic!("a mapping key {other:?}"),
                        };
                        (key, conv(v))
                    })
                    .collect(),
            ),
            other => panic!("unexpected YAML {other:?}"),
        }
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(text).unwrap();
    docs.first().map_or(Value::Null, conv)
}

fn errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn example_workflows() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(root().join("examples")).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).into_iter().flatten() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(p);
            }
        }
    }
    found.sort();
    assert!(found.len() >= 3, "examples/ has its workflows: {found:?}");
    found
}

#[test]
fn the_committed_schema_is_what_cairn_schema_prints() {
    let printed = run_cairn(root(), &["schema"], &[]).stdout;
    let committed = std::fs::read_to_string(root().join("host/workflow.schema.json")).unwrap();
    assert!(
        printed == committed,
        "host/workflow.schema.json differs from `cairn schema`; regenerate it with \
         `cargo run -p cairn -- schema > host/workflow.schema.json`"
    );
}

#[test]
fn the_schema_is_a_valid_draft_7_schema_with_help_on_every_key() {
    let schema = schema();
    assert!(jsonschema::meta::is_valid(&schema));
    // Every key's examples are valid against that key's own part of the schema.
    fn walk(v: &Value, path: &str, checked: &mut usize) {
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (name, p) in props {
                let here = format!("{path}.{name}");
                assert!(
                    p["description"].as_str().is_some_and(|d| d.len() > 10),
                    "{here}"
                );
                let examples = p["examples"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{here}: no examples"));
                let validator = jsonschema::draft7::new(p).unwrap();
                for e in examples {
                    assert!(
                        validator.is_valid(e),
                        "{here}: its example {e} is invalid: {:?}",
                        errors(&validator, e)
                    );
                    *checked += 1;
                }
                walk(p, &here, checked);
            }
        }
        if let Some(entry) = v.get("additionalProperties").filter(|e| e.is_object()) {
            walk(entry, &format!("{path}.*"), checked);
        }
    }
    let mut checked = 0;
    walk(&schema, "", &mut checked);
    assert!(checked >= 27, "{checked} examples checked");
}

#[test]
fn every_example_workflow_is_valid() {
    let validator = jsonschema::draft7::new(&schema()).unwrap();
    for wf in example_workflows() {
        let text = std::fs::read_to_string(&wf).unwrap();
        assert!(
            text.lines()
                .next()
                .is_some_and(|l| l.starts_with("# yaml-language-server: $schema=")),
            "{} names the schema for editors on its first line",
            wf.display()
        );
        let doc = yaml_to_json(&text);
        let errs = errors(&validator, &doc);
        assert!(errs.is_empty(), "{}: {errs:#?}", wf.display());
        // And the parser agrees.
        cairn::parse(cairn::Source::new(wf.display().to_string(), text), "wf")
            .unwrap_or_else(|d| panic!("{d}"));
    }
}

#[test]
fn every_bad_file_is_rejected_by_the_schema_and_by_cairn() {
    let validator = jsonschema::draft7::new(&schema()).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/schema/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let why = text.lines().next().unwrap_or_default();
        assert!(
            why.starts_with("# "),
            "{}: first line says what is wrong",
            f.display()
        );
        assert!(
            !validator.is_valid(&yaml_to_json(&text)),
            "{} ({why}) passes the schema",
            f.display()
        );
        let parsed = cairn::parse(cairn::Source::new("bad.yaml", text.as_str()), "bad");
        let planned = parsed.and_then(|wf| cairn::plan(&wf, &Default::default()));
        assert!(
            planned.is_err(),
            "{} ({why}) is accepted by cairn",
            f.display()
        );
    }
}

#[test]
fn names_the_schema_accepts_are_the_names_cairn_accepts() {
    let schema = schema();
    let pattern = &schema["properties"]["jobs"]["propertyNames"]["pattern"];
    let names =
        jsonschema::draft7::new(&serde_json::json!({ "type": "string", "pattern": pattern }))
            .unwrap();
    for name in ["a", "_x-1", "Split2", "1a", "-a", "a.b", "a b", "é", "a_"] {
        let text = format!("jobs:\n  \"{name}\":\n    uses: a.wasm\n");
        let cairn_ok = cairn::parse(cairn::Source::new("wf.yaml", text.as_str()), "wf").is_ok();
        assert_eq!(names.is_valid(&Value::from(name)), cairn_ok, "{name:?}");
    }
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let run = run_cairn(root(), &["completions", shell], &[]);
        assert_eq!(run.code, 0, "{run:?}");
        for sub in ["serve", "schema", "completions", "run", "plan"] {
            assert!(run.stdout.contains(sub), "{shell}: no `{sub}`");
        }
    }
    // Bash can read what it is given.
    let script = run_cairn(root(), &["completions", "bash"], &[]).stdout;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cairn.bash");
    std::fs::write(&file, &script).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p cairn", file.display()))
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert!(String::from_utf8_lossy(&check.stdout).contains("cairn"));
    let bad = run_cairn(root(), &["completions", "tcsh"], &[]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("bash, zsh, fish"), "{bad:?}");
}
