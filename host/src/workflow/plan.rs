//! Planning: a parsed workflow and the command line's overrides become a DAG
//! of concrete jobs (matrices expanded, references resolved). Pure: no I/O.

use crate::workflow::diag::{Diagnostic, Diagnostics, Span, did_you_mean};
use crate::workflow::spec::{
    Index, JobSpec, Limits, Part, Ref, RefKind, Retry, Spanned, Template, Workflow,
};
use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The most jobs one workflow may expand to: a matrix can multiply quickly,
/// and a plan that large is a mistake, not a workflow.
pub const MAX_JOBS: usize = 1_000_000;

/// The most bytes a job's arguments may add up to once references are
/// substituted: what Linux allows a program (`ARG_MAX` is 2 MiB with the
/// environment), and far past what a task needs; inputs carry data.
pub const MAX_ARGV_BYTES: usize = 1 << 20;

/// Values given on the command line that replace the workflow's own.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--param k=v`, in order; a later one wins.
    pub params: Vec<(String, String)>,
    /// `--input name=path`, in order; a later one wins.
    pub inputs: Vec<(String, String)>,
}

/// A planned job's position in [`Plan::jobs`].
pub type JobId = usize;

/// A workflow ready to schedule.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The workflow's name.
    pub name: String,
    /// Parameter values after command-line overrides.
    pub params: BTreeMap<String, String>,
    /// Workflow inputs and the host paths they come from.
    pub inputs: Vec<PlannedInput>,
    /// Every job after matrix expansion, dependencies before dependents.
    pub jobs: Vec<PlannedJob>,
}

/// A workflow input.
#[derive(Debug, Clone)]
pub struct PlannedInput {
    /// Its name.
    pub name: String,
    /// The host path, relative to the workflow file unless overridden.
    pub path: String,
    /// Where the path was written, or `None` when it came from `--input`.
    pub span: Option<Span>,
}

/// One job to run: one call of one component.
#[derive(Debug, Clone)]
pub struct PlannedJob {
    /// Its position in [`Plan::jobs`].
    pub id: JobId,
    /// The display name: the job's key, plus matrix values (`count[i=0]`).
    pub name: String,
    /// The job's key in the workflow file.
    pub key: String,
    /// The component path as written, relative to the workflow file.
    pub uses: Spanned<String>,
    /// Arguments with every reference substituted.
    pub argv: Vec<String>,
    /// Declared inputs and where their bytes come from.
    pub inputs: Vec<(String, InputSource)>,
    /// Where each of `inputs` was written (its first reference, for a list).
    pub input_spans: Vec<Span>,
    /// Declared outputs, read from `/out`.
    pub outputs: Vec<String>,
    /// The output name that keeps standard output, if any.
    pub stdout: Option<String>,
    /// Jobs that must finish first, ascending.
    pub deps: Vec<JobId>,
    /// Sandbox limits written on the job.
    pub limits: Limits,
    /// Retries of a failure.
    pub retry: Retry,
    /// Fixed clocks and seeded randomness.
    pub hermetic: bool,
    /// Whether its results are looked up in and stored to the action cache.
    pub cacheable: bool,
    /// A typed task's export to call, when named.
    pub call: Option<Spanned<String>>,
    /// A typed task's arguments, by parameter name, in file order.
    pub with: Vec<(Spanned<String>, Arg)>,
    /// Secrets the job may read, by name, with where each was declared.
    pub secrets: Vec<Spanned<String>>,
    /// Key results on a store-keyed hash of each secret's value.
    pub secrets_in_key: bool,
    /// `if:` with params and matrix values substituted; its output
    /// references name jobs by key, resolved through `cond_jobs`.
    pub cond: Option<crate::workflow::cond::Expr>,
    /// The job each reference in `cond` reads, by job key.
    pub cond_jobs: BTreeMap<String, JobId>,
    /// Dependencies this job waits to end but not to succeed: jobs whose
    /// `result`, `cause` or `exit_code` its `if:` reads, and nothing else
    /// of. Their failure does not skip it. Ascending.
    pub watches: Vec<JobId>,
}

/// A typed task's argument after planning.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A literal, with params and matrix values substituted; typed against
    /// the parameter once the component's signature is known.
    Literal(crate::workflow::yaml::Node),
    /// An artifact or value from the store, and where it was referenced.
    Source(InputSource, Span),
}

/// Where an input's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// A workflow input, by name.
    Workflow(String),
    /// An output of an earlier job; `index` picks one element of a list output.
    Output {
        /// The producing job.
        job: JobId,
        /// Its output's name.
        output: String,
        /// An element of a list output.
        index: Option<usize>,
    },
    /// A fan-in: one element per instance of a matrix job, in matrix order.
    List(Vec<InputSource>),
}

