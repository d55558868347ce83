//! `cairn schema` and `cairn completions`: what editors and shells read.

use super::args::Cli;
use super::*;
use clap::CommandFactory;
use std::io::Write;

/// Prints the workflow file's JSON Schema.
pub(super) fn schema() -> i32 {
    let _ = std::io::stdout()
        .lock()
        .write_all(crate::workflow::schema::schema_text().as_bytes());
    EXIT_OK
}

/// Prints the completion script for `shell` (bash, zsh or fish).
pub(super) fn completions(shell: &str) -> i32 {
    let shell: clap_complete::Shell = match shell.parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "cairn", &mut out);
    let _ = std::io::stdout().lock().write_all(&out);
    EXIT_OK
}
