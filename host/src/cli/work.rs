//! `cairn worker` and `cairn action`: executing Cairn actions for a REAPI
//! server.

use super::args::RemoteArgs;
use super::*;
use crate::remote::client::Remote;
use crate::remote::worker::{self, WorkerOptions};
use crate::run::outcome::Outcome;
use crate::sandbox::runtime::Runtime;
use crate::store::blobs::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".cache")
        })
        .join("cairn")
        .join("worker")
}

fn open(store: &Path) -> Result<(Arc<Store>, Arc<Runtime>), QueryError> {
    let store = Arc::new(
        Store::open(store)
            .map_err(|e| QueryError::Host(format!("store {}: {e}", store.display())))?,
    );
    let runtime = Runtime::new(&store.root().join("compiled"))
        .map_err(|e| QueryError::Host(format!("engine: {e:#}")))?;
    Ok((store, Arc::new(runtime)))
}

pub(super) fn worker(
    remote: &RemoteArgs,
    slots: Option<usize>,
    store: Option<PathBuf>,
    id: Option<String>,
) -> Query {
    let target = remote.target().map_err(QueryError::Usage)?.ok_or_else(|| {
        QueryError::Usage("cairn worker needs a server: --remote URL or --config NAME".into())
    })?;
    let slots = slots.unwrap_or_else(cores).max(1);
    let (store, runtime) = open(&store.unwrap_or_else(cache_dir))?;
    let id = id.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(slots)
        .enable_all()
        .build()
        .map_err(|e| QueryError::Host(e.to_string()))?;
    rt.block_on(async {
        let remote = Remote::connect(target.spec, store.clone())
            .await
            .map_err(|e| QueryError::Host(e.to_string()))?;
        if !remote.exec_enabled() {
            eprintln!(
                "warning: {} does not offer remote execution; serving anyway",
                remote.url()
            );
        }
        let opts = WorkerOptions { slots, bot_id: id };
        worker::serve(remote, runtime, opts, &|n| eprintln!("{n}"))
            .await
            .map_err(|e| QueryError::Host(e.to_string()))
    })?;
    Ok(EXIT_OK)
}

pub(super) fn action(store: Option<PathBuf>) -> Query {
    let scratch;
    let dir = match store {
        Some(d) => d,
        None => {
            scratch = tempfile::tempdir().map_err(|e| QueryError::Host(e.to_string()))?;
            scratch.path().to_path_buf()
        }
    };
    let (store, runtime) = open(&dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| QueryError::Host(e.to_string()))?;
    let cwd = std::env::current_dir().map_err(|e| QueryError::Host(e.to_string()))?;
    let outcome = rt
        .block_on(worker::run_action_dir(&cwd, &store, &runtime))
        .map_err(QueryError::Usage)?;
    // The job's own output is the action's output.
    let (out, err, code) = match &outcome {
        Outcome::Success(m) => (Some(m.stdout), Some(m.stderr), EXIT_OK),
        Outcome::Failure(f) => {
            eprintln!("{f}");
            (f.stdout, f.stderr, EXIT_JOB_FAILED)
        }
    };
    use std::io::Write;
    if let Some(bytes) = out.and_then(|d| store.read(&d).ok()) {
        let _ = std::io::stdout().write_all(&bytes);
    }
    if let Some(bytes) = err.and_then(|d| store.read(&d).ok()) {
        let _ = std::io::stderr().write_all(&bytes);
    }
    Ok(code)
}