impl PlannedJob {
    /// Every output name this job produces.
    pub fn output_names(&self) -> impl Iterator<Item = &str> {
        self.outputs
            .iter()
            .map(String::as_str)
            .chain(self.stdout.as_deref())
    }
}

/// Plans a workflow: checks every reference, expands matrices, orders jobs.
pub fn plan(wf: &Workflow, overrides: &Overrides) -> Result<Plan, Diagnostics> {
    let mut errors = Vec::new();
    let params = resolve_params(wf, overrides, &mut errors);
    let inputs = resolve_inputs(wf, overrides, &mut errors);
    let by_name: HashMap<&str, &JobSpec> =
        wf.jobs.iter().map(|j| (j.name.value.as_str(), j)).collect();
    let job_names: Vec<&str> = wf.jobs.iter().map(|j| j.name.value.as_str()).collect();

    // Job-level edges, checked before expansion so a cycle is reported once.
    let mut graph: DiGraphMap<&str, Span> = DiGraphMap::new();
    for job in &wf.jobs {
        graph.add_node(&job.name.value);
    }
    for job in &wf.jobs {
        for need in &job.needs {
            match by_name.get(need.value.as_str()) {
                Some(dep) => {
                    graph.add_edge(&dep.name.value, &job.name.value, need.span);
                }
                None => errors.push(unknown_job(need, &job_names)),
            }
        }
        for (dep, span) in job.cond.iter().flat_map(|c| c.jobs()) {
            match by_name.get(dep) {
                Some(d) => {
                    graph.add_edge(&d.name.value, &job.name.value, span);
                }
                None => errors.push(unknown_job(
                    &Spanned {
                        value: dep.to_string(),
                        span,
                    },
                    &job_names,
                )),
            }
        }
        for r in job_refs(job) {
            check_ref(wf, job, r, &params, &by_name, &job_names, &mut errors);
            if let RefKind::Output { job: dep, .. } = &r.kind
                && let Some(dep) = by_name.get(dep.value.as_str())
            {
                graph.add_edge(&dep.name.value, &job.name.value, r.span);
            }
        }
    }
    for scc in tarjan_scc(&graph) {
        let cyclic = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if !cyclic {
            continue;
        }
        let mut members: Vec<&JobSpec> = scc.iter().map(|n| by_name[n]).collect();
        members.sort_by_key(|j| j.name.span.start);
        let names: Vec<&str> = members.iter().map(|j| j.name.value.as_str()).collect();
        let first = members[0].name.value.as_str();
        let span = scc
            .iter()
            .find_map(|from| {
                graph
                    .edge_weight(from, first)
                    .filter(|_| scc.contains(from))
            })
            .copied()
            .unwrap_or(members[0].name.span);
        let cycle = if names.len() == 1 {
            format!("job `{first}` depends on itself")
        } else {
            format!(
                "jobs {} depend on each other in a cycle",
                quote_list(&names)
            )
        };
        errors.push(
            Diagnostic::at(span, cycle)
                .expected("a DAG: remove one of these references or `needs:`"),
        );
    }
    if !errors.is_empty() {
        return Err(fail(wf, errors));
    }

    // Expand matrices in dependency order, so every reference resolves to ids
    // that already exist.
    let order = stable_topo_order(&graph, &job_names);
    let mut instances: HashMap<&str, Vec<JobId>> = HashMap::new();
    let mut jobs: Vec<PlannedJob> = Vec::new();
    let mut broken: HashSet<&str> = HashSet::new();
    let mut planned = 0usize;
    for name in order {
        let spec = by_name[name];
        // A job downstream of one that could not be expanded is not expanded
        // either: the error upstream is the one to report.
        let upstream = job_refs(spec)
            .filter_map(|r| match &r.kind {
                RefKind::Output { job, .. } => Some(job.value.as_str()),
                _ => None,
            })
            .chain(spec.needs.iter().map(|n| n.value.as_str()))
            .chain(spec.cond.iter().flat_map(|c| c.jobs()).map(|(j, _)| j));
        if upstream.into_iter().any(|j| broken.contains(j)) {
            broken.insert(name);
            continue;
        }
        let count: usize = spec
            .matrix
            .iter()
            .map(|(_, v)| v.len())
            .try_fold(1usize, |a, n| a.checked_mul(n))
            .unwrap_or(usize::MAX);
        planned = planned.saturating_add(count);
        if planned > MAX_JOBS {
            let span = spec.matrix.first().map_or(spec.name.span, |(k, _)| k.span);
            errors.push(
                Diagnostic::at(
                    span,
                    format!("job `{name}` would make the workflow {planned} jobs"),
                )
                .expected(format!("at most {MAX_JOBS} jobs in one workflow")),
            );
            broken.insert(name);
            continue;
        }
        let mut ids = Vec::new();
        for combo in matrix_combinations(spec) {
            let ctx = Ctx {
                params: &params,
                matrix: &combo,
                instances: &instances,
                jobs: &jobs,
            };
            let id = jobs.len();
            match ctx.expand(spec, id) {
                Ok(job) => jobs.push(job),
                Err(d) => {
                    errors.push(d);
                    broken.insert(name);
                    continue;
                }
            }
            ids.push(id);
        }
        instances.insert(name, ids);
    }
    if !errors.is_empty() {
        errors.dedup_by(|a, b| a == b);
        return Err(fail(wf, errors));
    }
    Ok(Plan {
        name: wf.name.clone(),
        params,
        inputs,
        jobs,
    })
}

