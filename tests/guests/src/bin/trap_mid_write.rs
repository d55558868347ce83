//! `trap_mid_write`: writes 1 MiB of `x` to `/out/partial`, flushes it, then
//! calls `std::process::abort()` (a trap in wasm), leaving a partial output
//! behind that the host must not publish.

use std::fs::File;
use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut out = File::create("/out/partial")?;
    out.write_all(&vec![b'x'; 1 << 20])?;
    out.flush()?;
    std::process::abort();
}
