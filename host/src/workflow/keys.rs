//! Every key a workflow file may hold, with what it means, an example, and
//! the shape of its value. The parser (`spec`) accepts exactly these keys
//! and no others, and the JSON Schema (`schema`) is generated from the same
//! table, so the schema cannot drift from what the parser reads. Pure.
//!
//! Examples are JSON, which is also YAML flow syntax: the schema embeds them
//! as they are, and a test parses each one with the real parser.

/// One key of the workflow file.
#[derive(Debug)]
pub struct Key {
    /// The key as written.
    pub name: &'static str,
    /// What it means (the schema's `description`, an editor's hover text).
    pub doc: &'static str,
    /// An example value, as JSON.
    pub example: &'static str,
    /// What its value may be.
    pub shape: Shape,
    /// Whether a mapping of this table must have it.
    pub required: bool,
}

/// What a key's value may be.
#[derive(Debug)]
pub enum Shape {
    /// A scalar: a string, number or boolean.
    Scalar,
    /// A string.
    Text,
    /// A name: letters, digits, `_` or `-`, starting with a letter or `_`.
    Ident,
    /// `true` or `false`.
    Bool,
    /// A size such as `512MiB` (see [`SIZE_UNITS`]) or a number of bytes.
    Size,
    /// A duration such as `30s` (see [`DURATION_UNITS`]) or a number of seconds.
    Duration,
    /// A whole number within a range (also written like `1e9`).
    Count {
        /// The least allowed.
        min: u64,
        /// The most allowed, if any.
        max: Option<u64>,
    },
    /// One name or a list of them.
    Names {
        /// Whether each must be a valid name ([`Shape::Ident`]).
        ident: bool,
    },
    /// A list of scalars.
    Scalars {
        /// The fewest items allowed.
        min: usize,
    },
    /// One `${{ inputs.x }}` or `${{ jobs.a.outputs.y }}` reference, or a
    /// list of them.
    FileRefs,
    /// A condition, such as `${{ params.mode == 'full' }}`.
    Condition,
    /// A mapping with these keys.
    Fixed(&'static [Key]),
    /// A mapping of names (chosen by the author) to values.
    Named {
        /// What one entry is.
        entry: &'static str,
        /// Each entry's value.
        value: &'static Shape,
    },
    /// Any YAML value (a typed task's argument).
    Any,
}

/// Units of sizes, with their multipliers; a bare number is bytes.
pub const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KB", 1_000),
    ("kB", 1_000),
    ("KiB", 1 << 10),
    ("MB", 1_000_000),
    ("MiB", 1 << 20),
    ("GB", 1_000_000_000),
    ("GiB", 1 << 30),
];

/// Units of durations, in milliseconds; a bare number is seconds.
pub const DURATION_UNITS: &[(&str, f64)] = &[
    ("ms", 1.0),
    ("s", 1e3),
    ("m", 60e3),
    ("min", 60e3),
    ("h", 3600e3),
];

/// The keys of a whole workflow file.
pub const TOP: &[Key] = &[
    Key {
        name: "name",
        doc: "The workflow's name, shown by `cairn runs` and used to find a job's earlier runs (`cairn why`). Defaults to the file's name without `.yaml`.",
        example: r#""wordcount""#,
        shape: Shape::Scalar,
        required: false,
    },
    Key {
        name: "params",
        doc: "Parameters and their default values, used in `args`, `with` and `if` as `${{ params.NAME }}`; override one with `cairn run --param NAME=VALUE`.",
        example: r#"{"top": 10, "mode": "full"}"#,
        shape: Shape::Named {
            entry: "A parameter's default value: a string, number or boolean.",
            value: &Shape::Scalar,
        },
        required: false,
    },
    Key {
        name: "inputs",
        doc: "Host files the workflow reads, relative to the workflow file, ingested into the store; jobs refer to them as `${{ inputs.NAME }}`. Replace one with `cairn run --input NAME=PATH`.",
        example: r#"{"corpus": "data/corpus.txt"}"#,
        shape: Shape::Named {
            entry: "A path to a host file, relative to the workflow file.",
            value: &Shape::Text,
        },
        required: false,
    },
    Key {
        name: "jobs",
        doc: "The jobs, by name: each is one call of one WebAssembly component. Dependencies come from references to other jobs' outputs and from `needs`.",
        example: r#"{"hello": {"uses": "tasks/hello.wasm", "args": ["world"]}}"#,
        shape: Shape::Named {
            entry: "A job: one call of one component (`uses`), in its own sandbox.",
            value: &Shape::Fixed(JOB),
        },
        required: true,
    },
];