fn fail(wf: &Workflow, mut items: Vec<Diagnostic>) -> Diagnostics {
    items.sort_by_key(|d| d.span.map(|s| s.start));
    Diagnostics {
        source: wf.source.clone(),
        items,
    }
}

fn quote_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

fn unknown_job(name: &Spanned<String>, jobs: &[&str]) -> Diagnostic {
    Diagnostic::at(name.span, format!("no job named `{}`", name.value))
        .expected(format!("one of the workflow's jobs: {}", quote_list(jobs)))
        .suggest(&name.value, jobs.iter().copied())
}

fn job_refs(job: &JobSpec) -> impl Iterator<Item = &Ref> {
    job.args
        .iter()
        .chain(job.inputs.iter().flat_map(|(_, i)| &i.refs))
        .chain(job.with.iter().flat_map(|w| &w.templates))
        .flat_map(Template::refs)
}

fn resolve_params(
    wf: &Workflow,
    ov: &Overrides,
    errors: &mut Vec<Diagnostic>,
) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = wf
        .params
        .iter()
        .map(|p| (p.name.value.clone(), p.default.value.clone()))
        .collect();
    for (k, v) in &ov.params {
        match params.get_mut(k) {
            Some(slot) => *slot = v.clone(),
            None => {
                let declared: Vec<&str> = wf.params.iter().map(|p| p.name.value.as_str()).collect();
                let mut d = Diagnostic::global(format!(
                    "--param {k}={v}: the workflow declares no parameter `{k}`"
                ))
                .expected(if declared.is_empty() {
                    "no --param: this workflow has no `params:`".to_string()
                } else {
                    format!("one of: {}", declared.join(", "))
                });
                if let Some(best) = did_you_mean(k, declared.iter().copied()) {
                    d = d.help(format!("did you mean `--param {best}={v}`?"));
                }
                errors.push(d);
            }
        }
    }
    params
}

fn resolve_inputs(
    wf: &Workflow,
    ov: &Overrides,
    errors: &mut Vec<Diagnostic>,
) -> Vec<PlannedInput> {
    let mut inputs: Vec<PlannedInput> = wf
        .inputs
        .iter()
        .map(|i| PlannedInput {
            name: i.name.value.clone(),
            path: i.path.value.clone(),
            span: Some(i.path.span),
        })
        .collect();
    for (k, path) in &ov.inputs {
        match inputs.iter_mut().find(|i| &i.name == k) {
            Some(slot) => {
                slot.path = path.clone();
                slot.span = None;
            }
            None => {
                let declared: Vec<&str> = wf.inputs.iter().map(|i| i.name.value.as_str()).collect();
                errors.push(
                    Diagnostic::global(format!(
                        "--input {k}={path}: the workflow declares no input `{k}`"
                    ))
                    .expected(format!("one of: {}", declared.join(", ")))
                    .suggest(k, declared.iter().copied()),
                );
            }
        }
    }
    inputs
}

