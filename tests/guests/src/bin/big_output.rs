//! `big_output [GIB]`: writes GIB GiB (default 10) of a fixed byte pattern to
//! `/out/big` in 1 MiB writes, then exits 0. The host is expected to stop it at
//! its output-size limit long before that.

use std::fs::File;
use std::io::Write;

const MIB: usize = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gib: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 10,
    };
    let chunk: Vec<u8> = (0..MIB).map(|i| b'a' + (i % 26) as u8).collect();
    let mut out = File::create("/out/big")?;
    for _ in 0..gib * 1024 {
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(())
}
