//! JavaScript tasks: `componentize-js` embeds the task's ES module in
//! StarlingMonkey (SpiderMonkey) with bindings for its world. The entry is
//! package.json's `main` (else `index.js`); the world is the directory's
//! `wit/`. The `componentize-js` launcher that `tests/toolchains/install js`
//! makes turns off the HTTP and fetch-event features, so the component
//! imports only what its world does.

use super::{BuildError, Job, Tools, run, tool_version};
use crate::store::blobs::Store;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

const TOOL: &str = "componentize-js";

fn tool(tools: &Tools) -> Result<PathBuf, BuildError> {
    tools.require(
        TOOL,
        "js",
        "write a launcher named componentize-js over the @bytecodealliance/componentize-js 0.23 API (see sdk/guides/javascript.md)",
    )
}

/// The toolchain's identity, for the build key.
pub(super) fn versions(tools: &Tools, store: &Store) -> Result<String, BuildError> {
    tool_version(store, &tool(tools)?, &["--version"])
}

/// Builds the component; returns its path.
pub(super) fn build(job: &Job) -> Result<PathBuf, BuildError> {
    let world = job.world("a JavaScript task")?;
    let manifest = job.dir.join("package.json");
    let text = fs::read_to_string(&manifest).map_err(super::io_err(job.dir))?;
    let package: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| BuildError::Invalid {
            dir: job.dir.to_path_buf(),
            why: format!("package.json is not valid JSON: {e}"),
        })?;
    let main = package["main"].as_str().unwrap_or("index.js");
    let entry = job.dir.join(main);
    if !entry.is_file() {
        return Err(BuildError::Invalid {
            dir: job.dir.to_path_buf(),
            why: format!("the entry module {main} (package.json's \"main\") does not exist"),
        });
    }
    let out = job.out.join("task.wasm");
    run(
        job.dir,
        Command::new(tool(job.tools)?)
            .arg("--wit")
            .arg(&world.dir)
            .arg("--world-name")
            .arg(&world.name)
            .arg("--out")
            .arg(&out)
            .arg(&entry),
    )?;
    Ok(out)
}
