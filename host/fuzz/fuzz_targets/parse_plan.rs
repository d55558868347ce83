//! Workflow text → `spec::parse` → `plan::plan`, with every diagnostic
//! rendered (the caret rendering does column arithmetic). Any panic is a bug:
//! both functions must turn every input into a value or diagnostics.
//!
//! Besides "no panic", it checks the contracts that `Plan` documents: job ids
//! are positions, dependencies come before dependents and are ascending, every
//! job an input or a `with:` argument reads from is a dependency,
//! command-line overrides win, and `Diagnostics` is never empty.
#![no_main]

use cairn_fuzz::workflow::cond::{Field, Kind, Read};
use cairn_fuzz::workflow::diag::{Diagnostics, Source};
use cairn_fuzz::workflow::plan::{self, Arg, InputSource, JobId, Overrides, Plan};
use cairn_fuzz::workflow::spec::{self, Workflow};
use libfuzzer_sys::fuzz_target;
use serde_json::Value as Json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let wf = match spec::parse(Source::new("fuzz.yaml", text), "fuzz") {
        Ok(wf) => wf,
        Err(e) => {
            render(&e);
            return;
        }
    };

    check(&wf, &Overrides::default());

    // A value taken from the data: the last line, at most 32 characters.
    let value: String = text.lines().last().unwrap_or("").chars().take(32).collect();

    // Overrides of what the workflow declares (the success path: they must win).
    let declared = Overrides {
        params: wf
            .params
            .first()
            .map(|p| (p.name.value.clone(), value.clone()))
            .into_iter()
            .collect(),
        inputs: wf
            .inputs
            .first()
            .map(|i| (i.name.value.clone(), value.clone()))
            .into_iter()
            .collect(),
    };
    check(&wf, &declared);

    // Overrides whose names come from the data: usually undeclared, which
    // exercises the "did you mean" diagnostics without a position.
    let word = value.split_whitespace().next().unwrap_or("").to_string();
    let guessed = Overrides {
        params: vec![(word.clone(), value.clone())],
        inputs: vec![(word.trim_end_matches(':').to_string(), value)],
    };
    check(&wf, &guessed);
});

fn render(e: &Diagnostics) {
    assert!(!e.items.is_empty(), "Diagnostics with no items");
    let _ = e.to_string();
}

fn check(wf: &Workflow, ov: &Overrides) {
    match plan::plan(wf, ov) {
        Ok(p) => check_plan(&p, ov),
        Err(e) => render(&e),
    }
}

fn check_plan(p: &Plan, ov: &Overrides) {
    for (i, job) in p.jobs.iter().enumerate() {
        if let Some(c) = &job.cond {
            // Every job a condition reads is one it waits for, and one in
            // `cond_jobs`; `watches` are among the deps.
            for (dep, _) in c.jobs() {
                let id = job.cond_jobs[dep];
                assert!(job.deps.binary_search(&id).is_ok(), "`{}` reads {dep}", job.name);
            }
            // Typing and evaluating never panic, whatever the kinds.
            for kind in [Kind::Number, Kind::String, Kind::Bool] {
                let _ = c.check(&|_, _, _| Ok(kind));
            }
            let _ = c.eval(&|r| {
                Ok(match r {
                    Read::Output(_, o) => Json::from(o.len()),
                    Read::Status(_, Field::ExitCode) => Json::from(-1),
                    Read::Status(_, _) => Json::from("failure"),
                })
            });
        }
        assert!(
            job.watches.iter().all(|w| job.deps.binary_search(w).is_ok()),
            "watches of `{}` are deps",
            job.name
        );
        assert_eq!(job.id, i, "job `{}` has id {} at position {i}", job.name, job.id);
        assert!(
            job.deps.windows(2).all(|w| w[0] < w[1]),
            "deps of `{}` are not strictly ascending: {:?}",
            job.name,
            job.deps
        );
        assert!(
            job.deps.iter().all(|&d| d < job.id),
            "job `{}` ({}) depends on a later job: {:?}",
            job.name,
            job.id,
            job.deps
        );
        let with_sources = job.with.iter().filter_map(|(name, arg)| match arg {
            Arg::Source(source, _) => Some((&name.value, source)),
            Arg::Literal(_) => None,
        });
        for (name, source) in job.inputs.iter().map(|(n, s)| (n, s)).chain(with_sources) {
            let mut from = Vec::new();
            producers(source, &mut from);
            for j in from {
                assert!(
                    job.deps.binary_search(&j).is_ok(),
                    "input or `with:` argument `{name}` of `{}` reads job {j}, not among its deps {:?}",
                    job.name,
                    job.deps
                );
            }
        }
    }
    for (k, v) in &ov.params {
        if let Some(got) = p.params.get(k) {
            let last = ov.params.iter().rev().find(|(k2, _)| k2 == k).unwrap();
            assert_eq!(got, &last.1, "--param {k}={v} did not win");
        }
    }
    for (k, path) in &ov.inputs {
        if let Some(i) = p.inputs.iter().find(|i| &i.name == k) {
            let last = ov.inputs.iter().rev().find(|(k2, _)| k2 == k).unwrap();
            assert_eq!(i.path, last.1, "--input {k}={path} did not win");
            assert!(i.span.is_none(), "--input {k} kept the file's span");
        }
    }
}

fn producers(source: &InputSource, out: &mut Vec<JobId>) {
    match source {
        InputSource::Workflow(_) => {}
        InputSource::Output { job, .. } => out.push(*job),
        InputSource::List(items) => items.iter().for_each(|s| producers(s, out)),
    }
}
