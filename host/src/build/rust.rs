//! Rust tasks: `cargo build --release --target wasm32-wasip2` (a binary for
//! a command task, a cdylib for a typed task). The build's inputs come from
//! cargo's own dep-info, so path dependencies and files macros read count.

use super::{BuildError, current, io_err, remembered_version, save, store_product};
use crate::store::blobs::{Store, Stored};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Rust target every guest is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Builds the Rust task in `dir` (absolute), or finds it built.
pub(super) fn build(dir: &Path, store: &Store) -> Result<(Stored, bool), BuildError> {
    let toolchain = rustc_version(dir, store)?;
    let key =
        blake3::hash(format!("cairn rust build v2\0{}\0{toolchain}", dir.display()).as_bytes());
    if let Some(stored) = current(store, &key, None) {
        return Ok((stored, false));
    }
    ensure_target(dir)?;
    let target_dir =
        std::path::absolute(store.root().join("build").join("cargo")).map_err(io_err(dir))?;
    let (wasm, deps) = cargo_build(dir, &target_dir)?;
    let stored = store_product(dir, &wasm, store)?;
    // What cargo read to build it (its dep-info: the package's sources and
    // its path dependencies', including files macros read), plus the
    // manifest and lock file, which dep-info leaves out.
    let mut inputs: Vec<PathBuf> = deps;
    inputs.extend(
        ["Cargo.toml", "Cargo.lock"]
            .map(|f| dir.join(f))
            .into_iter()
            .filter(|p| p.is_file()),
    );
    inputs.sort();
    inputs.dedup();
    save(store, &key, inputs, stored.digest).map_err(io_err(dir))?;
    Ok((stored, true))
}

/// The files listed in a Makefile-style dep-info file (`target: a b\ c`).
fn parse_dep_info(text: &str) -> Vec<PathBuf> {
    let Some((_, deps)) = text.lines().next().and_then(|l| l.split_once(": ")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => cur.push(chars.next().expect("peeked")),
            ' ' => {
                if !cur.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut cur)));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(PathBuf::from(cur));
    }
    out
}

/// `rustc -vV` as seen from `dir` (its rust-toolchain.toml applies).
/// Starting rustc costs more than a whole cached run, so its answer is kept
/// in the store under a stamp of everything that decides which rustc runs,
/// and rustc is asked again only when that stamp changes.
fn rustc_version(dir: &Path, store: &Store) -> Result<String, BuildError> {
    remembered_version(store, &toolchain_stamp(dir), || {
        let missing = |e: String| BuildError::MissingTool {
            tool: "rustc".into(),
            fix: format!("install Rust with rustup (https://rustup.rs): {}", e.trim()),
        };
        let out = Command::new("rustc")
            .arg("-vV")
            .current_dir(dir)
            .output()
            .map_err(|e| missing(e.to_string()))?;
        if !out.status.success() {
            return Err(missing(String::from_utf8_lossy(&out.stderr).into_owned()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

/// What decides which rustc runs in `dir`: rustup's environment and
/// settings, toolchain files up the tree, the installed toolchains (a
/// `rustup update` replaces their directories) and the `rustc` on PATH.
fn toolchain_stamp(dir: &Path) -> String {
    use std::fmt::Write as _;
    use std::os::unix::fs::MetadataExt;
    let mut s = String::new();
    let stat = |s: &mut String, p: &Path| {
        if let Ok(m) = fs::metadata(p) {
            let _ = writeln!(
                s,
                "{} {} {} {} {}",
                p.display(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.ino()
            );
        }
    };
    for var in [
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTUP_HOME",
        "CARGO_HOME",
        "PATH",
    ] {
        let _ = writeln!(s, "{var}={:?}", std::env::var_os(var));
    }
    for d in dir.ancestors() {
        for f in ["rust-toolchain.toml", "rust-toolchain"] {
            if let Ok(t) = fs::read_to_string(d.join(f)) {
                let _ = writeln!(s, "{}:{t}", d.join(f).display());
            }
        }
    }
    let home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")));
    if let Some(home) = home {
        s.push_str(&fs::read_to_string(home.join("settings.toml")).unwrap_or_default());
        let toolchains = home.join("toolchains");
        stat(&mut s, &toolchains);
        if let Ok(entries) = fs::read_dir(&toolchains) {
            let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            names.sort();
            for t in names {
                stat(&mut s, &t.join("bin").join("rustc"));
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH")
        && let Some(rustc) = std::env::split_paths(&path)
            .map(|p| p.join("rustc"))
            .find(|p| p.is_file())
    {
        stat(&mut s, &rustc);
    }
    s
}

/// Adds the wasm target when rustup manages the toolchain and lacks it:
/// with `RUSTUP_AUTO_INSTALL=0` a toolchain file alone does not install it.
fn ensure_target(dir: &Path) -> Result<(), BuildError> {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .output()
    else {
        // No rustup: cargo below reports a missing target itself.
        return Ok(());
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    let add = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .current_dir(dir)
        .output()
        .map_err(|e| BuildError::MissingTool {
            tool: "rustup".into(),
            fix: e.to_string(),
        })?;
    if !add.status.success() {
        return Err(BuildError::MissingTool {
            tool: format!("the {WASM_TARGET} target"),
            fix: format!(
                "run `rustup target add {WASM_TARGET}`: {}",
                String::from_utf8_lossy(&add.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// Runs cargo and returns the one `.wasm` binary it produced.
fn cargo_build(dir: &Path, target_dir: &Path) -> Result<(PathBuf, Vec<PathBuf>), BuildError> {
    let out = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BuildError::MissingTool {
            tool: "cargo".into(),
            fix: format!("install Rust with rustup (https://rustup.rs): {e}"),
        })?;
    if !out.status.success() {
        return Err(BuildError::Failed {
            dir: dir.to_path_buf(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let mut wasm = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        // A command task is a binary; a typed task is a cdylib.
        let is_bin = msg["reason"] == "compiler-artifact"
            && msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin" || k == "cdylib"));
        if is_bin {
            let files = msg["filenames"].as_array().into_iter().flatten();
            wasm.extend(
                files
                    .filter_map(|f| f.as_str())
                    .filter(|f| f.ends_with(".wasm"))
                    .map(PathBuf::from),
            );
        }
    }
    match wasm.len() {
        1 => {
            let wasm = wasm.remove(0);
            let deps = fs::read_to_string(wasm.with_extension("d"))
                .map(|t| parse_dep_info(&t))
                .unwrap_or_default();
            Ok((wasm, deps))
        }
        n => Err(BuildError::Failed {
            dir: dir.to_path_buf(),
            output: format!(
                "expected exactly one binary or cdylib target, found {n}; a task directory builds one component"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toolchain_stamp_sees_a_toolchain_file() {
        let dir = tempfile::tempdir().unwrap();
        let before = toolchain_stamp(dir.path());
        assert_eq!(
            before,
            toolchain_stamp(dir.path()),
            "stable while nothing changes"
        );
        fs::write(
            dir.path().join("rust-toolchain.toml"),
            "[toolchain]\nchannel = \"nightly\"\n",
        )
        .unwrap();
        assert_ne!(before, toolchain_stamp(dir.path()));
    }

    #[test]
    fn dep_info_lists_files_with_escaped_spaces() {
        let deps = parse_dep_info(
            "/t/x.wasm: /a/src/main.rs /b/with\\ space.rs /c/wit/x.wit\n\n/a/src/main.rs:\n",
        );
        let want = ["/a/src/main.rs", "/b/with space.rs", "/c/wit/x.wit"].map(PathBuf::from);
        assert_eq!(deps, want);
    }
}
