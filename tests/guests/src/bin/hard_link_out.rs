//! `hard_link_out`: tries to hard-link its input `/in/x` into `/out/stolen`
//! (so that writing the output would write the store's blob), and
//! `/out/a` to `/out/b`; then tries to write through `/out/stolen` if it
//! exists. Prints one stdout line per attempt, `<attempt>: ok` or
//! `<attempt>: denied`. Always exits 0.

use std::ffi::{CString, c_char, c_int};
use std::io::Write;

// std has no hard link on WASI's stable surface; wasi-libc has `link`.
unsafe extern "C" {
    fn link(old: *const c_char, new: *const c_char) -> c_int;
}

fn try_link(old: &str, new: &str) {
    let (o, n) = (CString::new(old).unwrap(), CString::new(new).unwrap());
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    let rc = unsafe { link(o.as_ptr(), n.as_ptr()) };
    println!("link {old} {new}: {}", if rc == 0 { "ok" } else { "denied" });
}

fn main() {
    try_link("/in/x", "/out/stolen");
    std::fs::write("/out/a", "a\n").unwrap();
    try_link("/out/a", "/out/b");
    let wrote = std::fs::OpenOptions::new()
        .write(true)
        .open("/out/stolen")
        .and_then(|mut f| f.write_all(b"overwritten"));
    println!("write /out/stolen: {}", if wrote.is_ok() { "ok" } else { "denied" });
}
