//! Type checking a plan against its components' signatures, before anything
//! runs: every typed job's arguments against its export's parameters, and
//! every reference against the type its producer gives. Pure: it takes the
//! signatures; reading them from components happens at the edge.

use crate::workflow::diag::{Diagnostic, Diagnostics, Source, Span};
use crate::workflow::plan::{Arg, InputSource, Plan};
use crate::workflow::typed::{self, Signature, TaskKind, describe, is_artifact};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use wasmtime::component::Type;

/// How one job is called, once checked.
#[derive(Debug, Clone)]
pub enum Call {
    /// A command task: argv and files.
    Command,
    /// A typed task.
    Typed(TypedCall),
}

/// A typed job's call: the signature, literal arguments already converted
/// (as canonical JSON), and the arguments that come from the store.
#[derive(Debug, Clone)]
pub struct TypedCall {
    /// The export's signature.
    pub sig: std::sync::Arc<Signature>,
    /// Literal arguments by parameter name.
    pub literals: BTreeMap<String, Json>,
    /// Arguments from workflow inputs and job outputs, by parameter name.
    pub sources: BTreeMap<String, InputSource>,
}

/// What a producer's output is, as far as planning can tell.
#[derive(Debug, Clone)]
enum Produced {
    /// A value of a WIT type (typed producers).
    Typed(Type),
    /// A command task's output file: an artifact, or a list of them.
    File,
    /// A list of these (a fan-in).
    List(Box<Produced>),
}

impl Produced {
    fn describe(&self) -> String {
        match self {
            Produced::Typed(t) => describe(t),
            Produced::File => "artifact (a file)".into(),
            Produced::List(p) => format!("list<{}>", p.describe()),
        }
    }

    /// Whether a parameter of type `want` accepts this.
    fn fits(&self, want: &Type) -> bool {
        let norm = |s: String| s.replace("borrow<artifact>", "artifact");
        match (self, want) {
            (Produced::Typed(t), w) => widens(t, w) || norm(describe(t)) == norm(describe(w)),
            (Produced::File, w) => {
                is_artifact(w) || matches!(w, Type::List(l) if is_artifact(&l.ty()))
            }
            (Produced::List(p), Type::List(l)) => p.fits(&l.ty()),
            _ => false,
        }
    }
}

/// Whether every value of `from` is a value of `to`: the integer and float
/// widenings, which decode without loss from the canonical encoding.
fn widens(from: &Type, to: &Type) -> bool {
    match (typed::int_range(from), typed::int_range(to)) {
        (Some((a, b)), Some((c, d))) => c <= a && b <= d,
        _ => matches!((from, to), (Type::Float32, Type::Float64)),
    }
}

