//! What happened to a job: a success with its manifest, or a failure with a
//! cause a person can act on and whose fault it is.
//!
//! A failure's message starts with its cause in a user's words (`stack
//! overflow`, `exit code 3`, `timeout after 2s`, `memory limit 64 MiB`, …);
//! what follows on later lines is detail, such as the guest's backtrace.
//! [`FailureKind::as_str`] is the same cause as a stable name, which is
//! what the records keep and what an `if:` condition compares
//! (`jobs.a.cause == 'stack_overflow'`).

use crate::store::action::Manifest;
use crate::store::digest::Digest;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

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
    /// What happened: for the kinds that [name themselves](FailureKind::names_itself)
    /// the first line is the cause in a user's words; later lines (a
    /// backtrace) are detail.
    pub message: String,
    /// Captured standard output, if the job got far enough to have one.
    pub stdout: Option<Digest>,
    /// Captured standard error, likewise.
    pub stderr: Option<Digest>,
    /// The code the program exited with, for [`FailureKind::Exit`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// Classes of job failure: the cause, as far as the host can tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The program exited with a nonzero code (see [`Failure::exit_code`]).
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
    /// The guest executed `unreachable` (a Rust panic or `abort()`, a C `__builtin_trap`).
    Unreachable,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// An integer division or remainder by zero.
    DivideByZero,
    /// An integer overflow in a division (`INT_MIN / -1`) or conversion.
    IntegerOverflow,
    /// A float that is NaN or out of range converted to an integer.
    BadConversion,
    /// An access outside a table (`call_indirect` past its end).
    TableOutOfBounds,
    /// An indirect call through an empty table slot.
    NullCall,
    /// An indirect call to a function of another type.
    BadSignature,
    /// A misaligned atomic access.
    Misaligned,
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
    /// Every kind, in declaration order.
    pub const ALL: &[FailureKind] = &[
        FailureKind::Exit,
        FailureKind::Timeout,
        FailureKind::OutOfMemory,
        FailureKind::StackOverflow,
        FailureKind::OutOfFuel,
        FailureKind::OutputLimit,
        FailureKind::Unreachable,
        FailureKind::MemoryOutOfBounds,
        FailureKind::DivideByZero,
        FailureKind::IntegerOverflow,
        FailureKind::BadConversion,
        FailureKind::TableOutOfBounds,
        FailureKind::NullCall,
        FailureKind::BadSignature,
        FailureKind::Misaligned,
        FailureKind::Trap,
        FailureKind::Guest,
        FailureKind::MissingOutput,
        FailureKind::BadOutput,
        FailureKind::Instantiation,
        FailureKind::Input,
        FailureKind::Host,
    ];

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

    /// Whether a message of this kind starts with its cause in a user's
    /// words (`exit code 3`, `stack overflow`): limits, traps and exits.
    /// The other kinds' messages are details after the kind
    /// (`missing output: declared output …`).
    pub fn names_itself(self) -> bool {
        !matches!(
            self,
            FailureKind::Guest
                | FailureKind::MissingOutput
                | FailureKind::BadOutput
                | FailureKind::Instantiation
                | FailureKind::Input
                | FailureKind::Host
        )
    }

    /// The stable, machine-readable name (in records, `--json` and `if:`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Exit => "exit",
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "out_of_memory",
            FailureKind::StackOverflow => "stack_overflow",
            FailureKind::OutOfFuel => "out_of_fuel",
            FailureKind::OutputLimit => "output_limit",
            FailureKind::Unreachable => "unreachable",
            FailureKind::MemoryOutOfBounds => "memory_out_of_bounds",
            FailureKind::DivideByZero => "divide_by_zero",
            FailureKind::IntegerOverflow => "integer_overflow",
            FailureKind::BadConversion => "bad_conversion",
            FailureKind::TableOutOfBounds => "table_out_of_bounds",
            FailureKind::NullCall => "null_call",
            FailureKind::BadSignature => "bad_signature",
            FailureKind::Misaligned => "misaligned",
            FailureKind::Trap => "trap",
            FailureKind::Guest => "guest_error",
            FailureKind::MissingOutput => "missing_output",
            FailureKind::BadOutput => "bad_output",
            FailureKind::Instantiation => "instantiation",
            FailureKind::Input => "input",
            FailureKind::Host => "host",
        }
    }

    /// The kind named `s` by [`FailureKind::as_str`].
    pub fn parse(s: &str) -> Option<FailureKind> {
        FailureKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// The cause in a user's words, for a trap that has no more to say.
    pub fn words(self) -> &'static str {
        match self {
            FailureKind::Exit => "exit",
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "memory limit",
            FailureKind::StackOverflow => "stack overflow",
            FailureKind::OutOfFuel => "out of fuel",
            FailureKind::OutputLimit => "output limit",
            FailureKind::Unreachable => "unreachable code reached",
            FailureKind::MemoryOutOfBounds => "out-of-bounds memory access",
            FailureKind::DivideByZero => "integer divide by zero",
            FailureKind::IntegerOverflow => "integer overflow",
            FailureKind::BadConversion => "invalid conversion to integer",
            FailureKind::TableOutOfBounds => "out-of-bounds table access",
            FailureKind::NullCall => "indirect call to a null table entry",
            FailureKind::BadSignature => "indirect call type mismatch",
            FailureKind::Misaligned => "misaligned memory access",
            FailureKind::Trap => "trap",
            FailureKind::Guest => "guest error",
            FailureKind::MissingOutput => "missing output",
            FailureKind::BadOutput => "bad output",
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
            exit_code: None,
        }
    }

    /// A host-side failure from an I/O error, with what was being done.
    pub fn host(doing: &str, e: impl fmt::Display) -> Self {
        Failure::new(FailureKind::Host, format!("{doing}: {e}"))
    }

    /// The program exited with `code` (not 0).
    pub fn exit(code: i32) -> Self {
        Failure {
            exit_code: Some(code),
            ..Failure::new(FailureKind::Exit, format!("exit code {code}"))
        }
    }

    /// The whole report: the cause on the first line (the kind's words
    /// first where the message does not start with them), detail after.
    pub fn describe(&self) -> String {
        describe(self.kind, &self.message)
    }

    /// The first line of [`Failure::describe`]: the cause alone.
    pub fn cause(&self) -> String {
        cause(self.kind, &self.message)
    }
}

