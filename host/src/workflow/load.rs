//! Loading a workflow file: read, parse and plan it, and check that every
//! file it names exists. The only I/O of `workflow/` (reading the file and
//! asking whether paths exist); everything it calls is pure.

use crate::store::digest::Digest;
use crate::workflow::diag::{Diagnostic, Diagnostics, Source};
use crate::workflow::plan::{self, Overrides, Plan};
use crate::workflow::spec;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a workflow could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The workflow file (or an override) is wrong; every problem is listed.
    #[error("{0}")]
    Workflow(#[from] Diagnostics),
    /// The workflow file could not be read.
    #[error("cannot read workflow {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// A parsed, planned and checked workflow.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The workflow file as given.
    pub path: PathBuf,
    /// blake3 of the file's bytes.
    pub digest: Digest,
    /// The file's text, for diagnostics found after planning (type errors).
    pub source: Source,
    /// The directory relative paths in it are resolved against.
    pub dir: PathBuf,
    /// The plan.
    pub plan: Arc<Plan>,
    /// Component paths, one per job, resolved against `dir`.
    pub uses: Vec<PathBuf>,
    /// Workflow input paths, in plan order, resolved.
    pub inputs: Vec<PathBuf>,
}

/// Reads, parses and plans a workflow, and checks that every file it names
/// exists. All problems come back together, each with its position.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let digest = Digest::of(text.as_bytes());
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let wf = spec::parse(Source::new(path.display().to_string(), text), &stem)?;
    let plan = plan::plan(&wf, overrides)?;
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();

    let mut problems = Vec::new();
    let mut checked: HashMap<&str, PathBuf> = HashMap::new();
    let mut uses = Vec::new();
    for job in &plan.jobs {
        let p = dir.join(&job.uses.value);
        if !checked.contains_key(job.uses.value.as_str()) && !p.exists() {
            problems.push(
                Diagnostic::at(
                    job.uses.span,
                    format!("component not found: {}", p.display()),
                )
                .expected(
                    "a .wasm component or a task source directory, relative to the workflow file",
                ),
            );
        }
        checked.insert(&job.uses.value, p.clone());
        uses.push(p);
    }
    let mut inputs = Vec::new();
    for input in &plan.inputs {
        // `--input` paths are relative to where the user is; file paths to the file.
        let p = match input.span {
            Some(_) => dir.join(&input.path),
            None => PathBuf::from(&input.path),
        };
        if !p.is_file() {
            let msg = format!("input `{}`: no file at {}", input.name, p.display());
            let d = match input.span {
                Some(span) => Diagnostic::at(span, msg),
                None => Diagnostic::global(format!("--input {}={}: {msg}", input.name, input.path)),
            };
            problems.push(d.expected("a readable host file"));
        }
        inputs.push(p);
    }
    if !problems.is_empty() {
        problems.sort_by_key(|d| d.span.map(|s| s.start));
        return Err(Diagnostics {
            source: wf.source,
            items: problems,
        }
        .into());
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        digest,
        source: wf.source.clone(),
        dir,
        plan: Arc::new(plan),
        uses,
        inputs,
    })
}
