//! The workflow file as written: parsed from YAML into typed values that keep
//! their positions. Pure: text in, values or diagnostics out.

use crate::workflow::diag::{Diagnostic, Diagnostics, Source, Span};
use crate::workflow::yaml::{self, Kind, Node};
use std::time::Duration;

/// A value with the place it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

/// A name (of a job, param, input, output or matrix key) and where it was written.
pub type Name = Spanned<String>;

/// A whole workflow file.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// The file, for diagnostics found later (planning, loading).
    pub source: Source,
    /// `name:`; defaults to the file's stem.
    pub name: String,
    /// `params:` in file order, each with its default.
    pub params: Vec<ParamDecl>,
    /// `inputs:` in file order: host files ingested into the store.
    pub inputs: Vec<InputDecl>,
    /// `jobs:` in file order.
    pub jobs: Vec<JobSpec>,
}

/// A parameter and its default value.
#[derive(Debug, Clone)]
pub struct ParamDecl {
    /// The parameter's name.
    pub name: Name,
    /// Its default, as text.
    pub default: Spanned<String>,
}

/// A workflow input: a host file, relative to the workflow file.
#[derive(Debug, Clone)]
pub struct InputDecl {
    /// The input's name.
    pub name: Name,
    /// The host path as written.
    pub path: Spanned<String>,
}

/// One entry of a command job's `inputs:`.
#[derive(Debug, Clone)]
pub struct InputRefs {
    /// Each a single reference to a workflow input or a job output.
    pub refs: Vec<Template>,
    /// Written as a YAML list: the input is the list of the references'
    /// files, in order (`/in/<name>/0`, …).
    pub list: bool,
}

/// One job as written (before matrix expansion).
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The job's key under `jobs:`.
    pub name: Name,
    /// The component (a `.wasm` file or a source directory), relative to the workflow file.
    pub uses: Spanned<String>,
    /// Extra dependencies beyond those implied by references.
    pub needs: Vec<Name>,
    /// The program's arguments (argv after argv[0]), each a template.
    pub args: Vec<Template>,
    /// Declared inputs: name → a reference to a workflow input or a job
    /// output, or a YAML list of them (a list input, `/in/<name>/0`, …).
    pub inputs: Vec<(Name, InputRefs)>,
    /// Declared outputs, read from `/out/<name>` after the run.
    pub outputs: Vec<Name>,
    /// Keep standard output as the output of this name.
    pub stdout: Option<Name>,
    /// `strategy.matrix`: keys in file order, each with its values.
    pub matrix: Vec<(Name, Vec<Spanned<String>>)>,
    /// Sandbox limits for this job.
    pub limits: Limits,
    /// Retries of a failed job.
    pub retry: Retry,
    /// Fixed clocks and seeded randomness (the default); `false` gives the
    /// host's clocks and randomness.
    pub hermetic: bool,
    /// Whether results are cached: `None` means "if hermetic".
    pub cache: Option<bool>,
    /// A typed task's export to call, when the component has several.
    pub call: Option<Name>,
    /// A typed task's arguments, by parameter name.
    pub with: Vec<WithArg>,
    /// Secrets the job may read through `context.secret` (names only).
    pub secrets: Vec<Name>,
    /// Key the job's results on a store-keyed hash of each secret's value
    /// (by default only the names enter the key).
    pub secrets_in_key: bool,
    /// `if:`: run the job only when this holds.
    pub cond: Option<crate::workflow::cond::Expr>,
}

/// One `with:` entry: a parameter's value as written.
#[derive(Debug, Clone)]
pub struct WithArg {
    /// The parameter's name.
    pub name: Name,
    /// The value: a YAML literal, possibly with `${{ params.x }}` or
    /// `${{ matrix.k }}` inside scalars, or exactly one reference to a
    /// workflow input or job output.
    pub node: Node,
    /// Every reference in the value's scalars, for checking and ordering.
    pub templates: Vec<Template>,
}

impl WithArg {
    /// The file or value reference, when the whole value is one.
    pub fn source(&self) -> Option<&Ref> {
        match (&self.node.kind, self.templates.as_slice()) {
            (Kind::Scalar { .. }, [t]) => t
                .single_ref()
                .filter(|r| matches!(r.kind, RefKind::Input(_) | RefKind::Output { .. })),
            _ => None,
        }
    }
}