/// [`Failure::describe`] for a recorded kind and message.
pub fn describe(kind: FailureKind, message: &str) -> String {
    if kind.names_itself() {
        message.to_string()
    } else {
        format!("{kind}: {message}")
    }
}

/// [`Failure::cause`] for a recorded kind and message.
pub fn cause(kind: FailureKind, message: &str) -> String {
    describe(kind, message)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A size as a person writes it: `64 MiB`, `2 GiB`, `1500 bytes`.
pub fn size_words(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// A duration as a person writes it (and as `limits:` takes it): `2s`,
/// `300ms`, `10m`, `1h30m`.
pub fn duration_words(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 || !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_name_that_parses_back_and_conditions_know_it() {
        for k in FailureKind::ALL {
            assert_eq!(FailureKind::parse(k.as_str()), Some(*k));
        }
        let names: Vec<&str> = FailureKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, crate::workflow::cond::CAUSES);
    }

    #[test]
    fn the_first_line_is_the_cause() {
        let f = Failure::new(FailureKind::StackOverflow, "stack overflow\n  at f");
        assert_eq!(f.cause(), "stack overflow");
        assert_eq!(f.describe(), "stack overflow\n  at f");
        let f = Failure::new(
            FailureKind::MissingOutput,
            "declared output `x` was not written",
        );
        assert_eq!(
            f.cause(),
            "missing output: declared output `x` was not written"
        );
        assert_eq!(Failure::exit(3).cause(), "exit code 3");
        assert_eq!(Failure::exit(3).exit_code, Some(3));
    }

    #[test]
    fn sizes_and_durations_read_as_written() {
        assert_eq!(size_words(64 << 20), "64 MiB");
        assert_eq!(size_words(2 << 30), "2 GiB");
        assert_eq!(size_words(1500), "1500 bytes");
        assert_eq!(duration_words(Duration::from_secs(2)), "2s");
        assert_eq!(duration_words(Duration::from_millis(300)), "300ms");
        assert_eq!(duration_words(Duration::from_secs(600)), "10m");
        assert_eq!(duration_words(Duration::from_secs(5400)), "1h30m");
    }
}
