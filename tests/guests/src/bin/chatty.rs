//! `chatty [MIB]`: writes MIB MiB (default 100) of printable 64-byte lines to
//! stdout in 64 KiB writes, then prints `chatty done` to stderr and exits 0.
//! Write errors on stdout are not ignored: they end the task with an error.

use std::io::{BufWriter, Write};

const WRITE: usize = 64 << 10;
const LINE: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 100,
    };
    // 1024 lines of 63 printable characters plus `\n`.
    let block: Vec<u8> = (0..WRITE)
        .map(|i| {
            if i % LINE == LINE - 1 {
                b'\n'
            } else {
                b'0' + ((i / LINE + i % LINE) % 75) as u8
            }
        })
        .collect();
    let mut stdout = BufWriter::with_capacity(WRITE, std::io::stdout().lock());
    for _ in 0..mib * 16 {
        stdout.write_all(&block)?;
    }
    stdout.flush()?;
    drop(stdout);
    eprintln!("chatty done");
    Ok(())
}
