//! What happened to a job: a success with its manifest, or a failure with a
//! class a person can act on and whose fault it is.

use crate::cache::Manifest;
use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The result of executing one job.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The job succeeded and produced every declared output.
    Success(Manifest),
    /// The job failed; nothing is cached.
    Failure(Failure),
}

/// Why a job failed, with whatever log it left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The class of failure.
    pub kind: FailureKind,
    /// A one-line explanation.
    pub message: String,
    /// Captured standard output, if the job got far enough to have one.
    pub stdout: Option<Digest>,
    /// Captured standard error, likewise.
    pub stderr: Option<Digest>,
}

/// Classes of job failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The program exited unsuccessfully (WASI 0.2 reports only failure, not a code).
    Exit,
    /// The wall-clock limit was reached.
    Timeout,
    /// Linear memory would have grown past the limit.
    OutOfMemory,
    /// The guest's call stack overflowed.
    StackOverflow,
    /// The job used all the fuel it was given.
    OutOfFuel,
    /// The job's outputs grew past the output limit.
    OutputLimit,
    /// Any other WebAssembly trap.
    Trap,
    /// A typed task returned `err(e)`; the message is `e`.
    Guest,
    /// A declared output was not written.
    MissingOutput,
    /// An output was written in a shape that is not allowed (a symlink, a bad list).
    BadOutput,
    /// The component could not be compiled or instantiated (bad file, missing import).
    Instantiation,
    /// An input could not be resolved (an index past the end of a list output).
    Input,
    /// The host failed (disk full, permissions): not the job's fault.
    Host,
}

impl FailureKind {
    /// Whether running the job again would fail the same way: hitting a
    /// limit again with the same limit, or a component that cannot load.
    /// Such failures are retried only when a job asks (`retry.always`).
    pub fn is_deterministic(self) -> bool {
        matches!(
            self,
            FailureKind::OutOfMemory
                | FailureKind::OutOfFuel
                | FailureKind::StackOverflow
                | FailureKind::OutputLimit
                | FailureKind::Instantiation
                | FailureKind::Input
        )
    }

    /// The stable, machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Exit => "exit",
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "out_of_memory",
            FailureKind::StackOverflow => "stack_overflow",
            FailureKind::OutOfFuel => "out_of_fuel",
            FailureKind::OutputLimit => "output_limit",
            FailureKind::Trap => "trap",
            FailureKind::Guest => "guest_error",
            FailureKind::MissingOutput => "missing_output",
            FailureKind::BadOutput => "bad_output",
            FailureKind::Instantiation => "instantiation",
            FailureKind::Input => "input",
            FailureKind::Host => "host",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().replace('_', " "))
    }
}

impl Failure {
    /// A failure with no captured log.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            stdout: None,
            stderr: None,
        }
    }

    /// A host-side failure from an I/O error, with what was being done.
    pub fn host(doing: &str, e: impl fmt::Display) -> Self {
        Failure::new(FailureKind::Host, format!("{doing}: {e}"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}
