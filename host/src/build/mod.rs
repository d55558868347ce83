//! Building components from source directories named by `uses:` (or given
//! to `cairn build`). A build is cached by what went into it — the
//! directory's source files and the toolchain's version — so an unchanged
//! task is never rebuilt, nor is its toolchain even started.
//!
//! What a directory holds decides the language, first match wins:
//!
//! | holds | language | tool |
//! |---|---|---|
//! | `Cargo.toml` | Rust | `cargo build --release --target wasm32-wasip2` |
//! | `package.json` | JavaScript | `componentize-js` (typed, needs `wit/`) |
//! | `go.mod` | Go | `go build` with `GOOS=wasip1` (a command) |
//! | `build.zig` or `*.zig` | Zig | `zig build` / `zig build-exe -target wasm32-wasi` |
//! | `*.c` | C | `clang --target=wasm32-wasi` (or `zig cc`); typed with `wit/` via `wit-bindgen c` |
//! | `*.py` | Python | `componentize-py` (typed, needs `wit/`) |
//!
//! A typed task's world is the directory's own `wit/` (a symlink to a
//! shared one is fine); cairn adds its own `cairn:task` and WASI packages as
//! dependencies, so a task's `wit/` holds only its world. Toolchains that
//! emit WASI preview 1 core modules make command modules, which run as they
//! are, or reactors, which are adapted into components ([`crate::sandbox::adapt`]). Tools are looked up on `PATH`, then in
//! `$CAIRN_TOOLCHAINS/bin` (where `tests/toolchains/install` puts them).

mod c;
mod go;
mod js;
mod python;
mod rust;
mod wit;
mod zig;

use crate::sandbox::adapt::{self, AdaptError, Binary};
use crate::store::blobs::{Store, Stored};
use crate::store::digest::Digest;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why a source directory could not become a component.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The directory holds no project cairn knows how to build.
    #[error(
        "{dir}: cairn cannot tell what language this is; a task directory holds Cargo.toml (Rust), package.json (JavaScript), go.mod (Go), build.zig or *.zig (Zig), *.c (C) or *.py (Python)"
    )]
    Unrecognised {
        /// The directory.
        dir: PathBuf,
    },
    /// The directory is a project of a known language but not a task.
    #[error("{dir}: {why}")]
    Invalid {
        /// The directory.
        dir: PathBuf,
        /// What is wrong, and what was expected.
        why: String,
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
    /// The build made a core module that could not be adapted.
    #[error("building {dir}: {source}")]
    Adapt {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: AdaptError,
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

/// The languages cairn builds tasks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// `Cargo.toml`.
    Rust,
    /// `package.json`.
    JavaScript,
    /// `go.mod`.
    Go,
    /// `build.zig` or `*.zig`.
    Zig,
    /// `*.c`.
    C,
    /// `*.py`.
    Python,
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "Rust",
            Language::JavaScript => "JavaScript",
            Language::Go => "Go",
            Language::Zig => "Zig",
            Language::C => "C",
            Language::Python => "Python",
        })
    }
}

impl Language {
    /// The language of the project in `dir`, if cairn knows it.
    pub fn detect(dir: &Path) -> Option<Language> {
        let has = |f: &str| dir.join(f).is_file();
        let has_ext = |ext: &str| !top_files(dir, ext).is_empty();
        if has("Cargo.toml") {
            Some(Language::Rust)
        } else if has("package.json") {
            Some(Language::JavaScript)
        } else if has("go.mod") {
            Some(Language::Go)
        } else if has("build.zig") || has_ext("zig") {
            Some(Language::Zig)
        } else if has_ext("c") {
            Some(Language::C)
        } else if has_ext("py") {
            Some(Language::Python)
        } else {
            None
        }
    }
}

/// A built component, stored in the CAS.
#[derive(Debug, Clone)]
pub struct Built {
    /// The component's blob.
    pub stored: Stored,
    /// The language it was built from.
    pub language: Language,
    /// Whether this call ran the build (false: the cache had it).
    pub fresh: bool,
}