/// Per-job sandbox limits; `None` means the run-wide default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, in bytes.
    pub memory: Option<u64>,
    /// Wall-clock time.
    pub timeout: Option<Duration>,
    /// Fuel (roughly, wasm instructions); unlimited unless set.
    pub fuel: Option<u64>,
    /// Total bytes of declared outputs.
    pub output: Option<u64>,
    /// Bytes of log kept (stdout and stderr); beyond it the log is truncated.
    pub log: Option<u64>,
}

/// `retry:`: how often to re-run a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (1 means no retry).
    pub attempts: u32,
    /// The wait before the first retry; it doubles for each further one, up to a minute.
    pub backoff: Duration,
    /// Also retry failures that would recur identically (out of memory,
    /// out of fuel, stack overflow, output limit, instantiation).
    pub always: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 1,
            backoff: Duration::from_secs(1),
            always: false,
        }
    }
}

/// A string with `${{ … }}` references in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Literal text and references, in order.
    pub parts: Vec<Part>,
    /// The whole scalar.
    pub span: Span,
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text copied as it is.
    Lit(String),
    /// A `${{ … }}` reference.
    Ref(Ref),
}

/// A reference, `${{ params.x }}` and the like.
#[derive(Debug, Clone, PartialEq)]
pub struct Ref {
    /// What it refers to.
    pub kind: RefKind,
    /// The whole `${{ … }}`.
    pub span: Span,
}

/// The things a reference can name.
#[derive(Debug, Clone, PartialEq)]
pub enum RefKind {
    /// `params.NAME`
    Param(Name),
    /// `inputs.NAME`
    Input(Name),
    /// `matrix.KEY`
    Matrix(Name),
    /// `jobs.JOB.outputs.NAME` with an optional `[index]`.
    Output {
        /// The producing job.
        job: Name,
        /// The output's name.
        output: Name,
        /// `[3]` or `[matrix.i]`: an instance of a matrix job, or an element of a list output.
        index: Option<Spanned<Index>>,
    },
}

/// An index after an output reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Index {
    /// A literal position.
    Lit(usize),
    /// A matrix value of the referring job.
    Matrix(String),
}

impl Template {
    /// The template's only reference, if it is exactly one reference and nothing else.
    pub fn single_ref(&self) -> Option<&Ref> {
        match self.parts.as_slice() {
            [Part::Ref(r)] => Some(r),
            _ => None,
        }
    }

    /// Every reference in the template.
    pub fn refs(&self) -> impl Iterator<Item = &Ref> {
        self.parts.iter().filter_map(|p| match p {
            Part::Ref(r) => Some(r),
            Part::Lit(_) => None,
        })
    }
}

// The keys the parser accepts come from the table the JSON Schema is made
// from (`keys`), so that the two cannot disagree.
use crate::workflow::keys;

/// Parses a workflow file, reporting every problem found rather than the first.
pub fn parse(source: Source, default_name: &str) -> Result<Workflow, Diagnostics> {
    let mut p = Parser { errors: Vec::new() };
    let root = match yaml::parse(&source.text) {
        Ok(root) => root,
        Err(d) => {
            return Err(Diagnostics {
                source,
                items: vec![d],
            });
        }
    };
    let mut wf = Workflow {
        source: source.clone(),
        name: default_name.to_string(),
        params: Vec::new(),
        inputs: Vec::new(),
        jobs: Vec::new(),
    };
    let mut saw_jobs = false;
    for (key, value) in p.map(&root, &keys::names(keys::TOP), "a mapping with `jobs:`") {
        match key.value.as_str() {
            "name" => {
                if let Some(s) = p.scalar(value, "the workflow's name") {
                    wf.name = s.value;
                }
            }
            "params" => {
                for (name, v) in p.map(value, &[], "a mapping of parameter names to default values")
                {
                    if let Some(default) =
                        p.scalar(v, "a default value (a string, number or boolean)")
                    {
                        p.check_ident(&name);
                        wf.params.push(ParamDecl { name, default });
                    }
                }
            }
            "inputs" => {
                for (name, v) in p.map(value, &[], "a mapping of input names to host file paths") {
                    if let Some(path) =
                        p.scalar(v, "a path to a host file, relative to the workflow")
                    {
                        p.check_ident(&name);
                        wf.inputs.push(InputDecl { name, path });
                    }
                }
            }
            "jobs" => {
                saw_jobs = true;
                for (name, v) in p.map(value, &[], "a mapping of job names to jobs") {
                    p.check_ident(&name);
                    if let Some(job) = p.job(name, v) {
                        wf.jobs.push(job);
                    }
                }
            }
            _ => unreachable!("map() only yields allowed keys"),
        }
    }
    if !saw_jobs && p.errors.is_empty() {
        p.errors.push(
            Diagnostic::at(root.span, "the workflow has no `jobs:`")
                .expected("a `jobs:` mapping with at least one job"),
        );
    }
    if p.errors.is_empty() {
        Ok(wf)
    } else {
        p.errors.sort_by_key(|d| d.span.map(|s| s.start));
        Err(Diagnostics {
            source,
            items: p.errors,
        })
    }
}