/// Checks every job of `plan`; `kinds[id]` is job `id`'s component kind.
pub fn check(plan: &Plan, kinds: &[TaskKind], source: &Source) -> Result<Vec<Call>, Diagnostics> {
    let mut errors = Vec::new();
    let mut calls = Vec::new();
    for job in &plan.jobs {
        if let Some(cond) = &job.cond {
            let kind = |dep: &str,
                        output: &str,
                        span: Span|
             -> Result<crate::workflow::cond::Kind, Diagnostic> {
                let id = job.cond_jobs[dep];
                let TaskKind::Typed(sig) = &kinds[id] else {
                    return Err(Diagnostic::at(
                        span,
                        format!("job `{dep}` is a command task; its outputs are files"),
                    )
                    .expected("an output of a typed task: a number, string, char, enum or bool"));
                };
                let outs = sig.outputs();
                let Some((_, ty)) = outs.iter().find(|(n, _)| n == output) else {
                    return Err(no_output(
                        dep,
                        output,
                        outs.iter().map(|(n, _)| n.as_str()).collect(),
                        span,
                    ));
                };
                use crate::workflow::cond::Kind as K;
                match ty {
                    Type::Bool => Ok(K::Bool),
                    Type::String | Type::Char | Type::Enum(_) => Ok(K::String),
                    t if typed::int_range(t).is_some()
                        || matches!(t, Type::Float32 | Type::Float64) =>
                    {
                        Ok(K::Number)
                    }
                    t => Err(
                        Diagnostic::at(span, format!("`{output}` is {}", describe(t)))
                            .expected("a number, string, char, enum or bool to compare"),
                    ),
                }
            };
            match cond.check(&kind) {
                Ok(crate::workflow::cond::Kind::Bool) => {}
                Ok(_) => errors.push(
                    Diagnostic::at(cond.span(), "this condition is not a boolean")
                        .expected("a comparison, or && || ! of comparisons"),
                ),
                Err(d) => errors.push(d),
            }
        }
        let here = job.uses.span;
        match &kinds[job.id] {
            // Fails when it runs, with the loader's classified reason.
            TaskKind::Unusable(_) => calls.push(Call::Command),
            TaskKind::Command => {
                if let Some((name, _)) = job.with.first() {
                    errors.push(
                        Diagnostic::at(name.span, "`with:` given to a command task")
                            .expected("`args:` and `inputs:`: the component is a wasi:cli command, not a typed task"),
                    );
                }
                // Planning checked references to producers that declare
                // outputs; these are the rest (a typed producer, or a
                // command that declares none).
                for ((_, src), span) in job.inputs.iter().zip(&job.input_spans) {
                    if let Err(d) = produced(plan, kinds, src, *span) {
                        errors.push(d);
                    }
                }
                calls.push(Call::Command);
            }
            TaskKind::Typed(sig) => {
                if !job.argv.is_empty()
                    || !job.inputs.is_empty()
                    || !job.outputs.is_empty()
                    || job.stdout.is_some()
                {
                    errors.push(
                        Diagnostic::at(here, format!("`{}` is a typed task", job.uses.value))
                            .expected(format!("its arguments under `with:`, not `args:`/`inputs:`/`outputs:`/`stdout:`: {}", sig.describe())),
                    );
                }
                let mut literals = BTreeMap::new();
                let mut sources = BTreeMap::new();
                for (name, arg) in &job.with {
                    let Some((_, ty)) = sig.params.iter().find(|(p, _)| *p == name.value) else {
                        let names: Vec<&str> = sig.params.iter().map(|(p, _)| p.as_str()).collect();
                        errors.push(
                            Diagnostic::at(
                                name.span,
                                format!("`{}` has no parameter `{}`", sig.export, name.value),
                            )
                            .expected(sig.describe())
                            .suggest(&name.value, names),
                        );
                        continue;
                    };
                    match arg {
                        Arg::Literal(node) => match typed::from_yaml(node, ty) {
                            Ok(v) => {
                                literals.insert(
                                    name.value.clone(),
                                    typed::to_json(&v).expect("literals are plain values"),
                                );
                            }
                            Err(d) => errors.push(d),
                        },
                        Arg::Source(src, span) => match produced(plan, kinds, src, *span) {
                            Ok(p) if p.fits(ty) => {
                                sources.insert(name.value.clone(), src.clone());
                            }
                            Ok(p) => errors.push(
                                Diagnostic::at(*span, format!("this is {}", p.describe()))
                                    .expected(format!(
                                        "{} for parameter `{}`",
                                        describe(ty),
                                        name.value
                                    )),
                            ),
                            Err(d) => errors.push(d),
                        },
                    }
                }
                for (p, ty) in &sig.params {
                    if !job.with.iter().any(|(n, _)| n.value == *p) {
                        if matches!(ty, Type::Option(_)) {
                            literals.insert(p.clone(), Json::Null);
                            continue;
                        }
                        errors.push(
                            Diagnostic::at(
                                here,
                                format!("job `{}` does not give parameter `{p}`", job.name),
                            )
                            .expected(format!(
                                "`{p}: {}` under `with:` ({})",
                                describe(ty),
                                sig.describe()
                            )),
                        );
                    }
                }
                calls.push(Call::Typed(TypedCall {
                    sig: sig.clone(),
                    literals,
                    sources,
                }));
            }
        }
    }
    if errors.is_empty() {
        Ok(calls)
    } else {
        // A matrix job's instances share their `with:` text: say it once.
        errors.sort_by_key(|d| d.span.map(|s| s.start));
        errors.dedup();
        Err(Diagnostics {
            source: source.clone(),
            items: errors,
        })
    }
}

/// What a reference gives, or where it names an output that is not there.
fn produced(
    plan: &Plan,
    kinds: &[TaskKind],
    src: &InputSource,
    span: Span,
) -> Result<Produced, Diagnostic> {
    match src {
        InputSource::Workflow(_) => Ok(Produced::File),
        InputSource::List(items) => {
            let first = items
                .first()
                .map(|i| produced(plan, kinds, i, span))
                .transpose()?;
            Ok(Produced::List(Box::new(first.unwrap_or(Produced::File))))
        }
        InputSource::Output { job, output, index } => {
            let producer = &plan.jobs[*job];
            let item = |p: Produced| -> Result<Produced, Diagnostic> {
                match (index, p) {
                    (None, p) => Ok(p),
                    (Some(_), Produced::File) => Ok(Produced::File),
                    (Some(_), Produced::Typed(Type::List(l))) => Ok(Produced::Typed(l.ty())),
                    (Some(i), p) => Err(Diagnostic::at(
                        span,
                        format!("`{output}` is {}, which has no element {i}", p.describe()),
                    )
                    .expected("a list output")),
                }
            };
            match &kinds[*job] {
                TaskKind::Unusable(_) => Ok(Produced::File),
                TaskKind::Command => {
                    let declared = producer.output_names().any(|o| o == output);
                    if declared {
                        item(Produced::File)
                    } else {
                        Err(no_output(
                            producer.key.as_str(),
                            output,
                            producer.output_names().collect(),
                            span,
                        ))
                    }
                }
                TaskKind::Typed(sig) => {
                    let outs = sig.outputs();
                    match outs.iter().find(|(n, _)| n == output) {
                        Some((_, ty)) => item(Produced::Typed(ty.clone())),
                        None => Err(no_output(
                            producer.key.as_str(),
                            output,
                            outs.iter().map(|(n, _)| n.as_str()).collect(),
                            span,
                        )),
                    }
                }
            }
        }
    }
}

fn no_output(job: &str, output: &str, outs: Vec<&str>, span: Span) -> Diagnostic {
    let expected = if outs.is_empty() {
        format!("an output of job `{job}`, which has none")
    } else {
        format!("one of job `{job}`'s outputs: {}", outs.join(", "))
    };
    Diagnostic::at(span, format!("job `{job}` has no output `{output}`"))
        .expected(expected)
        .suggest(output, outs)
}
