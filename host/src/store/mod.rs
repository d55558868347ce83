//! Bytes at rest: blobs named by their blake3 digest (`blobs`, `digest`),
//! the action model and its keys (`action`, pure), the file-backed action
//! cache (`cache`), the SQLite run records (`records`), and keeping all of
//! it honest (`maintenance`: store verify, gc).
//!
//! Owns: every write under a store directory; blobs are written nowhere
//! else. May not: execute jobs or know about the scheduler's order; the
//! records hear a run's events through an event sink.

pub mod action;
pub mod blobs;
pub mod cache;
pub mod digest;
pub mod maintenance;
pub mod records;
pub mod sha256;
