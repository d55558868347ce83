//! `symlink_out`: tries to create two symbolic links in the output directory,
//! `/out/leak` -> `/etc/passwd` and `/out/up` -> `../../..`, printing
//! `symlink <link>: ok` or `symlink <link>: failed <os error>` for each.
//! Always exits 0; the host must not follow or publish such links.

use std::ffi::{CString, c_char, c_int};

// std has no stable symlink on WASI; wasm32-wasip2's std links wasi-libc,
// which provides POSIX `symlink`.
unsafe extern "C" {
    fn symlink(target: *const c_char, linkpath: *const c_char) -> c_int;
}

fn try_symlink(target: &str, link: &str) {
    let target_c = CString::new(target).expect("no NUL in target");
    let link_c = CString::new(link).expect("no NUL in link");
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the
    // call; `symlink` only reads them.
    let rc = unsafe { symlink(target_c.as_ptr(), link_c.as_ptr()) };
    if rc == 0 {
        println!("symlink {link}: ok");
    } else {
        let err = std::io::Error::last_os_error();
        println!("symlink {link}: failed {err}");
    }
}

fn main() {
    try_symlink("/etc/passwd", "/out/leak");
    try_symlink("../../..", "/out/up");
}
