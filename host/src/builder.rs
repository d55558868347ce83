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
use std::sync::OnceLock;

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
    let toolchain = rustc_version(dir)?;
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

/// `rustc -vV` as seen from `dir` (its rust-toolchain.toml applies), once per process.
fn rustc_version(dir: &Path) -> Result<String, BuildError> {
    static VERSION: OnceLock<Result<String, String>> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            let out = Command::new("rustc")
                .arg("-vV")
                .current_dir(dir)
                .output()
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        })
        .clone()
        .map_err(|e| BuildError::MissingTool {
            tool: "rustc".into(),
            fix: format!("install Rust with rustup (https://rustup.rs): {}", e.trim()),
        })
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
