//! The `cairn` command line. `main` is a one-liner over [`main`] here, so
//! tests can also drive the CLI in-process. One file per command group, and
//! one printer (`print`) that every command writes through.

mod args;
mod config;
mod inspect;
mod maintain;
mod print;
mod query;
mod run;
mod serve;
mod tooling;
mod work;

use crate::run::recorded::{ResultsError, Wait};
use crate::run::session::Error;
use crate::store::records::RecordError;
use args::{Cli, Command, StoreCommand};
use clap::Parser;
use config::config;
use inspect::{build, inspect};
use maintain::{store_gc, store_verify, verify};
use query::{cat, get, logs, metrics, results, runs, status, why};
use run::{check, dry_run, run};
use std::ffi::OsString;
use work::{action, worker};

/// Exit code: every job succeeded.
pub const EXIT_OK: i32 = 0;

/// Exit code: a job failed (the run's other results are still stored).
pub const EXIT_JOB_FAILED: i32 = 1;

/// Exit code: bad usage or an invalid workflow; nothing ran.
pub const EXIT_USAGE: i32 = 2;

/// Exit code: the host failed (store, engine); not the workflow's fault.
pub const EXIT_HOST: i32 = 3;

/// Exit code: the run is still going (`results` without `--wait`, or `--timeout` ran out).
pub const EXIT_RUNNING: i32 = 4;

/// Runs the CLI with these arguments (including `argv[0]`) and returns the exit code.
pub fn main<I: IntoIterator<Item = T>, T: Into<OsString> + Clone>(args: I) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    let result = match cli.command {
        Command::Run(args) => return run(args),
        Command::Check { wf, json } => return check(&wf, json),
        Command::Inspect {
            component,
            call,
            store,
        } => inspect(&component, call.as_deref(), &store.dir()),
        Command::Build { dir, json, store } => build(&dir, json, &store.dir()),
        Command::Plan { wf, format, json } => {
            return dry_run(&wf, if json { "json" } else { &format });
        }
        Command::Runs {
            workflow,
            status,
            labels,
            limit,
            json,
            store,
        } => runs(
            &store.dir(),
            workflow.as_deref(),
            status,
            &labels,
            limit,
            json,
        ),
        Command::Status { run, json, store } => status(&store.dir(), &run, json),
        Command::Logs {
            run,
            job,
            follow,
            json,
            remote,
            store,
        } => logs(&store.dir(), &remote, &run, job.as_deref(), follow, json),
        Command::Results {
            run,
            wait,
            timeout,
            all,
            json,
            remote,
            store,
        } => {
            let wait = match (wait, timeout) {
                (false, _) => Wait::No,
                (true, Some(t)) => Wait::Up(t),
                (true, None) => Wait::Forever,
            };
            results(&store.dir(), &remote, &run, wait, all, json)
        }
        Command::Cat {
            digest,
            remote,
            store,
        } => cat(&store.dir(), &remote, &digest),
        Command::Get {
            run,
            job,
            output,
            out,
            remote,
            store,
        } => get(&store.dir(), &remote, &run, &job, &output, &out),
        Command::Metrics {
            run,
            job,
            json,
            store,
        } => metrics(&store.dir(), &run, job.as_deref(), json),
        Command::Why {
            run,
            job,
            json,
            store,
        } => why(&store.dir(), &run, &job, json),
        Command::Verify { run, jobs, store } => verify(&store.dir(), &run, jobs),
        Command::Serve(args) => return serve::serve(args),
        Command::Schema => return tooling::schema(),
        Command::Completions { shell } => return tooling::completions(&shell),
        Command::Config(cmd) => config(cmd),
        Command::Worker {
            remote,
            slots,
            store,
            id,
        } => worker(&remote, slots, store, id),
        Command::Action { store } => action(store),
        Command::Store(StoreCommand::Verify { store }) => store_verify(&store.dir()),
        Command::Store(StoreCommand::Gc {
            keep_last,
            keep_since,
            store,
        }) => store_gc(&store.dir(), keep_last, keep_since),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Errors of the query commands, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub(super) enum QueryError {
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Host(String),
    #[error(transparent)]
    Workflow(#[from] Error),
}

impl QueryError {
    fn exit_code(&self) -> i32 {
        match self {
            QueryError::Records(
                RecordError::NoSuchRun(_)
                | RecordError::Ambiguous { .. }
                | RecordError::NoSuchJob { .. },
            )
            | QueryError::Usage(_) => EXIT_USAGE,
            QueryError::Results(ResultsError::Running(_) | ResultsError::TimedOut { .. }) => {
                EXIT_RUNNING
            }
            QueryError::Results(ResultsError::Records(e)) => {
                QueryError::Records(RecordError::Io(std::io::Error::other(e.to_string())))
                    .exit_code()
            }
            QueryError::Workflow(e) if e.is_user_error() => EXIT_USAGE,
            QueryError::Records(_) | QueryError::Host(_) | QueryError::Workflow(_) => EXIT_HOST,
        }
    }
}

pub(super) type Query = Result<i32, QueryError>;

pub(super) fn report_error(e: &Error) -> i32 {
    let text = e.to_string();
    let text = text.trim_end();
    // Diagnostics start with their own `error:` (one per problem).
    if text.starts_with("error") {
        eprintln!("{text}");
    } else {
        eprintln!("error: {text}");
    }
    if e.is_user_error() {
        EXIT_USAGE
    } else {
        EXIT_HOST
    }
}

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
