//! `cairn serve`: binds the address, prints the URL on the first line of
//! stdout (so a script or a test can read it), and serves the web view of
//! the store until the process is stopped.

use super::args::ServeArgs;
use super::print::outln;
use super::*;
use crate::serve::{Bound, ServeError, State};
use std::io::Write;

pub(super) fn serve(args: ServeArgs) -> i32 {
    let root = args.store.dir();
    let mut addr = args.addr;
    if let Some(port) = args.port {
        addr.set_port(port);
    }
    let state = match State::open(&root) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return match e {
                ServeError::NoStore(_) => EXIT_USAGE,
                _ => EXIT_HOST,
            };
        }
    };
    let bound = match Bound::bind(addr) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    outln!("{}", bound.url());
    let _ = std::io::stdout().flush();
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: listening on {addr}, not loopback: anyone who can reach it can read these runs (read-only)"
        );
    }
    eprintln!(
        "serving the runs in {} (read-only); stop with Ctrl-C",
        root.display()
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the server: {e}");
            return EXIT_HOST;
        }
    };
    match rt.block_on(bound.serve(state)) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: serving: {e}");
            EXIT_HOST
        }
    }
}