struct Parser {
    errors: Vec<Diagnostic>,
}

impl Parser {
    /// The entries of a mapping whose keys are scalars; with a non-empty
    /// `allowed`, unknown keys are reported (with a suggestion) and skipped.
    fn map<'n>(&mut self, node: &'n Node, allowed: &[&str], what: &str) -> Vec<(Name, &'n Node)> {
        let Kind::Map(entries) = &node.kind else {
            if !node.is_null() {
                self.errors.push(
                    Diagnostic::at(node.span, format!("found {}", node.describe())).expected(what),
                );
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let key = k.as_str().unwrap_or_default().to_string();
            if !allowed.is_empty() && !allowed.contains(&key.as_str()) {
                let d = Diagnostic::at(k.span, format!("unknown key `{key}`"))
                    .expected(format!("one of: {}", allowed.join(", ")))
                    .suggest(&key, allowed.iter().copied());
                self.errors.push(d);
                continue;
            }
            out.push((
                Spanned {
                    value: key,
                    span: k.span,
                },
                v,
            ));
        }
        out
    }

    fn scalar(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        match &node.kind {
            Kind::Scalar { text, .. } if !node.is_null() => Some(Spanned {
                value: text.clone(),
                span: node.span,
            }),
            _ => {
                self.errors.push(
                    Diagnostic::at(node.span, format!("found {}", node.describe())).expected(what),
                );
                None
            }
        }
    }

    /// One reference to a file (a workflow input or a job output) for the
    /// input `name`, or an error at `node`.
    fn file_ref(&mut self, name: &Name, node: &Node) -> Option<Template> {
        let quoted = matches!(node.kind, Kind::Scalar { plain: false, .. });
        let s = self.scalar(node, "a reference such as ${{ jobs.a.outputs.b }}")?;
        let t = self.template(&s, quoted)?;
        match t.single_ref() {
            Some(Ref {
                kind: RefKind::Input(_) | RefKind::Output { .. },
                ..
            }) => Some(t),
            _ => {
                self.errors.push(
                    Diagnostic::at(s.span, format!("input `{}` is not a file reference", name.value))
                        .expected("exactly one reference to a workflow input or a job output, such as ${{ inputs.corpus }} or ${{ jobs.split.outputs.chunks }}, or a list of them"),
                );
                None
            }
        }
    }

    /// A list of scalars; a lone scalar counts as a list of one.
    fn scalars(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        match &node.kind {
            Kind::Seq(items) => items.iter().filter_map(|n| self.scalar(n, what)).collect(),
            _ => self.scalar(node, what).into_iter().collect(),
        }
    }

    /// Parses the templates in every scalar below `node`.
    fn templates_in(&mut self, node: &Node, out: &mut Vec<Template>) {
        match &node.kind {
            Kind::Scalar { text, plain } if text.contains("${{") => {
                let s = Spanned {
                    value: text.clone(),
                    span: node.span,
                };
                out.extend(self.template(&s, !plain));
            }
            Kind::Scalar { .. } => {}
            Kind::Seq(items) => items.iter().for_each(|i| self.templates_in(i, out)),
            Kind::Map(entries) => entries.iter().for_each(|(_, v)| self.templates_in(v, out)),
        }
    }

    fn size(&mut self, s: &Spanned<String>) -> Option<u64> {
        let n = parse_size(&s.value);
        if n.is_none() {
            self.errors.push(
                Diagnostic::at(s.span, format!("`{}` is not a size", s.value))
                    .expected("a size such as 512MiB, 2GiB or 1048576"),
            );
        }
        n
    }

    fn duration(&mut self, s: &Spanned<String>) -> Option<Duration> {
        let d = parse_duration(&s.value);
        if d.is_none() {
            self.errors.push(
                Diagnostic::at(s.span, format!("`{}` is not a duration", s.value))
                    .expected("a duration such as 500ms, 30s, 5m or 1h"),
            );
        }
        d
    }

    /// A whole number, also written like `1e9`.
    fn count(&mut self, s: &Spanned<String>, what: &str) -> Option<u64> {
        let n = s.value.parse::<u64>().ok().or_else(|| {
            s.value
                .parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        });
        if n.is_none() {
            self.errors.push(
                Diagnostic::at(s.span, format!("`{}` is not a whole number", s.value))
                    .expected(what),
            );
        }
        n
    }

    fn boolean(&mut self, s: &Spanned<String>) -> Option<bool> {
        match s.value.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.errors.push(
                    Diagnostic::at(s.span, format!("`{}` is not a boolean", s.value))
                        .expected("true or false"),
                );
                None
            }
        }
    }

    fn check_ident(&mut self, name: &Name) {
        if !is_ident(&name.value) {
            self.errors.push(
                Diagnostic::at(name.span, format!("`{}` is not a valid name", name.value))
                    .expected("letters, digits, `_` or `-`, starting with a letter or `_`"),
            );
        }
    }

    /// Every output of a job is declared once: twice in `outputs:`, or
    /// there and as `stdout:`, one of them would never be written. (An
    /// input may share an output's name: `/in/x` and `/out/x` are two
    /// files, and a task that transforms a file in place reads one and
    /// writes the other, as the polyglot conformance tasks do.)
    fn check_files(&mut self, job: &JobSpec) {
        let outputs = job.outputs.iter().map(|o| (o, "output"));
        let stdout = job.stdout.iter().map(|o| (o, "stdout output"));
        let mut seen: Vec<(&Name, &str)> = Vec::new();
        for (name, what) in outputs.chain(stdout) {
            if let Some((first, first_what)) = seen.iter().find(|(n, _)| n.value == name.value) {
                let at = first.span.start;
                self.errors.push(
                    Diagnostic::at(
                        name.span,
                        format!(
                            "output `{}` of job `{}` is declared twice",
                            name.value, job.name.value
                        ),
                    )
                    .expected(
                        "each output once, either under `outputs:` (a file in /out) or as `stdout:`",
                    )
                    .help(format!(
                        "the {first_what} `{}` is at line {}, column {}",
                        first.value, at.line, at.col
                    )),
                );
                continue;
            }
            seen.push((name, what));
        }
    }

    /// An input's or output's name becomes a file name in the sandbox
    /// (`/in/<name>`, `/out/<name>`): one path component, never `..` or
    /// a path.
    fn check_file_name(&mut self, name: &Name, dir: &str) {
        if !is_ident(&name.value) {
            self.errors.push(
                Diagnostic::at(
                    name.span,
                    format!(
                        "`{}` is not a valid name: it would be the file {dir}/{}",
                        name.value, name.value
                    ),
                )
                .expected(
                    "one path component of letters, digits, `_` or `-`, starting with a letter or `_` (no `/`, `.` or `..`)",
                ),
            );
        }
    }

    fn template(&mut self, s: &Spanned<String>, quoted: bool) -> Option<Template> {
        match parse_template(&s.value, s.span, quoted) {
            Ok(t) => Some(t),
            Err(d) => {
                self.errors.push(d);
                None
            }
        }
    }

    fn job(&mut self, name: Name, node: &Node) -> Option<JobSpec> {
        let before = self.errors.len();
        let mut uses = None;
        let mut job = JobSpec {
            name: name.clone(),
            uses: Spanned {
                value: String::new(),
                span: name.span,
            },
            needs: Vec::new(),
            args: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            stdout: None,
            matrix: Vec::new(),
            limits: Limits::default(),
            retry: Retry::default(),
            hermetic: true,
            cache: None,
            call: None,
            with: Vec::new(),
            secrets: Vec::new(),
            secrets_in_key: false,
            cond: None,
        };
        if !matches!(node.kind, Kind::Map(_)) {
            self.errors.push(
                Diagnostic::at(
                    node.span,
                    format!("job `{}` is {}", name.value, node.describe()),
                )
                .expected("a mapping with at least `uses:`"),
            );
            return None;
        }
        for (key, v) in self.map(node, &keys::names(keys::JOB), "a job") {
            match key.value.as_str() {
                "uses" => {
                    uses = self.scalar(v, "a path to a component (.wasm) or its source directory")
                }
                "needs" => job.needs = self.scalars(v, "a job name"),
                "args" => {
                    let Kind::Seq(items) = &v.kind else {
                        self.errors.push(
                            Diagnostic::at(v.span, format!("found {}", v.describe()))
                                .expected("a list of arguments"),
                        );
                        continue;
                    };
                    for item in items {
                        let quoted = matches!(item.kind, Kind::Scalar { plain: false, .. });
                        if let Some(s) = self.scalar(item, "an argument (a string)") {
                            job.args.extend(self.template(&s, quoted));
                        }
                    }
                }
                "inputs" => {
                    for (iname, iv) in self.map(v, &[], "a mapping of input names to references") {
                        self.check_file_name(&iname, "/in");
                        let (nodes, list) = match &iv.kind {
                            Kind::Seq(items) => (items.iter().collect::<Vec<_>>(), true),
                            _ => (vec![iv], false),
                        };
                        let refs: Vec<Template> = nodes
                            .into_iter()
                            .filter_map(|n| self.file_ref(&iname, n))
                            .collect();
                        job.inputs.push((iname, InputRefs { refs, list }));
                    }
                }
                "outputs" => {
                    for o in self.scalars(v, "an output name") {
                        self.check_file_name(&o, "/out");
                        job.outputs.push(o);
                    }
                }
                "call" => job.call = self.scalar(v, "the name of the function to call"),
                "secrets" => job.secrets = self.scalars(v, "a secret's name"),
                "if" => {
                    if let Some(s) =
                        self.scalar(v, "a condition such as ${{ params.mode == 'full' }}")
                    {
                        let quoted = matches!(v.kind, Kind::Scalar { plain: false, .. });
                        let span = if quoted {
                            s.span.slice(1, s.span.len.saturating_sub(2))
                        } else {
                            s.span
                        };
                        match crate::workflow::cond::parse(&s.value, span) {
                            Ok(e) => job.cond = Some(e),
                            Err(d) => self.errors.push(d),
                        }
                    }
                }
                "secrets-in-key" => {
                    if let Some(s) = self.scalar(v, "true or false") {
                        job.secrets_in_key = self.boolean(&s).unwrap_or(false);
                    }
                }
                "with" => {
                    for (wname, wv) in self.map(v, &[], "a mapping of parameter names to values") {
                        let mut templates = Vec::new();
                        self.templates_in(wv, &mut templates);
                        let arg = WithArg {
                            name: wname,
                            node: wv.clone(),
                            templates,
                        };
                        // File and value references stand alone: they are
                        // passed as they are, not spliced into text.
                        let whole = arg.source().is_some();
                        for t in &arg.templates {
                            for r in t.refs() {
                                if !whole
                                    && matches!(r.kind, RefKind::Input(_) | RefKind::Output { .. })
                                {
                                    self.errors.push(
                                        Diagnostic::at(r.span, "a reference to an input or output must be the whole value")
                                            .expected(format!("`{}: ${{{{ … }}}}` on its own", arg.name.value)),
                                    );
                                }
                            }
                        }
                        job.with.push(arg);
                    }
                }
                "stdout" => {
                    if let Some(o) = self.scalar(v, "an output name for standard output") {
                        self.check_file_name(&o, "/out");
                        job.stdout = Some(o);
                    }
                }
                "strategy" => {
                    for (skey, sv) in
                        self.map(v, &keys::names(keys::STRATEGY), "a mapping with `matrix:`")
                    {
                        debug_assert_eq!(skey.value, "matrix");
                        for (mkey, values) in
                            self.map(sv, &[], "a mapping of matrix keys to lists of values")
                        {
                            self.check_ident(&mkey);
                            let Kind::Seq(_) = values.kind else {
                                self.errors.push(
                                    Diagnostic::at(
                                        values.span,
                                        format!("found {}", values.describe()),
                                    )
                                    .expected("a list of values"),
                                );
                                continue;
                            };
                            let vals = self
                                .scalars(values, "a matrix value (a string, number or boolean)");
                            if vals.is_empty() {
                                self.errors.push(
                                    Diagnostic::at(
                                        values.span,
                                        format!("matrix key `{}` has no values", mkey.value),
                                    )
                                    .expected("at least one value"),
                                );
                            }
                            job.matrix.push((mkey, vals));
                        }
                    }
                }
                "limits" => {
                    for (lkey, lv) in self.map(v, &keys::names(keys::LIMITS), "a mapping of limits")
                    {
                        let Some(s) = self.scalar(lv, "a limit") else {
                            continue;
                        };
                        let l = &mut job.limits;
                        match lkey.value.as_str() {
                            "memory" => l.memory = self.size(&s),
                            "output" => l.output = self.size(&s),
                            "log" => l.log = self.size(&s),
                            "fuel" => {
                                l.fuel = self.count(&s, "an amount of fuel such as 1e9 or 500000")
                            }
                            _ => l.timeout = self.duration(&s),
                        }
                    }
                }
                "retry" => {
                    for (rkey, rv) in self.map(
                        v,
                        &keys::names(keys::RETRY),
                        "a mapping such as { attempts: 3, backoff: 1s }",
                    ) {
                        let Some(s) = self.scalar(rv, "a retry setting") else {
                            continue;
                        };
                        match rkey.value.as_str() {
                            "attempts" => {
                                match self.count(&s, "a number of attempts, at least 1") {
                                    Some(n @ 1..=100) => job.retry.attempts = n as u32,
                                    Some(_) => self.errors.push(
                                        Diagnostic::at(s.span, format!("{} attempts", s.value))
                                            .expected("between 1 and 100 attempts"),
                                    ),
                                    None => {}
                                }
                            }
                            "backoff" => {
                                if let Some(d) = self.duration(&s) {
                                    job.retry.backoff = d;
                                }
                            }
                            _ => job.retry.always = self.boolean(&s).unwrap_or(false),
                        }
                    }
                }
                "hermetic" => {
                    if let Some(s) = self.scalar(v, "true or false") {
                        job.hermetic = self.boolean(&s).unwrap_or(true);
                    }
                }
                "cache" => {
                    if let Some(s) = self.scalar(v, "true or false") {
                        job.cache = self.boolean(&s);
                    }
                }
                _ => unreachable!("map() only yields allowed keys"),
            }
        }
        self.check_files(&job);
        match uses {
            Some(u) => job.uses = u,
            None if self.errors.len() == before => {
                self.errors.push(
                    Diagnostic::at(name.span, format!("job `{}` has no `uses:`", name.value))
                        .expected("`uses:` naming the component to run"),
                );
            }
            None => {}
        }
        (self.errors.len() == before).then_some(job)
    }
}