/// Checks that a reference names something that exists, so that expansion
/// below only meets well-formed references.
fn check_ref(
    wf: &Workflow,
    job: &JobSpec,
    r: &Ref,
    params: &BTreeMap<String, String>,
    by_name: &HashMap<&str, &JobSpec>,
    job_names: &[&str],
    errors: &mut Vec<Diagnostic>,
) {
    let matrix_keys: Vec<&str> = job.matrix.iter().map(|(k, _)| k.value.as_str()).collect();
    let check_matrix = |key: &str, span: Span, errors: &mut Vec<Diagnostic>| {
        if !matrix_keys.contains(&key) {
            let expected = if matrix_keys.is_empty() {
                format!(
                    "a `strategy.matrix` on job `{}` defining `{key}`",
                    job.name.value
                )
            } else {
                format!(
                    "one of job `{}`'s matrix keys: {}",
                    job.name.value,
                    matrix_keys.join(", ")
                )
            };
            errors.push(
                Diagnostic::at(span, format!("no matrix key `{key}`"))
                    .expected(expected)
                    .suggest(key, matrix_keys.iter().copied()),
            );
        }
    };
    match &r.kind {
        RefKind::Param(name) => {
            if !params.contains_key(&name.value) {
                let declared: Vec<&str> = params.keys().map(String::as_str).collect();
                errors.push(
                    Diagnostic::at(name.span, format!("no parameter named `{}`", name.value))
                        .expected(declared_list(
                            "a parameter declared under `params:`",
                            &declared,
                        ))
                        .suggest(&name.value, declared.iter().copied()),
                );
            }
        }
        RefKind::Input(name) => {
            let declared: Vec<&str> = wf.inputs.iter().map(|i| i.name.value.as_str()).collect();
            if !declared.contains(&name.value.as_str()) {
                errors.push(
                    Diagnostic::at(
                        name.span,
                        format!("no workflow input named `{}`", name.value),
                    )
                    .expected(declared_list(
                        "an input declared under `inputs:`",
                        &declared,
                    ))
                    .suggest(&name.value, declared.iter().copied()),
                );
            }
        }
        RefKind::Matrix(key) => check_matrix(&key.value, key.span, errors),
        RefKind::Output {
            job: dep,
            output,
            index,
        } => {
            if let Some(Spanned {
                value: Index::Matrix(key),
                span,
            }) = index
            {
                check_matrix(key, *span, errors);
            }
            let Some(producer) = by_name.get(dep.value.as_str()) else {
                errors.push(unknown_job(dep, job_names));
                return;
            };
            let outs: Vec<&str> = producer
                .outputs
                .iter()
                .chain(&producer.stdout)
                .map(|o| o.value.as_str())
                .collect();
            // A job that declares no outputs may be a typed task, whose
            // outputs come from its signature: checked once that is known.
            if !outs.is_empty() && !outs.contains(&output.value.as_str()) {
                let expected = format!("one of job `{}`'s outputs: {}", dep.value, outs.join(", "));
                errors.push(
                    Diagnostic::at(
                        output.span,
                        format!("job `{}` has no output `{}`", dep.value, output.value),
                    )
                    .expected(expected)
                    .suggest(&output.value, outs.iter().copied()),
                );
            }
        }
    }
}

fn declared_list(what: &str, declared: &[&str]) -> String {
    if declared.is_empty() {
        format!("{what}; this workflow declares none")
    } else {
        format!("{what}: {}", declared.join(", "))
    }
}

/// Every combination of a job's matrix values, first key slowest; one empty
/// combination for a job without a matrix.
fn matrix_combinations(job: &JobSpec) -> Vec<Vec<(String, String)>> {
    let mut combos = vec![Vec::new()];
    for (key, values) in &job.matrix {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((key.value.clone(), v.value.clone()));
                    c
                })
            })
            .collect();
    }
    combos
}

struct Ctx<'a> {
    params: &'a BTreeMap<String, String>,
    matrix: &'a [(String, String)],
    instances: &'a HashMap<&'a str, Vec<JobId>>,
    jobs: &'a [PlannedJob],
}

