//! Building components from source directories named by `uses:`. A build is
//! cached by a digest of the directory's files and the toolchain's version,
//! so an unchanged task is never rebuilt (nor is cargo even started).
//!
//! Rust is supported here (`Cargo.toml` → `cargo build --release --target
//! wasm32-wasip2`); other languages plug in beside it.

use crate::digest::Digest;
use crate::store::{Store, Stored};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Rust target every guest is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Why a source directory could not become a component.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The directory holds no project cairn knows how to build.
    #[error("{dir}: no Cargo.toml; cairn builds Rust task directories (a package with one binary)")]
    Unrecognised {
        /// The directory.
        dir: PathBuf,
    },
    /// A tool was missing; the message says how to install it.
    #[error("{tool} was not found: {fix}")]
    MissingTool {
        /// The tool.
        tool: String,
        /// How to install it.
        fix: String,
    },
    /// The build ran and failed; `output` is the tool's own error output.
    #[error("building {dir} failed:\n{output}")]
    Failed {
        /// The directory.
        dir: PathBuf,
        /// What the tool printed.
        output: String,
    },
    /// Reading sources or storing the result failed.
    #[error("building {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// A built component, stored in the CAS.
#[derive(Debug, Clone)]
pub struct Built {
    /// The component's blob.
    pub stored: Stored,
    /// Whether this call ran the build (false: the cache had it).
    pub fresh: bool,
}

/// Builds the task in `dir` (or finds it built), leaving the component in
/// the store. Build products go to `<store>/build/`.
pub fn build_dir(dir: &Path, store: &Store) -> Result<Built, BuildError> {
    let io_err = |source| BuildError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    if !dir.join("Cargo.toml").is_file() {
        return Err(BuildError::Unrecognised {
            dir: dir.to_path_buf(),
        });
    }
    // The tools run inside the directory, so give them an absolute path.
    let dir = &fs::canonicalize(dir).map_err(io_err)?;
    let toolchain = rustc_version(dir, store)?;
    let key = source_digest(dir, &toolchain).map_err(io_err)?;
    let record = store.root().join("build").join("index").join(key.to_hex());
    if let Some(d) = fs::read_to_string(&record)
        .ok()
        .and_then(|s| s.trim().parse::<Digest>().ok())
        && let Ok(meta) = fs::metadata(store.blob_path(&d))
    {
        return Ok(Built {
            stored: Stored {
                digest: d,
                size: meta.len(),
            },
            fresh: false,
        });
    }
    ensure_target(dir)?;
    let wasm = cargo_build(dir, &store.root().join("build").join("cargo"))?;
    let stored = store
        .put_bytes(&fs::read(&wasm).map_err(io_err)?)
        .map_err(io_err)?;
    fs::create_dir_all(record.parent().expect("has a parent")).map_err(io_err)?;
    // Atomically: another process may be reading the index right now.
    let mut tmp = tempfile::NamedTempFile::new_in(store.root().join("tmp")).map_err(io_err)?;
    std::io::Write::write_all(&mut tmp, stored.digest.to_hex().as_bytes()).map_err(io_err)?;
    tmp.persist(&record).map_err(|e| io_err(e.error))?;
    Ok(Built {
        stored,
        fresh: true,
    })
}

/// blake3 over every file below `dir` (relative path and bytes), in sorted
/// order, skipping build output and hidden directories, plus the toolchain.
fn source_digest(dir: &Path, toolchain: &str) -> io::Result<Digest> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut h = blake3::Hasher::new();
    h.update(b"cairn rust build v1\0");
    h.update(toolchain.as_bytes());
    for rel in files {
        let bytes = fs::read(dir.join(&rel))?;
        h.update(&(rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().into())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).expect("walked below root");
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// `rustc -vV` as seen from `dir` (its rust-toolchain.toml applies).
/// Starting rustc costs more than a whole cached run, so its answer is kept
/// in the store under a stamp of everything that decides which rustc runs,
/// and rustc is asked again only when that stamp changes.
fn rustc_version(dir: &Path, store: &Store) -> Result<String, BuildError> {
    let stamp = blake3::hash(toolchain_stamp(dir).as_bytes()).to_hex();
    let entry = store
        .root()
        .join("build")
        .join("toolchains")
        .join(stamp.as_str());
    if let Ok(v) = fs::read_to_string(&entry) {
        return Ok(v);
    }
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
    let version = String::from_utf8_lossy(&out.stdout).into_owned();
    // Only a cache: failing to write it costs a rustc start next time.
    let _ = fs::create_dir_all(entry.parent().expect("has a parent")).and_then(|()| {
        let mut tmp = tempfile::NamedTempFile::new_in(store.root().join("tmp"))?;
        std::io::Write::write_all(&mut tmp, version.as_bytes())?;
        tmp.persist(&entry).map(drop).map_err(|e| e.error)
    });
    Ok(version)
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
fn cargo_build(dir: &Path, target_dir: &Path) -> Result<PathBuf, BuildError> {
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
        let is_bin = msg["reason"] == "compiler-artifact"
            && msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"));
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
        1 => Ok(wasm.remove(0)),
        n => Err(BuildError::Failed {
            dir: dir.to_path_buf(),
            output: format!(
                "expected exactly one binary target, found {n}; a task directory builds one component"
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
    fn the_source_digest_skips_build_output_and_sees_edits() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("src")).unwrap();
        fs::write(dir.path().join("src/main.rs"), "fn main() {}").unwrap();
        let a = source_digest(dir.path(), "rustc 1").unwrap();
        fs::create_dir_all(dir.path().join("target")).unwrap();
        fs::write(dir.path().join("target/junk"), "x").unwrap();
        assert_eq!(a, source_digest(dir.path(), "rustc 1").unwrap());
        assert_ne!(a, source_digest(dir.path(), "rustc 2").unwrap());
        fs::write(dir.path().join("src/main.rs"), "fn main() { }").unwrap();
        assert_ne!(a, source_digest(dir.path(), "rustc 1").unwrap());
    }
}