/// True for names usable in references: `[A-Za-z_][A-Za-z0-9_-]*`.
pub fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Parses `${{ … }}` references out of a scalar. `quoted` shifts columns past
/// the opening quote so carets land on the right characters.
pub fn parse_template(text: &str, span: Span, quoted: bool) -> Result<Template, Diagnostic> {
    let base = usize::from(quoted);
    let col_of = |byte: usize| base + text[..byte].chars().count();
    let mut parts = Vec::new();
    let mut rest = 0;
    while let Some(found) = text[rest..].find("${{") {
        let start = rest + found;
        if start > rest {
            parts.push(Part::Lit(text[rest..start].to_string()));
        }
        let Some(close) = text[start..].find("}}") else {
            return Err(
                Diagnostic::at(span.slice(col_of(start), 3), "unclosed `${{`")
                    .expected("`}}` to close the reference"),
            );
        };
        let end = start + close + 2;
        let inner_start = start + 3;
        let inner = &text[inner_start..start + close];
        let lead = inner.len() - inner.trim_start().len();
        let expr = inner.trim();
        let at = |off: usize, len: usize| span.slice(col_of(inner_start + lead + off), len);
        let kind = parse_ref(expr, &at)?;
        parts.push(Part::Ref(Ref {
            kind,
            span: span.slice(col_of(start), text[start..end].chars().count()),
        }));
        rest = end;
    }
    if rest < text.len() {
        parts.push(Part::Lit(text[rest..].to_string()));
    }
    Ok(Template { parts, span })
}

