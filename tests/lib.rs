//! Paths of the test guest components, built from `tests/guests` for
//! `wasm32-wasip2` by this crate's build script, once per test build.
//!
//! Each guest is one tiny program with one behaviour, named for it
//! (`NOOP`, `ESCAPE`, …); [`ALL`] lists them for tests that want every one.
//! The integration tests themselves are `tests/all/`, compiled as the `cairn`
//! package's `all` test so they can run the real `cairn` binary.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
