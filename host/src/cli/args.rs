//! The command line as typed: clap's "low" arguments, which only validate
//! what the user wrote. Commands turn them into settings.

use crate::store::records::RunStatus;
use crate::workflow::plan::Overrides;
use crate::workflow::spec::{parse_duration, parse_size};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

pub(super) const EXIT_CODES: &str = "\
Exit codes:
  0  success: every job succeeded (executed or cached)
  1  a job failed (or, for queries, the run failed or was interrupted)
  2  bad usage, an invalid workflow (reported with file:line:col), or no such run; nothing ran
  3  cairn or the machine failed (store, engine, records), not the workflow
  4  the run is still going (`results` without --wait, or --timeout ran out)

Query commands read the store given by --store or CAIRN_STORE, else ./.cairn.
A RUN is any unique prefix of a run id, as with git.";

/// Run workflows of sandboxed WebAssembly components, cached by content.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, after_help = EXIT_CODES)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, clap::Args)]
pub(super) struct StoreArg {
    /// The store directory [default: the nearest .cairn here or above, else ./.cairn].
    #[arg(long, env = "CAIRN_STORE")]
    pub(super) store: Option<PathBuf>,
}

impl StoreArg {
    pub(super) fn dir(&self) -> PathBuf {
        self.store.clone().unwrap_or_else(found_store)
    }
}

