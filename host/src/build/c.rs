//! C tasks: every `*.c` in the directory, compiled by `clang
//! --target=wasm32-wasi` against wasi-libc (or by `zig cc`, which carries
//! its own), into a preview 1 core module. Without `wit/` it is a command
//! task (`main()`, run as a preview 1 module); with `wit/`, `wit-bindgen c`
//! generates the world's bindings first and the module is built as a
//! reactor whose component type wit-bindgen embeds, which cairn adapts into
//! a component: a typed task.

use super::{BuildError, Job, Tools, run, tool_version, top_files, zig};
use crate::store::blobs::Store;
use std::path::{Path, PathBuf};
use std::process::Command;

const WIT_BINDGEN: &str = "wit-bindgen";

fn wit_bindgen(tools: &Tools) -> Result<PathBuf, BuildError> {
    tools.require(
        WIT_BINDGEN,
        "c",
        "`cargo install wit-bindgen-cli --version 0.63.0 --locked --no-default-features --features c`",
    )
}

/// The compiler: clang when installed, else Zig's.
enum Compiler {
    Clang(PathBuf),
    Zig,
}

fn compiler(tools: &Tools) -> Result<Compiler, BuildError> {
    if let Some(clang) = tools.find("clang") {
        return Ok(Compiler::Clang(clang));
    }
    if tools.find("zig").is_some() {
        return Ok(Compiler::Zig);
    }
    Err(BuildError::MissingTool {
        tool: "clang (or zig)".into(),
        fix: "not on PATH nor in $CAIRN_TOOLCHAINS/bin. From a Cairn checkout, \
              `tests/toolchains/install c` installs clang, lld and wasi-libc (Debian) \
              and wit-bindgen; or `apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32`"
            .into(),
    })
}

/// The toolchain's identity, for the build key: the compiler's version, and
/// wit-bindgen's for a typed task.
pub(super) fn versions(dir: &Path, tools: &Tools, store: &Store) -> Result<String, BuildError> {
    let mut v = match compiler(tools)? {
        Compiler::Clang(clang) => tool_version(store, &clang, &["--version"])?,
        Compiler::Zig => zig::versions(tools, store)?,
    };
    if dir.join("wit").is_dir() {
        v.push('\n');
        v.push_str(&tool_version(store, &wit_bindgen(tools)?, &["--version"])?);
    }
    Ok(v)
}

/// Builds the module; returns its path.
pub(super) fn build(job: &Job) -> Result<PathBuf, BuildError> {
    let mut cmd = match compiler(job.tools)? {
        Compiler::Clang(clang) => {
            let mut cmd = Command::new(clang);
            cmd.arg("--target=wasm32-wasi");
            cmd
        }
        Compiler::Zig => {
            let mut cmd = zig::command(job)?;
            cmd.args(["cc", "-target", "wasm32-wasi"]);
            cmd
        }
    };
    // -s: Debian's wasi-libc carries debug info that would triple the
    // module's size; stripping keeps wit-bindgen's component-type section.
    cmd.args(["-O2", "-Wall", "-s"])
        .args(top_files(job.dir, "c"));
    if let Some(world) = &job.world {
        let generated = job.out.join("bindings");
        run(
            job.dir,
            Command::new(wit_bindgen(job.tools)?)
                .arg("c")
                .arg("--out-dir")
                .arg(&generated)
                .arg("--world")
                .arg(&world.name)
                .arg(&world.dir),
        )?;
        cmd.arg("-mexec-model=reactor")
            .arg("-I")
            .arg(&generated)
            .args(top_files(&generated, "c"))
            .args(top_files(&generated, "o"));
    }
    let out = job.out.join("task.wasm");
    run(job.dir, cmd.arg("-o").arg(&out))?;
    Ok(out)
}