/// Builds the task in `dir` (or finds it built), leaving the component in
/// the store. Build products and tool caches go to `<store>/build/`.
pub fn build_dir(dir: &Path, store: &Store) -> Result<Built, BuildError> {
    let language = Language::detect(dir).ok_or_else(|| BuildError::Unrecognised {
        dir: dir.to_path_buf(),
    })?;
    // The tools run inside the directory, so give them an absolute path.
    let dir = &fs::canonicalize(dir).map_err(io_err(dir))?;
    let (stored, fresh) = match language {
        Language::Rust => rust::build(dir, store)?,
        _ => build_by_sources(language, dir, store)?,
    };
    Ok(Built {
        stored,
        language,
        fresh,
    })
}

/// Everything a language's build step gets.
struct Job<'a> {
    /// The task directory (absolute).
    dir: &'a Path,
    /// A fresh directory for this build's products.
    out: PathBuf,
    /// Caches a tool keeps across builds (Zig's, Go's).
    caches: PathBuf,
    /// The task's world, assembled with cairn's WIT, when it has `wit/`.
    world: Option<wit::World>,
    /// Where tools are found.
    tools: &'a Tools,
}

impl Job<'_> {
    /// The task's world, which `what` (say "a Python task") requires.
    fn world(&self, what: &str) -> Result<&wit::World, BuildError> {
        self.world.as_ref().ok_or_else(|| BuildError::Invalid {
            dir: self.dir.to_path_buf(),
            why: format!(
                "{what} is typed: it needs a wit/ directory holding its world (one world that includes cairn:task/task@0.1.0 and exports the task's function)"
            ),
        })
    }
}

/// A task's entry file: the first of `preferred` that exists, else the
/// directory's only `.ext` file.
fn entry(dir: &Path, preferred: &[&str], ext: &str) -> Result<PathBuf, BuildError> {
    if let Some(p) = preferred.iter().map(|p| dir.join(p)).find(|p| p.is_file()) {
        return Ok(p);
    }
    match <[PathBuf; 1]>::try_from(top_files(dir, ext)) {
        Ok([one]) => Ok(one),
        Err(files) => Err(BuildError::Invalid {
            dir: dir.to_path_buf(),
            why: format!(
                "cannot tell the entry: expected {} or a single .{ext} file, found {}",
                preferred.join(" or "),
                files.len()
            ),
        }),
    }
}

/// Builds a non-Rust task: the cache key is the language, the directory,
/// the toolchain's versions and the task's WIT; the record lists every
/// source file, so an edit, a new file or a deleted one rebuilds.
fn build_by_sources(
    language: Language,
    dir: &Path,
    store: &Store,
) -> Result<(Stored, bool), BuildError> {
    let tools = Tools::from_env();
    let versions = match language {
        Language::JavaScript => js::versions(&tools, store)?,
        Language::Go => go::versions(&tools, store)?,
        Language::Zig => zig::versions(&tools, store)?,
        Language::C => c::versions(dir, &tools, store)?,
        Language::Python => python::versions(&tools, store)?,
        Language::Rust => unreachable!("Rust builds through cargo's dep-info"),
    };
    let key = blake3::hash(
        format!("cairn {language} build v2\0{}\0{versions}", dir.display()).as_bytes(),
    );
    let sources = source_files(dir).map_err(io_err(dir))?;
    if let Some(stored) = current(store, &key, Some(&sources)) {
        return Ok((stored, false));
    }
    // Tools run in the task directory: every path they get is absolute.
    let build = std::path::absolute(store.root().join("build")).map_err(io_err(dir))?;
    let out = build.join("out").join(&key.to_hex()[..16]);
    // A stale product from an earlier build must not be picked up.
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).map_err(io_err(dir))?;
    let world = if dir.join("wit").is_dir() {
        Some(wit::World::assemble(dir, &build.join("wit"))?)
    } else {
        None
    };
    let job = Job {
        dir,
        out,
        caches: build.join("caches"),
        world,
        tools: &tools,
    };
    let wasm = match language {
        Language::JavaScript => js::build(&job)?,
        Language::Go => go::build(&job)?,
        Language::Zig => zig::build(&job)?,
        Language::C => c::build(&job)?,
        Language::Python => python::build(&job)?,
        Language::Rust => unreachable!(),
    };
    let stored = store_product(dir, &wasm, store)?;
    save(store, &key, sources, stored.digest).map_err(io_err(dir))?;
    Ok((stored, true))
}