const REF_FORMS: &str =
    "`params.NAME`, `inputs.NAME`, `matrix.KEY` or `jobs.JOB.outputs.NAME[INDEX]`";

fn parse_ref(expr: &str, at: &dyn Fn(usize, usize) -> Span) -> Result<RefKind, Diagnostic> {
    let bad = |off: usize, len: usize, msg: String| {
        Err(Diagnostic::at(at(off, len.max(1)), msg).expected(REF_FORMS))
    };
    // Split off an index: `…[3]` or `…[matrix.i]`.
    let (path, index) = match expr.find('[') {
        Some(open) => {
            let Some(inner) = expr[open + 1..].strip_suffix(']') else {
                return bad(
                    open,
                    expr.len() - open,
                    format!("malformed index in `{expr}`"),
                );
            };
            let ispan = at(open + 1, inner.len().max(1));
            let index = if let Ok(n) = inner.trim().parse::<usize>() {
                Index::Lit(n)
            } else if let Some(key) = inner.trim().strip_prefix("matrix.").filter(|k| is_ident(k)) {
                Index::Matrix(key.to_string())
            } else {
                return Err(Diagnostic::at(ispan, format!("`{inner}` is not an index"))
                    .expected("a number or `matrix.KEY`"));
            };
            (
                &expr[..open],
                Some(Spanned {
                    value: index,
                    span: ispan,
                }),
            )
        }
        None => (expr, None),
    };
    let mut segs = Vec::new();
    let mut off = 0;
    for seg in path.split('.') {
        segs.push((seg, off));
        off += seg.len() + 1;
    }
    let name = |i: usize| -> Result<Name, Diagnostic> {
        let (s, o) = segs[i];
        if is_ident(s) {
            Ok(Spanned {
                value: s.to_string(),
                span: at(o, s.len()),
            })
        } else {
            Err(Diagnostic::at(
                at(o, s.len().max(1)),
                format!("`{s}` is not a valid name in a reference"),
            )
            .expected(REF_FORMS))
        }
    };
    let head = segs.first().map(|s| s.0).unwrap_or_default();
    let kind = match (head, segs.len()) {
        ("params", 2) => RefKind::Param(name(1)?),
        ("inputs", 2) => RefKind::Input(name(1)?),
        ("matrix", 2) => RefKind::Matrix(name(1)?),
        ("jobs", 4) if segs[2].0 == "outputs" => RefKind::Output {
            job: name(1)?,
            output: name(3)?,
            index: None,
        },
        ("jobs", _) => {
            return bad(
                0,
                path.len(),
                format!("`{expr}` is not a job output reference"),
            );
        }
        _ if ["params", "inputs", "matrix"].contains(&head) => {
            return bad(
                0,
                path.len(),
                format!("`{expr}` should have exactly one name after `{head}.`"),
            );
        }
        _ => {
            let d = Diagnostic::at(at(0, head.len()), format!("unknown reference `{expr}`"))
                .expected(REF_FORMS)
                .suggest(head, ["params", "inputs", "matrix", "jobs"]);
            return Err(d);
        }
    };
    match (kind, index) {
        (RefKind::Output { job, output, .. }, index) => Ok(RefKind::Output { job, output, index }),
        (_, Some(i)) => {
            Err(Diagnostic::at(i.span, "only job outputs can be indexed").expected(REF_FORMS))
        }
        (kind, None) => Ok(kind),
    }
}

