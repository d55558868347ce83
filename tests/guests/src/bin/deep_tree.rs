//! `deep_tree DEPTH`: makes `/out/deep/d/d/…/d`, DEPTH directories deep,
//! one `mkdirat` and `openat` at a time (a path that long could not be
//! named at once), printing how deep it got to stderr every 10,000 levels.
//! The host must stop it or refuse its output, not follow it down.

use std::ffi::{c_char, c_int};

unsafe extern "C" {
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn openat(dirfd: c_int, path: *const c_char, flags: c_int, ...) -> c_int;
    fn mkdirat(dirfd: c_int, path: *const c_char, mode: u32) -> c_int;
    fn close(fd: c_int) -> c_int;
}

// wasi-libc's values.
const O_DIRECTORY: c_int = 0x2000;
const O_RDONLY: c_int = 0x0400_0000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let depth: u64 = std::env::args().nth(1).ok_or("usage: deep_tree DEPTH")?.parse()?;
    std::fs::create_dir("/out/deep")?;
    // SAFETY: NUL-terminated literals; descriptors are ours to close.
    let mut fd = unsafe { open(c"/out/deep".as_ptr(), O_RDONLY | O_DIRECTORY) };
    for level in 0..depth {
        let next = unsafe {
            if mkdirat(fd, c"d".as_ptr(), 0o755) != 0 {
                return Err(format!("mkdirat at {level}: {}", std::io::Error::last_os_error()).into());
            }
            openat(fd, c"d".as_ptr(), O_RDONLY | O_DIRECTORY)
        };
        if next < 0 {
            return Err(format!("openat at {level}: {}", std::io::Error::last_os_error()).into());
        }
        unsafe { close(fd) };
        fd = next;
        if level % 10_000 == 0 {
            eprintln!("depth {level}");
        }
    }
    Ok(())
}