/// Stores a build's product: a component, a preview 1 command module as
/// it is, or a preview 1 reactor adapted into a component.
fn store_product(dir: &Path, wasm: &Path, store: &Store) -> Result<Stored, BuildError> {
    let bytes = fs::read(wasm).map_err(io_err(dir))?;
    let bytes = match adapt::classify(&bytes) {
        Binary::Component => bytes,
        Binary::Module => adapt::adapt(&bytes)
            .map_err(|source| BuildError::Adapt {
                dir: dir.to_path_buf(),
                source,
            })?
            .unwrap_or(bytes),
        Binary::Other => {
            return Err(BuildError::Failed {
                dir: dir.to_path_buf(),
                output: format!("{} is not a wasm binary", wasm.display()),
            });
        }
    };
    store.put_bytes(&bytes).map_err(io_err(dir))
}

/// The files of a task directory that a build reads, sorted: everything but
/// hidden entries and what builds and package managers write.
fn source_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    const SKIP: &[&str] = &[
        "target",
        "node_modules",
        "zig-out",
        "zig-cache",
        "__pycache__",
    ];
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || SKIP.contains(&name.as_ref()) {
                continue;
            }
            // Follows symlinks: a task's `wit/` may link to a shared one.
            let path = entry.path();
            let meta = fs::metadata(&path)?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The regular files directly in `dir` whose extension is `ext`, sorted.
fn top_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension() == Some(OsStr::new(ext)) && p.is_file())
        .collect();
    files.sort();
    files
}

fn io_err(dir: &Path) -> impl Fn(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        dir: dir.to_path_buf(),
        source,
    }
}

/// Where the build index keeps the record for `key`.
fn record_path(store: &Store, key: &blake3::Hash) -> PathBuf {
    store
        .root()
        .join("build")
        .join("index")
        .join(key.to_hex().as_str())
}

/// The stored component of the build `key` if its record is current: every
/// input unchanged and, when `sources` is given, exactly those inputs.
fn current(store: &Store, key: &blake3::Hash, sources: Option<&[PathBuf]>) -> Option<Stored> {
    let record: BuildRecord = fs::read(record_path(store, key))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())?;
    if let Some(sources) = sources
        && !record.inputs.iter().map(|(p, _)| p).eq(sources.iter())
    {
        return None;
    }
    if !record.is_current() {
        return None;
    }
    let meta = fs::metadata(store.blob_path(&record.component)).ok()?;
    Some(Stored {
        digest: record.component,
        size: meta.len(),
    })
}

/// Records that the build `key` read `inputs` and made `component`.
fn save(
    store: &Store,
    key: &blake3::Hash,
    inputs: Vec<PathBuf>,
    component: Digest,
) -> io::Result<()> {
    let record = BuildRecord::new(inputs, component)?;
    store.write_atomic(
        &record_path(store, key),
        &serde_json::to_vec(&record).expect("serialisable"),
    )
}

/// What a build read, so the next run can tell whether it is still current
/// without starting a tool: every input's stamp (size, mtime, inode), and a
/// digest of their contents for when stamps change but bytes do not.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct BuildRecord {
    inputs: Vec<(PathBuf, [u64; 4])>,
    contents: Digest,
    component: Digest,
}