/// The store of a command not told one (`--store`, `CAIRN_STORE`): the
/// nearest `.cairn` directory in the current directory or above it, as git
/// finds `.git`, looking no higher than the top of a repository (a
/// directory holding `.git`); else `./.cairn`, which `run` creates. One
/// rule for every command, so a query made where a run was started reads
/// what that run wrote, wherever its workflow file is.
pub(super) fn found_store() -> PathBuf {
    let here = PathBuf::from(".cairn");
    let Ok(cwd) = std::env::current_dir() else {
        return here;
    };
    for dir in cwd.ancestors() {
        let candidate = dir.join(".cairn");
        if candidate.is_dir() {
            return if dir == cwd { here } else { candidate };
        }
        if dir.join(".git").exists() {
            break;
        }
    }
    here
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Run a workflow: plan it, then execute every job not already cached.
    Run(RunArgs),
    /// Type-check a workflow against its components without running it:
    /// every argument, reference and output, at file:line:col.
    Check {
        #[command(flatten)]
        wf: WorkflowArgs,
        /// Print JSON: the jobs, or the problems found.
        #[arg(long)]
        json: bool,
    },
    /// Show what a run would do without running it: the DAG in layers, each
    /// job's cache key and whether it would hit the cache now.
    Plan {
        #[command(flatten)]
        wf: WorkflowArgs,
        /// text, json, or a graph for other tools: dot (Graphviz) or
        /// mermaid, or svg: the picture `cairn serve` draws, ready to embed.
        #[arg(long, default_value = "text", value_parser = ["text", "json", "dot", "mermaid", "svg"])]
        format: String,
        /// Print JSON (the same as --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Describe a component: digest, size, kind, its export's WIT signature,
    /// and the imports it needs.
    Inspect {
        /// The component (.wasm): a component, a wasip1 core module (adapted
        /// first) or a task source directory (built first).
        component: PathBuf,
        /// The export to describe, when there are several.
        #[arg(long)]
        call: Option<String>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Build a task source directory (Rust, Python, JavaScript, C, Zig, Go)
    /// into a component in the store, as `uses:` a directory does, and print
    /// where it is and its digest. Cached: an unchanged directory is not
    /// rebuilt.
    Build {
        /// The task directory.
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Recent runs, newest first.
    Runs {
        /// Only runs of this workflow (by name).
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs in this state: running, succeeded, failed, interrupted.
        #[arg(long, value_parser = run_status)]
        status: Option<RunStatus>,
        /// Only runs in which a job set this label: --label owner=ci (repeatable; all must match).
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
        labels: Vec<(String, String)>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// A run's state and each job's, in dependency order, with their labels.
    Status {
        /// The run (any unique prefix of its id).
        run: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// The logs (stdout, then stderr) of a run's jobs.
    Logs {
        /// The run.
        run: String,
        /// Only this job.
        job: Option<String>,
        /// Keep printing logs as jobs finish, until the run ends.
        #[arg(short, long)]
        follow: bool,
        /// Print one JSON object per job (a line each).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(flatten)]
        store: StoreArg,
    },
    /// A run's outputs: digest, size and store path of each.
    Results {
        /// The run.
        run: String,
        /// Wait for the run to end (from any process).
        #[arg(long)]
        wait: bool,
        /// With --wait, give up after this long (exit code 4).
        #[arg(long, value_parser = duration, requires = "wait")]
        timeout: Option<Duration>,
        /// Every job's outputs, not only the final ones (of jobs nothing depends on).
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Print a blob from the store (checked against its digest) to stdout.
    Cat {
        /// The blob's digest (64 hex digits).
        digest: String,
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Copy one output of a run out of the store (a list becomes a directory).
    Get {
        /// The run.
        run: String,
        /// The job's name, as `cairn status` shows it.
        job: String,
        /// The output's name.
        output: String,
        /// Where to write it.
        #[arg(short, long)]
        out: PathBuf,
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Metrics recorded by a run's jobs.
    Metrics {
        /// The run.
        run: String,
        /// Only this job.
        job: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Re-execute every job of a recorded run without the cache and check
    /// that each output is byte-identical to the recorded one (exit 1 if not).
    Verify {
        /// The run.
        run: String,
        /// Jobs executing at once [default: number of cores].
        #[arg(short, long)]
        jobs: Option<usize>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Check or clean the store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Serve a REAPI server as a worker: lease Cairn actions (Remote
    /// Workers API), run each in the same sandbox as a local job, upload
    /// its outputs and result.
    Worker {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Actions run at once [default: number of cores].
        #[arg(long)]
        slots: Option<usize>,
        /// The worker's blob cache [default: $XDG_CACHE_HOME/cairn/worker].
        #[arg(long)]
        store: Option<PathBuf>,
        /// The bot's id [default: host name and process id].
        #[arg(long)]
        id: Option<String>,
    },
    /// Run the Cairn action whose input root is the current directory (as
    /// any REAPI worker runs an action's command): reads cairn.json,
    /// component.wasm and in/, writes out/ and cairn.out.json.
    Action {
        /// The scratch store [default: a temporary one].
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Saved runtime configurations: where runs go (`--config NAME`).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Why a job executed instead of hitting the cache: what changed in its
    /// key since the same job's most recent earlier run.
    Why {
        /// The run.
        run: String,
        /// The job's name, as `cairn status` shows it.
        job: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Serve a read-only web view of the store's runs (and the same data
    /// as JSON under /api/); prints its URL on the first line.
    Serve(ServeArgs),
    /// Print the JSON Schema of the workflow file, for editors
    /// (`# yaml-language-server: $schema=…`).
    Schema,
    /// Print a shell completion script: `cairn completions bash > …`.
    Completions {
        /// bash, zsh or fish.
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum StoreCommand {
    /// Re-hash every blob and check that every cache entry's blobs exist (exit 1 on a problem).
    Verify {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Remove blobs, cache entries and run records that no kept run needs.
    /// Runs in progress are always kept.
    Gc {
        /// Keep the newest N runs.
        #[arg(long)]
        keep_last: Option<usize>,
        /// Keep runs started within this long, such as 48h.
        #[arg(long, value_parser = duration)]
        keep_since: Option<Duration>,
        #[command(flatten)]
        store: StoreArg,
    },
}

/// Where a command's work goes: the flags every command that runs jobs or
/// reads blobs takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub(super) struct RemoteArgs {
    /// A REAPI server (grpc://HOST:PORT) whose action cache and CAS stand in
    /// front of the local store.
    #[arg(long, value_name = "URL")]
    pub(super) remote: Option<String>,
    /// The server's instance name.
    #[arg(long, value_name = "NAME", requires = "remote")]
    pub(super) remote_instance: Option<String>,
    /// A saved runtime configuration (see `cairn config`); `local` is the default.
    #[arg(long = "config", value_name = "NAME", env = "CAIRN_CONFIG")]
    pub(super) config: Option<String>,
    /// Execute jobs on the server's workers (its Execution service), not
    /// only cache there.
    #[arg(long)]
    pub(super) remote_exec: bool,
}

impl RemoteArgs {
    /// The target these flags name, if any: `--remote` wins over a configuration.
    pub(super) fn target(&self) -> Result<Option<crate::remote::config::Target>, String> {
        if let Some(url) = &self.remote {
            return Ok(Some(crate::remote::config::Target {
                spec: crate::remote::client::RemoteSpec {
                    url: url.clone(),
                    instance: self.remote_instance.clone().unwrap_or_default(),
                    headers: Vec::new(),
                },
                exec: self.remote_exec,
            }));
        }
        let mut target = match &self.config {
            None => None,
            Some(name) => crate::remote::config::resolve(name).map_err(|e| e.to_string())?,
        };
        match &mut target {
            Some(t) => t.exec |= self.remote_exec,
            None if self.remote_exec => {
                return Err(
                    "--remote-exec needs a server: give --remote URL or --config NAME".into(),
                );
            }
            None => {}
        }
        Ok(target)
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum ConfigCommand {
    /// Save a configuration (or replace one of the same name).
    Add {
        /// Its name, for `--config NAME` or `CAIRN_CONFIG`.
        name: String,
        /// The REAPI server, grpc://HOST:PORT (grpcs:// for TLS).
        #[arg(long, value_name = "URL")]
        remote: String,
        /// The server's instance name.
        #[arg(long, default_value = "")]
        instance: String,
        /// A header sent with every call, such as 'authorization=Bearer …'
        /// (repeatable). Stored in the file, readable only by you.
        #[arg(long = "header", value_name = "NAME=VALUE", value_parser = key_value)]
        headers: Vec<(String, String)>,
        /// A header whose value is read from an environment variable each
        /// time: [NAME=]VAR, NAME defaulting to authorization (repeatable).
        #[arg(long = "header-from-env", value_name = "[NAME=]VAR")]
        headers_from_env: Vec<String>,
        /// Execute jobs on the server's workers, not only cache there.
        #[arg(long)]
        remote_exec: bool,
    },
    /// The configurations: `local` and the saved ones.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One configuration, header values masked.
    Show {
        /// Its name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a saved configuration.
    Remove {
        /// Its name.
        name: String,
    },
}

/// A workflow and what the command line changes about it: shared by `run`,
/// `check` and `plan`.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct WorkflowArgs {
    /// The workflow file (YAML).
    pub(super) workflow: PathBuf,
    /// Override a parameter: --param top=20 (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = key_value)]
    pub(super) params: Vec<(String, String)>,
    /// Use another host file for a workflow input: --input corpus=big.txt (repeatable).
    #[arg(long = "input", value_name = "NAME=PATH", value_parser = key_value)]
    pub(super) inputs: Vec<(String, String)>,
    /// The store directory [default: the nearest .cairn here or above, else ./.cairn].
    #[arg(long, env = "CAIRN_STORE")]
    pub(super) store: Option<PathBuf>,
    #[command(flatten)]
    pub(super) remote: RemoteArgs,
}

impl WorkflowArgs {
    pub(super) fn overrides(&self) -> Overrides {
        Overrides {
            params: self.params.clone(),
            inputs: self.inputs.clone(),
        }
    }

    pub(super) fn store_dir(&self) -> PathBuf {
        self.store.clone().unwrap_or_else(found_store)
    }
}

#[derive(Debug, Clone, clap::Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    pub(super) wf: WorkflowArgs,
    /// Jobs executing at once [default: number of cores].
    #[arg(short, long)]
    pub(super) jobs: Option<usize>,
    /// Keep running every job that does not depend on a failed one.
    #[arg(short, long)]
    pub(super) keep_going: bool,
    /// Execute every job even if its result is cached (results are still stored).
    #[arg(long)]
    pub(super) no_cache: bool,
    /// Default linear-memory limit per job (a job's `limits.memory` wins).
    #[arg(long, default_value = "2GiB", value_parser = size)]
    pub(super) memory: u64,
    /// Default wall-time limit per job (a job's `limits.timeout` wins).
    #[arg(long, default_value = "10m", value_parser = duration)]
    pub(super) timeout: Duration,
    /// Default fuel per job (a job's `limits.fuel` wins) [default: unmetered].
    #[arg(long, value_parser = fuel)]
    pub(super) fuel: Option<u64>,
    /// Default limit on a job's total output bytes (a job's `limits.output` wins).
    #[arg(long, default_value = "1GiB", value_parser = size)]
    pub(super) output_limit: u64,
    /// Default log bytes kept per job; the rest is cut (a job's `limits.log` wins).
    #[arg(long, default_value = "8MiB", value_parser = size)]
    pub(super) log_limit: u64,
    /// Pass the environment variable NAME as secret NAME to jobs that
    /// declare it (`secrets: [NAME]`) (repeatable).
    #[arg(long = "secret", value_name = "NAME")]
    pub(super) secrets: Vec<String>,
    /// Read secrets from a file of NAME=VALUE lines.
    #[arg(long = "secrets", value_name = "FILE")]
    pub(super) secrets_file: Option<PathBuf>,
    /// Print only failures and the final summary.
    #[arg(short, long)]
    pub(super) quiet: bool,
    /// Print the run as JSON on stdout, one object per line as it goes
    /// (started, queued/running/retrying/done per job, finished).
    #[arg(long, conflicts_with = "detach")]
    pub(super) json: bool,
    /// Print the new run's id and return at once; the run goes on in the
    /// background (follow it with status, logs, results --wait).
    #[arg(short, long)]
    pub(super) detach: bool,
    /// Internal: this process is the background half of --detach.
    #[arg(long, hide = true)]
    pub(super) detached_child: bool,
}

pub(super) fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got `{s}`"))
}

pub(super) fn size(s: &str) -> Result<u64, String> {
    parse_size(s).ok_or_else(|| format!("expected a size such as 512MiB or 2GiB, got `{s}`"))
}

pub(super) fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("expected a duration such as 30s or 5m, got `{s}`"))
}

pub(super) fn fuel(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .ok()
        .or_else(|| {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| format!("expected an amount of fuel such as 1e9, got `{s}`"))
}

pub(super) fn run_status(s: &str) -> Result<RunStatus, String> {
    [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Interrupted,
    ]
    .into_iter()
    .find(|r| r.as_str() == s)
    .ok_or_else(|| format!("expected running, succeeded, failed or interrupted, got `{s}`"))
}

/// `cairn serve`'s arguments.
#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    pub(super) store: StoreArg,
    /// The address to listen on: an IP address, or ADDRESS:PORT. Anything
    /// but loopback makes the runs visible to the network.
    #[arg(long, default_value = "127.0.0.1", value_parser = listen_addr)]
    pub(super) addr: std::net::SocketAddr,
    /// The port [default: a free one, or the one in --addr].
    #[arg(long)]
    pub(super) port: Option<u16>,
}

pub(super) fn listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let s = s.trim();
    let host = |h: &str| match h {
        "localhost" => Some(std::net::IpAddr::from([127, 0, 0, 1])),
        _ => h.trim_start_matches('[').trim_end_matches(']').parse().ok(),
    };
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    if let Some(ip) = host(s) {
        return Ok(std::net::SocketAddr::new(ip, 0));
    }
    if let Some((h, p)) = s.rsplit_once(':')
        && let (Some(ip), Ok(port)) = (host(h), p.parse::<u16>())
    {
        return Ok(std::net::SocketAddr::new(ip, port));
    }
    Err(format!(
        "expected an IP address such as 127.0.0.1, or ADDRESS:PORT such as 127.0.0.1:8080, got `{s}`"
    ))
}