impl Ctx<'_> {
    fn expand(&self, spec: &JobSpec, id: JobId) -> Result<PlannedJob, Diagnostic> {
        let mut deps = Vec::new();
        let argv = spec
            .args
            .iter()
            .map(|t| self.render(t))
            .collect::<Result<Vec<_>, _>>()?;
        let bytes: usize = argv.iter().map(|a| a.len() + 1).sum();
        if bytes > MAX_ARGV_BYTES {
            let span = spec.args.first().map_or(spec.name.span, |t| t.span);
            return Err(Diagnostic::at(
                span,
                format!(
                    "the arguments of job `{}` add up to {bytes} bytes",
                    spec.name.value
                ),
            )
            .expected(format!(
                "at most {MAX_ARGV_BYTES} bytes of arguments; pass data as an input (a file in /in)"
            )));
        }
        let mut inputs = Vec::new();
        let mut input_spans = Vec::new();
        for (name, input) in &spec.inputs {
            input_spans.push(input.refs.first().map_or(name.span, |t| t.span));
            let mut sources = input
                .refs
                .iter()
                .map(|t| {
                    self.source(
                        t.single_ref()
                            .expect("spec checked inputs are single references"),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let source = if input.list {
                InputSource::List(sources)
            } else {
                sources.pop().expect("one reference")
            };
            collect_deps(&source, &mut deps);
            inputs.push((name.value.clone(), source));
        }
        let mut cond = None;
        let mut cond_jobs = BTreeMap::new();
        let mut watched = Vec::new();
        if let Some(e) = &spec.cond {
            let e = e.substitute(&|n| self.params.get(n).cloned(), &|k| {
                self.matrix
                    .iter()
                    .find(|(m, _)| m == k)
                    .map(|(_, v)| v.clone())
            })?;
            let outputs: Vec<&str> = e.outputs().into_iter().map(|(j, ..)| j).collect();
            for (job, span) in e.jobs() {
                let Some(ids) = self.instances.get(job) else {
                    return Err(Diagnostic::at(
                        span,
                        format!("no job named `{job}` before this one"),
                    )
                    .expected("a job this job can wait for"));
                };
                if ids.len() != 1 || self.jobs[ids[0]].name != self.jobs[ids[0]].key {
                    return Err(Diagnostic::at(span, format!("`{job}` is a matrix job"))
                        .expected("a job without a matrix (one value to compare)"));
                }
                if outputs.contains(&job) {
                    deps.push(ids[0]);
                } else {
                    watched.push(ids[0]);
                }
                cond_jobs.insert(job.to_string(), ids[0]);
            }
            cond = Some(e);
        }
        let mut with = Vec::new();
        for w in &spec.with {
            let arg = match w.source() {
                Some(r) => {
                    let source = self.source(r)?;
                    collect_deps(&source, &mut deps);
                    Arg::Source(source, r.span)
                }
                None => Arg::Literal(self.substitute(&w.node)?),
            };
            with.push((w.name.clone(), arg));
        }
        for need in &spec.needs {
            deps.extend(&self.instances[need.value.as_str()]);
        }
        deps.sort_unstable();
        deps.dedup();
        // A job read for its data (or named in `needs:`) must succeed, even
        // if the condition also reads how it ended.
        watched.retain(|w| deps.binary_search(w).is_err());
        watched.sort_unstable();
        watched.dedup();
        deps.extend(&watched);
        deps.sort_unstable();
        let name = if self.matrix.is_empty() {
            spec.name.value.clone()
        } else {
            let vals: Vec<String> = self
                .matrix
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{}[{}]", spec.name.value, vals.join(","))
        };
        Ok(PlannedJob {
            id,
            name,
            key: spec.name.value.clone(),
            uses: spec.uses.clone(),
            argv,
            inputs,
            input_spans,
            outputs: spec.outputs.iter().map(|o| o.value.clone()).collect(),
            stdout: spec.stdout.as_ref().map(|o| o.value.clone()),
            deps,
            limits: spec.limits,
            retry: spec.retry,
            hermetic: spec.hermetic,
            // A job that sees the host's clocks and randomness may give other
            // bytes each time: cache it only if it asks.
            cacheable: spec.cache.unwrap_or(spec.hermetic),
            call: spec.call.clone(),
            with,
            secrets: spec.secrets.clone(),
            secrets_in_key: spec.secrets_in_key,
            cond,
            cond_jobs,
            watches: watched,
        })
    }

    fn matrix_value(&self, key: &str) -> &str {
        &self
            .matrix
            .iter()
            .find(|(k, _)| k == key)
            .expect("matrix keys were checked")
            .1
    }

    /// A literal with every `${{ params.x }}` and `${{ matrix.k }}` replaced.
    fn substitute(
        &self,
        node: &crate::workflow::yaml::Node,
    ) -> Result<crate::workflow::yaml::Node, Diagnostic> {
        use crate::workflow::yaml::Kind;
        let kind = match &node.kind {
            Kind::Scalar { text, plain } if text.contains("${{") => {
                let t = crate::workflow::spec::parse_template(text, node.span, !plain)?;
                Kind::Scalar {
                    text: self.render(&t)?,
                    plain: *plain,
                }
            }
            Kind::Scalar { .. } => node.kind.clone(),
            Kind::Seq(items) => Kind::Seq(
                items
                    .iter()
                    .map(|i| self.substitute(i))
                    .collect::<Result<_, _>>()?,
            ),
            Kind::Map(entries) => Kind::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.substitute(v)?)))
                    .collect::<Result<_, Diagnostic>>()?,
            ),
        };
        Ok(crate::workflow::yaml::Node {
            span: node.span,
            kind,
        })
    }

    fn render(&self, t: &Template) -> Result<String, Diagnostic> {
        let mut out = String::new();
        for part in &t.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Ref(r) => match &r.kind {
                    RefKind::Param(n) => out.push_str(&self.params[&n.value]),
                    RefKind::Matrix(k) => out.push_str(self.matrix_value(&k.value)),
                    RefKind::Input(_) | RefKind::Output { .. } => {
                        return Err(Diagnostic::at(
                            r.span,
                            "a file reference cannot be used in `args:`",
                        )
                        .expected("a parameter or matrix value")
                        .help("declare it under `inputs:` and read it from /in/<name>"));
                    }
                },
            }
        }
        Ok(out)
    }

    fn source(&self, r: &Ref) -> Result<InputSource, Diagnostic> {
        match &r.kind {
            RefKind::Input(n) => Ok(InputSource::Workflow(n.value.clone())),
            RefKind::Output { job, output, index } => {
                let ids = &self.instances[job.value.as_str()];
                let producer = &self.jobs[ids[0]];
                let is_matrix = producer.name != producer.key;
                let index = match index {
                    None => None,
                    Some(Spanned {
                        value: Index::Lit(n),
                        ..
                    }) => Some((*n, index.as_ref().unwrap().span)),
                    Some(Spanned {
                        value: Index::Matrix(k),
                        span,
                    }) => {
                        let v = self.matrix_value(k);
                        let n = v.parse::<usize>().map_err(|_| {
                            Diagnostic::at(*span, format!("matrix value `{k}={v}` is not an index"))
                                .expected("a non-negative whole number")
                        })?;
                        Some((n, *span))
                    }
                };
                let one = |id: JobId, index| InputSource::Output {
                    job: id,
                    output: output.value.clone(),
                    index,
                };
                Ok(match (is_matrix, index) {
                    (true, None) => {
                        InputSource::List(ids.iter().map(|&id| one(id, None)).collect())
                    }
                    (true, Some((n, span))) => match ids.get(n) {
                        Some(&id) => one(id, None),
                        None => {
                            return Err(Diagnostic::at(span, format!("index {n} is out of range"))
                                .expected(format!(
                                    "an index below {}, the number of instances of matrix job `{}`",
                                    ids.len(),
                                    job.value
                                )));
                        }
                    },
                    (false, index) => one(ids[0], index.map(|(n, _)| n)),
                })
            }
            RefKind::Param(_) | RefKind::Matrix(_) => {
                unreachable!("spec checked inputs are file references")
            }
        }
    }
}

