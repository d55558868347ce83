//! Zig tasks: `zig build` when there is a `build.zig` (it must install one
//! `.wasm` artifact), else `zig build-exe -target wasm32-wasi` of `main.zig`
//! or the directory's only `.zig` file. Either makes a preview 1 command
//! module. Zig's caches (a first build that links libc compiles wasi-libc
//! there) live in the store's build directory.

use super::{BuildError, Job, Tools, entry, run, single_product, tool_version};
use crate::store::blobs::Store;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(super) fn tool(tools: &Tools) -> Result<PathBuf, BuildError> {
    tools.require(
        "zig",
        "zig",
        "install Zig (https://ziglang.org/download, or `pip install ziglang` and a `zig` launcher running `python -m ziglang`)",
    )
}

/// The toolchain's identity, for the build key.
pub(super) fn versions(tools: &Tools, store: &Store) -> Result<String, BuildError> {
    tool_version(store, &tool(tools)?, &["version"])
}

/// `zig` with its caches in the store.
pub(super) fn command(job: &Job) -> Result<Command, BuildError> {
    let mut cmd = Command::new(tool(job.tools)?);
    cmd.env("ZIG_GLOBAL_CACHE_DIR", job.caches.join("zig"))
        .env("ZIG_LOCAL_CACHE_DIR", job.out.join("zig-cache"));
    Ok(cmd)
}

/// Builds the module; returns its path.
pub(super) fn build(job: &Job) -> Result<PathBuf, BuildError> {
    if job.dir.join("build.zig").is_file() {
        let prefix = job.out.join("zig-out");
        run(
            job.dir,
            command(job)?
                .args(["build", "-Doptimize=ReleaseSmall", "--prefix"])
                .arg(&prefix),
        )?;
        return single_product(job.dir, &prefix, "wasm");
    }
    let main = entry(job.dir, &["main.zig"], "zig")?;
    let out = job.out.join("task.wasm");
    run(
        job.dir,
        command(job)?
            .args(["build-exe", "-target", "wasm32-wasi", "-O", "ReleaseSmall"])
            .arg(Path::new(&main))
            .arg(format!("-femit-bin={}", out.display())),
    )?;
    Ok(out)
}
