//! Paths of the test guest components, built for `wasm32-wasip2` by this
//! crate's build script, once per test build.
//!
//! - Command tasks, from `tests/guests`: each guest is one tiny program with
//!   one behaviour, named for it (`NOOP`, `ESCAPE`, …).
//! - Typed tasks, from the workspace `tests/typed-guests`: each is a
//!   `cdylib` crate `typed-<x>` exporting one function of its world in
//!   `tests/typed-guests/wit/typed.wit` (`TYPED_KINDS`, `TYPED_SPLIT`,
//!   `TYPED_CONCAT`, `TYPED_COPY`, `TYPED_GENERATE`, `TYPED_FAILS`,
//!   `TYPED_CONTEXT`).
//!
//! [`ALL`] lists every guest of both kinds and [`TYPED`] the typed ones, as
//! (name, path) with the constant's name in lower case (`noop`,
//! `typed_kinds`, …).
//!
//! [`browser`] drives headless Chromium (Debian's, through ChromeDriver)
//! for the web view's tests.
//!
//! The integration tests themselves are `tests/all/`, compiled as the `cairn`
//! package's `all` test so they can run the real `cairn` binary.

pub mod browser;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