/// Kahn's algorithm that always takes the earliest ready job in file order,
/// so plans (and job ids) are stable and read like the file.
fn stable_topo_order<'a>(
    graph: &DiGraphMap<&'a str, Span>,
    file_order: &[&'a str],
) -> Vec<&'a str> {
    let mut waiting: HashMap<&str, usize> = file_order
        .iter()
        .map(|n| {
            (
                *n,
                graph
                    .neighbors_directed(n, petgraph::Direction::Incoming)
                    .count(),
            )
        })
        .collect();
    let mut order = Vec::with_capacity(file_order.len());
    while order.len() < file_order.len() {
        let next = *file_order
            .iter()
            .find(|n| waiting.get(*n) == Some(&0))
            .expect("cycles were rejected before ordering");
        waiting.remove(next);
        for succ in graph.neighbors(next) {
            if let Some(w) = waiting.get_mut(succ) {
                *w -= 1;
            }
        }
        order.push(next);
    }
    order
}

fn collect_deps(source: &InputSource, deps: &mut Vec<JobId>) {
    match source {
        InputSource::Workflow(_) => {}
        InputSource::Output { job, .. } => deps.push(*job),
        InputSource::List(items) => items.iter().for_each(|s| collect_deps(s, deps)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::diag::{Pos, Source};
    use crate::workflow::spec;

    fn plan_str(text: &str, ov: &Overrides) -> Result<Plan, Diagnostics> {
        let wf = spec::parse(Source::new("wf.yaml", text), "wf")
            .map_err(|e| panic!("{e}"))
            .unwrap();
        plan(&wf, ov)
    }

    fn first_error(text: &str) -> (Pos, String, Option<String>) {
        let e = plan_str(text, &Overrides::default()).unwrap_err();
        let d = &e.items[0];
        (
            d.span.map(|s| s.start).unwrap_or_default(),
            d.message.clone(),
            d.help.clone(),
        )
    }

    const WORDCOUNT: &str = "params:\n  top: 3\ninputs:\n  corpus: c.txt\njobs:\n  report:\n    uses: r.wasm\n    args: [--top, '${{ params.top }}']\n    inputs:\n      counts: ${{ jobs.merge.outputs.total }}\n    stdout: report\n  split:\n    uses: s.wasm\n    inputs: { text: '${{ inputs.corpus }}' }\n    outputs: [chunks]\n  count:\n    uses: c.wasm\n    strategy: { matrix: { i: [0, 1, 2] } }\n    inputs:\n      chunk: ${{ jobs.split.outputs.chunks[matrix.i] }}\n    outputs: [counts]\n  merge:\n    uses: m.wasm\n    inputs:\n      parts: ${{ jobs.count.outputs.counts }}\n    outputs: [total]\n";

    #[test]
    fn expands_matrices_and_fans_in() {
        let ov = Overrides {
            params: vec![("top".into(), "5".into())],
            inputs: vec![],
        };
        let p = plan_str(WORDCOUNT, &ov).unwrap();
        let names: Vec<&str> = p.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "split",
                "count[i=0]",
                "count[i=1]",
                "count[i=2]",
                "merge",
                "report"
            ]
        );
        assert_eq!(
            p.jobs[2].inputs[0].1,
            InputSource::Output {
                job: 0,
                output: "chunks".into(),
                index: Some(1)
            }
        );
        assert_eq!(p.jobs[2].deps, [0]);
        let merge = &p.jobs[4];
        assert_eq!(merge.deps, [1, 2, 3]);
        let InputSource::List(parts) = &merge.inputs[0].1 else {
            panic!()
        };
        assert_eq!(parts.len(), 3);
        assert_eq!(p.jobs[5].argv, ["--top", "5"]);
        assert_eq!(p.jobs[5].deps, [4]);
        // Every dependency comes before its dependent.
        assert!(p.jobs.iter().all(|j| j.deps.iter().all(|&d| d < j.id)));
    }

    #[test]
    fn a_yaml_list_of_references_is_a_list_input() {
        let p = plan_str(
            "inputs:\n  c: c.txt\njobs:\n  a:\n    uses: a.wasm\n    outputs: [out]\n  b:\n    uses: b.wasm\n    outputs: [out]\n  both:\n    uses: m.wasm\n    inputs:\n      parts:\n        - ${{ jobs.b.outputs.out }}\n        - ${{ inputs.c }}\n        - ${{ jobs.a.outputs.out }}\n      one: [\"${{ jobs.a.outputs.out }}\"]\n",
            &Overrides::default(),
        )
        .unwrap();
        let both = &p.jobs[2];
        assert_eq!(both.deps, [0, 1]);
        let out = |job| InputSource::Output {
            job,
            output: "out".into(),
            index: None,
        };
        assert_eq!(
            both.inputs[0].1,
            InputSource::List(vec![out(1), InputSource::Workflow("c".into()), out(0)])
        );
        assert_eq!(both.inputs[1].1, InputSource::List(vec![out(0)]));
        let e = spec::parse(
            Source::new(
                "wf.yaml",
                "jobs:\n  a:\n    uses: a.wasm\n    inputs:\n      x: [\"${{ params.p }}\"]\nparams:\n  p: 1\n",
            ),
            "wf",
        )
        .unwrap_err();
        assert_eq!(e.items[0].message, "input `x` is not a file reference");
        assert_eq!(e.items[0].span.unwrap().start, Pos { line: 5, col: 11 });
    }

    #[test]
    fn unknown_references_point_at_the_name() {
        let (pos, msg, help) = first_error(
            "jobs:\n  a:\n    uses: a.wasm\n    outputs: [out]\n  b:\n    uses: b.wasm\n    inputs:\n      x: ${{ jobs.a.outputs.otu }}\n",
        );
        assert_eq!(pos, Pos { line: 8, col: 29 });
        assert_eq!(msg, "job `a` has no output `otu`");
        assert_eq!(help.as_deref(), Some("did you mean `out`?"));
        let (pos, msg, _) = first_error(
            "jobs:\n  b:\n    uses: b.wasm\n    inputs:\n      x: ${{ jobs.c.outputs.o }}\n",
        );
        assert_eq!(
            (pos, msg.as_str()),
            (Pos { line: 5, col: 19 }, "no job named `c`")
        );
        let (_, msg, _) =
            first_error("jobs:\n  b:\n    uses: b.wasm\n    args: ['${{ params.n }}']\n");
        assert_eq!(msg, "no parameter named `n`");
        let (_, msg, _) =
            first_error("jobs:\n  b:\n    uses: b.wasm\n    inputs: { x: '${{ inputs.n }}' }\n");
        assert_eq!(msg, "no workflow input named `n`");
        let (_, msg, _) =
            first_error("jobs:\n  b:\n    uses: b.wasm\n    args: ['${{ matrix.n }}']\n");
        assert_eq!(msg, "no matrix key `n`");
        let (pos, msg, _) = first_error("jobs:\n  b:\n    uses: b.wasm\n    needs: [zz]\n");
        assert_eq!(
            (pos, msg.as_str()),
            (Pos { line: 4, col: 13 }, "no job named `zz`")
        );
    }

    #[test]
    fn cycles_name_every_job_on_them() {
        let text = "jobs:\n  a:\n    uses: a.wasm\n    needs: c\n  b:\n    uses: b.wasm\n    needs: a\n  c:\n    uses: c.wasm\n    needs: b\n  d:\n    uses: d.wasm\n    needs: a\n";
        let (pos, msg, _) = first_error(text);
        assert_eq!(msg, "jobs `a`, `b`, `c` depend on each other in a cycle");
        assert_eq!(pos, Pos { line: 4, col: 12 });
        let (_, msg, _) = first_error("jobs:\n  a:\n    uses: a.wasm\n    needs: a\n");
        assert_eq!(msg, "job `a` depends on itself");
    }

    #[test]
    fn undeclared_overrides_are_rejected() {
        let ov = Overrides {
            params: vec![("tpo".into(), "1".into())],
            inputs: vec![("corpsu".into(), "x".into())],
        };
        let e = plan_str(WORDCOUNT, &ov).unwrap_err();
        assert_eq!(e.items.len(), 2);
        assert!(e.items[0].message.contains("declares no parameter `tpo`"));
        assert_eq!(
            e.items[0].help.as_deref(),
            Some("did you mean `--param top=1`?")
        );
        assert!(e.items[1].message.contains("declares no input `corpsu`"));
    }

    #[test]
    fn matrix_indexes_are_checked() {
        let (_, msg, _) = first_error(
            "jobs:\n  a:\n    uses: a.wasm\n    strategy: { matrix: { i: [0, 1] } }\n    outputs: [o]\n  b:\n    uses: b.wasm\n    inputs: { x: '${{ jobs.a.outputs.o[5] }}' }\n",
        );
        assert_eq!(msg, "index 5 is out of range");
        let (_, msg, _) = first_error(
            "jobs:\n  a:\n    uses: a.wasm\n    outputs: [o]\n  b:\n    uses: b.wasm\n    strategy: { matrix: { i: [x] } }\n    inputs: { x: '${{ jobs.a.outputs.o[matrix.i] }}' }\n",
        );
        assert_eq!(msg, "matrix value `i=x` is not an index");
    }

    #[test]
    fn a_job_downstream_of_one_that_failed_to_expand_is_not_planned() {
        // Found by fuzzing: this used to index an empty instance list.
        let e = plan_str(
            "inputs: {f: f}\njobs:\n a: {uses: a, args: [\"${{inputs.f}}\"], outputs: [o]}\n b: {uses: b, inputs: {i: \"${{jobs.a.outputs.o}}\"}}\n",
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(e.items.len(), 1);
        assert_eq!(
            e.items[0].message,
            "a file reference cannot be used in `args:`"
        );
        let e = plan_str(
            "jobs:\n a:\n  uses: a\n  strategy: {matrix: {i: [0, x, 2]}}\n  outputs: [o]\n  inputs: {p: '${{ jobs.z.outputs.o[matrix.i] }}'}\n z: {uses: z, outputs: [o]}\n b: {uses: b, inputs: {i: '${{jobs.a.outputs.o}}'}}\n",
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(
            e.items
                .iter()
                .all(|d| d.message.contains("is not an index")),
            "{e}"
        );
    }

    #[test]
    fn a_huge_matrix_is_refused_before_it_is_expanded() {
        let keys: Vec<String> = (0..30).map(|i| format!("k{i}: [0, 1]")).collect();
        let text = format!(
            "jobs:\n a:\n  uses: a\n  strategy: {{matrix: {{{}}}}}\n",
            keys.join(", ")
        );
        let e = plan_str(&text, &Overrides::default()).unwrap_err();
        assert!(
            e.items[0]
                .message
                .contains("would make the workflow 1073741824 jobs"),
            "{e}"
        );
    }

    #[test]
    fn file_references_are_not_arguments() {
        let (_, msg, help) = first_error(
            "inputs: { c: c.txt }\njobs:\n  a:\n    uses: a.wasm\n    args: ['${{ inputs.c }}']\n",
        );
        assert_eq!(msg, "a file reference cannot be used in `args:`");
        assert!(help.unwrap().contains("/in/<name>"));
    }
}
