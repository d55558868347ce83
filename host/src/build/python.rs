//! Python tasks: `componentize-py` bundles CPython, the task's modules and
//! bindings for its world into one component (~18 MB, which is why cairn
//! caches compiled components). The entry is `app.py`, or the directory's
//! only `.py` file; the world is the directory's `wit/`.

use super::{BuildError, Job, Tools, entry, run, tool_version};
use crate::store::blobs::Store;
use std::path::PathBuf;
use std::process::Command;

const TOOL: &str = "componentize-py";

fn tool(tools: &Tools) -> Result<PathBuf, BuildError> {
    tools.require(TOOL, "python", "`pip install componentize-py==0.25.1`")
}

/// The toolchain's identity, for the build key.
pub(super) fn versions(tools: &Tools, store: &Store) -> Result<String, BuildError> {
    tool_version(store, &tool(tools)?, &["--version"])
}

/// Builds the component; returns its path.
pub(super) fn build(job: &Job) -> Result<PathBuf, BuildError> {
    let world = job.world("a Python task")?;
    let app = entry(job.dir, &["app.py"], "py")?;
    let module = app
        .file_stem()
        .expect("a .py file has a stem")
        .to_string_lossy()
        .into_owned();
    let out = job.out.join("task.wasm");
    run(
        job.dir,
        Command::new(tool(job.tools)?)
            .arg("--wit-path")
            .arg(&world.dir)
            .arg("--world")
            .arg(&world.name)
            .arg("componentize")
            .arg("--python-path")
            .arg(job.dir)
            .arg(&module)
            .arg("--output")
            .arg(&out)
            // Keep __pycache__ out of the task directory.
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    )?;
    Ok(out)
}