/// The keys of one job.
pub const JOB: &[Key] = &[
    Key {
        name: "uses",
        doc: "The component to run: a `.wasm` file (a WASI 0.2 component or a preview 1 core module), or a task source directory that cairn builds (Rust, Python, JavaScript, C, Zig or Go). Relative to the workflow file.",
        example: r#""tasks/split.wasm""#,
        shape: Shape::Text,
        required: true,
    },
    Key {
        name: "needs",
        doc: "Jobs that must finish first, besides those whose outputs this job references.",
        example: r#"["split"]"#,
        shape: Shape::Names { ident: true },
        required: false,
    },
    Key {
        name: "args",
        doc: "A command task's arguments (argv after argv[0]); each may hold `${{ params.NAME }}` and `${{ matrix.KEY }}`. Inside a flow list, quote references.",
        example: r#"["--top", "${{ params.top }}"]"#,
        shape: Shape::Scalars { min: 0 },
        required: false,
    },
    Key {
        name: "inputs",
        doc: "A command task's input files, by name: each a reference to a workflow input or another job's output, read-only at `/in/NAME`; a list of references (or a reference to a matrix job's output) is a directory `/in/NAME/` holding `0`, `1`, ….",
        example: r#"{"text": "${{ inputs.corpus }}", "parts": ["${{ jobs.a.outputs.out }}", "${{ jobs.b.outputs.out }}"]}"#,
        shape: Shape::Named {
            entry: "A reference such as `${{ inputs.corpus }}` or `${{ jobs.split.outputs.chunks[matrix.i] }}`, or a list of them.",
            value: &Shape::FileRefs,
        },
        required: false,
    },
    Key {
        name: "outputs",
        doc: "A command task's outputs, collected from `/out/NAME` after it runs (a directory `/out/NAME/` holding `0`, `1`, … is a list output).",
        example: r#"["chunks"]"#,
        shape: Shape::Names { ident: true },
        required: false,
    },
    Key {
        name: "stdout",
        doc: "Keep the task's standard output as the output of this name.",
        example: r#""report""#,
        shape: Shape::Ident,
        required: false,
    },
    Key {
        name: "strategy",
        doc: "How the job fans out: `matrix` runs one instance per combination of values.",
        example: r#"{"matrix": {"part": [0, 1, 2, 3]}}"#,
        shape: Shape::Fixed(STRATEGY),
        required: false,
    },
    Key {
        name: "limits",
        doc: "Sandbox limits for this job; each one unset takes the run's default (`cairn run --memory`, `--timeout`, `--fuel`, `--output-limit`, `--log-limit`).",
        example: r#"{"memory": "256MiB", "timeout": "30s"}"#,
        shape: Shape::Fixed(LIMITS),
        required: false,
    },
    Key {
        name: "retry",
        doc: "Re-run the job when it fails, waiting `backoff` before the first retry and twice as long before each further one (at most a minute). Every attempt is recorded.",
        example: r#"{"attempts": 3, "backoff": "1s"}"#,
        shape: Shape::Fixed(RETRY),
        required: false,
    },
    Key {
        name: "hermetic",
        doc: "Whether the job sees a fixed clock and randomness seeded by its cache key (the default, `true`), so the same inputs give the same bytes; `false` gives it the host's clocks and randomness, and it is then cached only with `cache: true`.",
        example: "false",
        shape: Shape::Bool,
        required: false,
    },
    Key {
        name: "cache",
        doc: "Whether the job's results are looked up in and stored to the cache. Defaults to `true` for hermetic jobs and `false` otherwise.",
        example: "true",
        shape: Shape::Bool,
        required: false,
    },
    Key {
        name: "with",
        doc: "A typed task's arguments, by parameter name: YAML values of the parameter's WIT type, or one reference (`${{ inputs.NAME }}`, `${{ jobs.JOB.outputs.NAME }}`) to an artifact or a typed output.",
        example: r#"{"text": "${{ inputs.corpus }}", "count": 4}"#,
        shape: Shape::Named {
            entry: "The parameter's value: a YAML value of its WIT type, or one reference.",
            value: &Shape::Any,
        },
        required: false,
    },
    Key {
        name: "call",
        doc: "The export a typed task calls, when the component has several.",
        example: r#""split""#,
        shape: Shape::Text,
        required: false,
    },
    Key {
        name: "secrets",
        doc: "Secrets the job may read through `context.secret`, by name; their values come from `cairn run --secret NAME` or `--secrets FILE` and never enter logs, records or cache keys.",
        example: r#"["TOKEN"]"#,
        shape: Shape::Names { ident: false },
        required: false,
    },
    Key {
        name: "secrets-in-key",
        doc: "Key the job's results also on a store-keyed hash of each secret's value (by default only the names enter the key).",
        example: "true",
        shape: Shape::Bool,
        required: false,
    },
    Key {
        name: "if",
        doc: "Run the job only when this holds: comparisons, `&&`, `||`, `!` and parentheses over params, matrix values and typed outputs of earlier jobs. Otherwise the job, and every job that needs it, is skipped.",
        example: r#""${{ params.mode == 'full' }}""#,
        shape: Shape::Condition,
        required: false,
    },
];

