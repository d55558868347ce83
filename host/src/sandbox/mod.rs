//! The local executor: one fresh wasmtime store per job. `runtime` owns the
//! engine, compiled components and limits; `jobdir` the job's files and
//! WASI context; `task_host` the host side of `cairn:task`; `adapt` turns
//! preview 1 modules into components; `executor` is the
//! [`Executor`](crate::Executor) over all of them.
//!
//! Owns: every grant a job gets. `jobdir` is the only place in cairn that
//! gives a guest filesystem access, and it gives exactly `/in` (read-only)
//! and `/out`. May not: decide what runs or when, or write blobs except
//! through the store.

pub mod adapt;
pub mod executor;
pub mod jobdir;
pub mod runtime;
pub mod task_host;