/// Parses `512MiB`, `2GiB`, `64KiB`, `1000000`, `10MB`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit = unit.trim();
    let mult: u64 = if unit.is_empty() {
        1
    } else {
        keys::SIZE_UNITS.iter().find(|(u, _)| *u == unit)?.1
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

/// Parses `250ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim();
    let secs = if unit.is_empty() {
        n
    } else {
        n * keys::DURATION_UNITS.iter().find(|(u, _)| *u == unit)?.1 / 1e3
    };
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::diag::Pos;

    fn parse_str(text: &str) -> Result<Workflow, Diagnostics> {
        parse(Source::new("wf.yaml", text), "wf")
    }

    fn errors(text: &str) -> Vec<(usize, usize, String)> {
        parse_str(text)
            .unwrap_err()
            .items
            .into_iter()
            .map(|d| {
                let p = d.span.map(|s| s.start).unwrap_or_default();
                (p.line, p.col, d.message)
            })
            .collect()
    }

    #[test]
    fn parses_a_full_workflow() {
        let wf = parse_str(
            "name: wc\nparams:\n  top: 3\ninputs:\n  corpus: data/c.txt\njobs:\n  split:\n    uses: t/split.wasm\n    args: [--parts, '4']\n    inputs:\n      text: ${{ inputs.corpus }}\n    outputs: [chunks]\n  count:\n    uses: t/count.wasm\n    needs: split\n    strategy:\n      matrix:\n        i: [0, 1]\n    inputs:\n      chunk: ${{ jobs.split.outputs.chunks[matrix.i] }}\n    stdout: counts\n    limits: { memory: 64MiB, timeout: 2s }\n",
        )
        .unwrap();
        assert_eq!(wf.name, "wc");
        assert_eq!(wf.params[0].default.value, "3");
        assert_eq!(wf.inputs[0].path.value, "data/c.txt");
        let count = &wf.jobs[1];
        assert_eq!(count.needs[0].value, "split");
        assert_eq!(count.matrix[0].1.len(), 2);
        assert_eq!(count.limits.memory, Some(64 << 20));
        assert_eq!(count.limits.timeout, Some(Duration::from_secs(2)));
        let r = count.inputs[0].1.refs[0].single_ref().unwrap();
        let RefKind::Output { job, output, index } = &r.kind else {
            panic!()
        };
        assert_eq!(
            (job.value.as_str(), output.value.as_str()),
            ("split", "chunks")
        );
        assert_eq!(index.as_ref().unwrap().value, Index::Matrix("i".into()));
        // `${{` starts at column 14 of line 20; `split` at column 23.
        assert_eq!(r.span.start, Pos { line: 20, col: 14 });
        assert_eq!(job.span.start, Pos { line: 20, col: 23 });
    }

    #[test]
    fn unknown_keys_are_reported_with_suggestions() {
        let e = parse_str("jobs:\n  a:\n    uess: a.wasm\n").unwrap_err();
        assert_eq!(e.items.len(), 1);
        let d = &e.items[0];
        assert_eq!(d.message, "unknown key `uess`");
        assert_eq!(d.span.unwrap().start, Pos { line: 3, col: 5 });
        assert_eq!(d.help.as_deref(), Some("did you mean `uses`?"));
        assert_eq!(
            errors("jobz:\n  a: {uses: a.wasm}\n")[0].2,
            "unknown key `jobz`"
        );
    }

    #[test]
    fn every_error_is_reported() {
        let errs =
            errors("jobs:\n  a:\n    uses: a.wasm\n    args: ${{ x }}\n  b:\n    use: b.wasm\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (4, 11));
        assert_eq!((errs[1].0, errs[1].1), (6, 5));
    }

    #[test]
    fn references_are_checked_for_form() {
        let errs = errors(
            "jobs:\n  a:\n    uses: a.wasm\n    args: ['${{ parms.x }}', '${{ jobs.b.out.c }}', '${{ jobs.b.outputs.c[x] }}', '${{ params.x']\n",
        );
        let msgs: Vec<&str> = errs.iter().map(|e| e.2.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "unknown reference `parms.x`",
                "`jobs.b.out.c` is not a job output reference",
                "`x` is not an index",
                "unclosed `${{`"
            ]
        );
        // Quoted scalars: the caret is inside the quotes.
        assert_eq!((errs[0].0, errs[0].1), (4, 17));
    }

    #[test]
    fn inputs_must_be_single_file_references() {
        let errs = errors(
            "params:\n  p: 1\njobs:\n  a:\n    uses: a.wasm\n    inputs:\n      x: ${{ params.p }}\n      y: file.txt\n",
        );
        assert_eq!(errs.len(), 2);
        assert!(errs[0].2.contains("input `x` is not a file reference"));
    }

    #[test]
    fn templates_mix_text_and_refs() {
        let t = parse_template("--top=${{ params.top }}!", Span::default(), false).unwrap();
        assert_eq!(t.parts.len(), 3);
        assert_eq!(t.parts[0], Part::Lit("--top=".into()));
        assert_eq!(t.parts[2], Part::Lit("!".into()));
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1e9"), None);
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
    }
}
