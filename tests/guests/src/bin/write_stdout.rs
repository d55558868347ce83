//! `write_stdout TEXT`: writes TEXT to stdout exactly (no newline added) and
//! `note` (with a newline) to stderr.

use std::io::Write;

fn main() -> std::io::Result<()> {
    let text = std::env::args().nth(1).unwrap_or_default();
    let mut stdout = std::io::stdout();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    eprintln!("note");
    Ok(())
}