/// The keys of a job's `strategy`.
pub const STRATEGY: &[Key] = &[Key {
    name: "matrix",
    doc: "Matrix keys, each with a list of values: one instance of the job runs per combination, named like `count[part=0]`, and each sees its values as `${{ matrix.KEY }}`.",
    example: r#"{"part": [0, 1, 2, 3]}"#,
    shape: Shape::Named {
        entry: "The values of this matrix key (at least one).",
        value: &Shape::Scalars { min: 1 },
    },
    required: false,
}];

/// The keys of a job's `limits`.
pub const LIMITS: &[Key] = &[
    Key {
        name: "memory",
        doc: "The most linear memory the job may use (default 2GiB).",
        example: r#""256MiB""#,
        shape: Shape::Size,
        required: false,
    },
    Key {
        name: "timeout",
        doc: "The most wall time the job may take (default 10m).",
        example: r#""30s""#,
        shape: Shape::Duration,
        required: false,
    },
    Key {
        name: "fuel",
        doc: "The most fuel (roughly, wasm instructions) the job may use; unmetered unless set.",
        example: "1000000000",
        shape: Shape::Count { min: 0, max: None },
        required: false,
    },
    Key {
        name: "output",
        doc: "The most bytes the job's outputs may hold in all (default 1GiB).",
        example: r#""64MiB""#,
        shape: Shape::Size,
        required: false,
    },
    Key {
        name: "log",
        doc: "The most bytes of log (stdout and stderr) kept (default 8MiB); beyond it the log is cut and marked, and the job goes on.",
        example: r#""1MiB""#,
        shape: Shape::Size,
        required: false,
    },
];

/// The keys of a job's `retry`.
pub const RETRY: &[Key] = &[
    Key {
        name: "attempts",
        doc: "Attempts in all, from 1 (no retry) to 100.",
        example: "3",
        shape: Shape::Count {
            min: 1,
            max: Some(100),
        },
        required: false,
    },
    Key {
        name: "backoff",
        doc: "The wait before the first retry (default 1s); it doubles for each further one, up to a minute.",
        example: r#""2s""#,
        shape: Shape::Duration,
        required: false,
    },
    Key {
        name: "always",
        doc: "Also retry failures that would recur identically (out of memory or fuel, stack overflow, output limit, instantiation, a hermetic typed task's `err`).",
        example: "true",
        shape: Shape::Bool,
        required: false,
    },
];

/// The names of a table's keys, in order: what the parser accepts.
pub fn names(keys: &[Key]) -> Vec<&'static str> {
    keys.iter().map(|k| k.name).collect()
}