impl BuildRecord {
    fn new(paths: Vec<PathBuf>, component: Digest) -> io::Result<Self> {
        let inputs = paths
            .into_iter()
            .map(|p| Ok((stamp(&p)?, p)))
            .collect::<io::Result<Vec<_>>>()?
            .into_iter()
            .map(|(s, p)| (p, s))
            .collect::<Vec<_>>();
        let contents = contents_digest(inputs.iter().map(|(p, _)| p.as_path()))?;
        Ok(BuildRecord {
            inputs,
            contents,
            component,
        })
    }

    /// True when every input is unchanged: by stamp, or failing that, by content.
    fn is_current(&self) -> bool {
        if self
            .inputs
            .iter()
            .all(|(p, s)| stamp(p).is_ok_and(|now| now == *s))
        {
            return true;
        }
        contents_digest(self.inputs.iter().map(|(p, _)| p.as_path()))
            .is_ok_and(|d| d == self.contents)
    }
}

fn stamp(p: &Path) -> io::Result<[u64; 4]> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(p)?;
    Ok([m.len(), m.mtime() as u64, m.mtime_nsec() as u64, m.ino()])
}

fn contents_digest<'a>(paths: impl Iterator<Item = &'a Path>) -> io::Result<Digest> {
    let mut h = blake3::Hasher::new();
    for p in paths {
        let bytes = fs::read(p)?;
        h.update(&(p.as_os_str().len() as u64).to_le_bytes());
        h.update(p.as_os_str().as_encoded_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().into())
}

/// Where build tools are looked up: `PATH`, then `$CAIRN_TOOLCHAINS/bin`.
#[derive(Debug)]
struct Tools {
    dirs: Vec<PathBuf>,
}

impl Tools {
    fn from_env() -> Tools {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        if let Some(t) = std::env::var_os("CAIRN_TOOLCHAINS") {
            dirs.push(PathBuf::from(t).join("bin"));
        }
        Tools { dirs }
    }

    /// The executable `name`, if installed.
    fn find(&self, name: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        self.dirs.iter().map(|d| d.join(name)).find(|p| {
            fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    }

    /// The executable `name`, or an error that says how to install it
    /// (`install` names the `tests/toolchains/install` language, `other`
    /// the tool's own way).
    fn require(&self, name: &str, install: &str, other: &str) -> Result<PathBuf, BuildError> {
        self.find(name).ok_or_else(|| BuildError::MissingTool {
            tool: name.to_string(),
            fix: format!(
                "not on PATH nor in $CAIRN_TOOLCHAINS/bin. From a Cairn checkout, \
                 `tests/toolchains/install {install}` installs it under target/toolchains \
                 (then `export PATH=$PWD/target/toolchains/bin:$PATH`); or {other}"
            ),
        })
    }
}

/// A toolchain's version as `ask` finds it, kept in the store under `stamp`
/// (whatever decides which tool runs), so that a cached build starts no
/// tool: starting one costs more than a whole cached run.
fn remembered_version(
    store: &Store,
    stamp: &str,
    ask: impl FnOnce() -> Result<String, BuildError>,
) -> Result<String, BuildError> {
    let entry = store
        .root()
        .join("build")
        .join("toolchains")
        .join(blake3::hash(stamp.as_bytes()).to_hex().as_str());
    if let Ok(v) = fs::read_to_string(&entry) {
        return Ok(v);
    }
    let version = ask()?;
    // Only a cache: failing to write it costs a tool start next time.
    let _ = store.write_atomic(&entry, version.as_bytes());
    Ok(version)
}

/// `tool args…`'s output (its version), remembered under a stamp of the
/// executable.
fn tool_version(store: &Store, tool: &Path, args: &[&str]) -> Result<String, BuildError> {
    use std::os::unix::fs::MetadataExt;
    let real = fs::canonicalize(tool).unwrap_or_else(|_| tool.to_path_buf());
    let stamp = fs::metadata(&real)
        .map(|m| format!("{} {} {} {}", m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
        .unwrap_or_default();
    let stamp = format!("{}\0{}\0{stamp}\0{args:?}", tool.display(), real.display());
    remembered_version(store, &stamp, || {
        let out = Command::new(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| BuildError::MissingTool {
                tool: tool.display().to_string(),
                fix: format!("it could not be started: {e}"),
            })?;
        if !out.status.success() {
            return Err(BuildError::MissingTool {
                tool: tool.display().to_string(),
                fix: format!(
                    "`{} {}` failed: {}",
                    tool.display(),
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        let mut version = String::from_utf8_lossy(&out.stdout).into_owned();
        version.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(format!("{}: {}", tool.display(), version.trim()))
    })
}

/// Runs a build command in `dir`; on failure, the error carries the tool's
/// own output (stderr, then stdout) so the author sees what it said.
fn run(dir: &Path, cmd: &mut Command) -> Result<(), BuildError> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .current_dir(dir)
        .stdin(Stdio::null())
        // Tools written in Rust would print backtraces into their errors.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .map_err(|e| BuildError::MissingTool {
            tool: format!("{:?}", cmd.get_program()),
            fix: format!("it could not be started: {e}"),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        output.push_str(&stdout);
    }
    Err(BuildError::Failed {
        dir: dir.to_path_buf(),
        output: format!("{}\n(command: {shown}, {})", output.trim_end(), out.status),
    })
}

/// The one file with extension `ext` under `dir` (a build's product).
fn single_product(dir: &Path, out: &Path, ext: &str) -> Result<PathBuf, BuildError> {
    let files: Vec<PathBuf> = source_files(out)
        .map_err(io_err(dir))?
        .into_iter()
        .filter(|p| p.extension() == Some(OsStr::new(ext)))
        .collect();
    match <[PathBuf; 1]>::try_from(files) {
        Ok([one]) => Ok(one),
        Err(files) => Err(BuildError::Failed {
            dir: dir.to_path_buf(),
            output: format!(
                "expected the build to make one .{ext} file in {}, found {}",
                out.display(),
                files.len()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_record_sees_edits_but_not_touches() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("main.rs");
        fs::write(&f, "fn main() {}").unwrap();
        let rec = BuildRecord::new(vec![f.clone()], Digest::of(b"c")).unwrap();
        assert!(rec.is_current());
        // Same bytes, new stamp: still current.
        fs::remove_file(&f).unwrap();
        fs::write(&f, "fn main() {}").unwrap();
        assert!(rec.is_current());
        fs::write(&f, "fn main() { }").unwrap();
        assert!(!rec.is_current());
        fs::remove_file(&f).unwrap();
        assert!(!rec.is_current());
    }

    #[test]
    fn languages_are_told_apart_by_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(Language::detect(d), None);
        fs::write(d.join("app.py"), "").unwrap();
        assert_eq!(Language::detect(d), Some(Language::Python));
        fs::write(d.join("main.c"), "").unwrap();
        assert_eq!(Language::detect(d), Some(Language::C));
        fs::write(d.join("main.zig"), "").unwrap();
        assert_eq!(Language::detect(d), Some(Language::Zig));
        fs::write(d.join("go.mod"), "").unwrap();
        assert_eq!(Language::detect(d), Some(Language::Go));
        fs::write(d.join("package.json"), "{}").unwrap();
        assert_eq!(Language::detect(d), Some(Language::JavaScript));
        fs::write(d.join("Cargo.toml"), "").unwrap();
        assert_eq!(Language::detect(d), Some(Language::Rust));
    }

    #[test]
    fn sources_skip_build_products_and_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "a.c",
            "wit/w.wit",
            "node_modules/x.js",
            ".git/HEAD",
            "zig-out/bin/t.wasm",
        ] {
            fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
            fs::write(d.join(f), "").unwrap();
        }
        assert_eq!(
            source_files(d).unwrap(),
            [d.join("a.c"), d.join("wit/w.wit")]
        );
    }
}
