//! `cairn serve`: a read-only web view of a store's runs, and the same data
//! as JSON under `/api/`. `routes` builds the one [`Router`](axum::Router)
//! from a [`State`]; `data` reads what pages show from the records and the
//! store; `pages` renders it as HTML; `live` follows a running run over
//! server-sent events; `dag` draws the DAG (shared with `cairn plan
//! --format svg`) and `plot` a metric. Every asset is compiled into the
//! binary (`assets/`): nothing is fetched from anywhere else.
//!
//! Owns: the HTTP surface and what it shows. May not: write anything. The
//! records are opened read-only and the store without creating a file in
//! it; a run whose process died is shown as interrupted but not stored so.
//! Every path segment a request carries is looked up in the records or in
//! the table of assets, never joined to a filesystem path, and the only
//! files read are blobs named by digests from the records. Secret values
//! are not in the records, and no view carries more than a secret's name.

pub mod dag;
pub mod data;
pub mod live;
pub mod pages;
pub mod plot;
pub mod routes;

use crate::store::blobs::Store;
use crate::store::records::{RecordError, Records, RunRow, StatusCounts};
use data::ViewError;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use routes::router;

/// Why the web view could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// There is no store, or no records in it, at the path given.
    #[error("{0}")]
    NoStore(String),
    /// The records could not be opened.
    #[error(transparent)]
    Records(#[from] RecordError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Read-only connections to the records: requests take turns on them, so
/// a slow query does not hold up every other request.
const CONNECTIONS: usize = 4;

/// What every request handler shares: the store and its records, read-only.
#[derive(Debug, Clone)]
pub struct State {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    store: Store,
    records: Vec<Records>,
    next: AtomicUsize,
    /// Job counts of runs that have ended, which cannot change.
    counts: Mutex<HashMap<String, StatusCounts>>,
}

impl State {
    /// Opens the store at `root` for reading. Creates nothing: a missing
    /// store is an error, not a new empty one.
    pub fn open(root: &Path) -> Result<State, ServeError> {
        let store = Store::open_read_only(root).map_err(|e| {
            ServeError::NoStore(format!(
                "{e} (name the store with --store DIR or CAIRN_STORE)"
            ))
        })?;
        if !root.join("runs.db").is_file() {
            return Err(ServeError::NoStore(format!(
                "no runs recorded in {} yet (run a workflow first, or name another store with --store)",
                root.display()
            )));
        }
        let records = (0..CONNECTIONS)
            .map(|_| Records::open_read_only(root))
            .collect::<Result<_, _>>()?;
        Ok(State {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                store,
                records,
                next: AtomicUsize::new(0),
                counts: Mutex::default(),
            }),
        })
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Runs `f` on one of the record connections, off the async threads
    /// (SQLite blocks).
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Records, &Store) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, ViewError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let i = state.inner.next.fetch_add(1, Ordering::Relaxed) % state.inner.records.len();
            f(&state.inner.records[i], &state.inner.store)
        })
        .await
        .map_err(|e| ViewError::Internal(format!("a reader thread failed: {e}")))?
    }

    /// A run's job counts: read once for a run that has ended.
    pub fn counts(&self, records: &Records, run: &RunRow) -> Result<StatusCounts, ViewError> {
        if let Some(c) = self.inner.counts.lock().unwrap().get(&run.id) {
            return Ok(*c);
        }
        let c = records.status_counts(&run.id)?;
        if run.status.is_final() {
            self.inner.counts.lock().unwrap().insert(run.id.clone(), c);
        }
        Ok(c)
    }
}

/// The address a `cairn serve` listens on, bound, with its URL.
#[derive(Debug)]
pub struct Bound {
    listener: std::net::TcpListener,
    url: String,
}

impl Bound {
    /// Binds `addr` (port 0: a free one).
    pub fn bind(addr: SocketAddr) -> Result<Bound, ServeError> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(Bound {
            url: format!("http://{local}/"),
            listener,
        })
    }

    /// The URL it answers at, such as `http://127.0.0.1:41234/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Serves `state` until the process ends.
    pub async fn serve(self, state: State) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        axum::serve(listener, router(state)).await
    }
}
