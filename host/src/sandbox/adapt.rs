//! WASI preview 1 core modules as tasks, so that every toolchain that
//! targets `wasm32-wasip1` (C, Zig, Go, TinyGo, AssemblyScript…) makes
//! tasks without any extra tool.
//!
//! - A module that exports `_start` (a `main()` program) is a command task
//!   and stays a module: the runtime runs it against wasmtime-wasi's own
//!   preview 1, in the same sandbox as a component. The preview 1 adapter
//!   cannot host it safely: the adapter grows linear memory for its state,
//!   and runtimes that treat all of memory as theirs (Go; wasi-libc before
//!   2023, as in Debian's clang) hand those pages out and corrupt it.
//! - Any other module is a reactor, typically a typed task whose exports
//!   come from the component type `wit-bindgen` embeds; it becomes a
//!   component with the reactor adapter. Such a module exports
//!   `cabi_realloc`, which the adapter allocates its state with, so the
//!   problem above does not arise.
//!
//! The adapter is the one the wasmtime release we embed ships
//! (`wasi-preview1-component-adapter-provider`), and `wit-component` is the
//! wasm-tools line that release uses: the two move together. Adapting is
//! deterministic, so the result is cached in the store under the module's
//! digest and the adapter's: a module is adapted (or found to be a command)
//! once.

use crate::store::blobs::{Store, Stored};
use crate::store::digest::Digest;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

/// What a wasm binary is, from its 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// A component (`\0asm`, version 0x0d, layer 1).
    Component,
    /// A core module (`\0asm`, version 1, layer 0).
    Module,
    /// Neither.
    Other,
}

/// Classifies `header`, the first bytes of a file.
pub fn classify(header: &[u8]) -> Binary {
    match header {
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Binary::Module,
        [0, b'a', b's', b'm', 0x0d, 0, 1, 0, ..] => Binary::Component,
        _ => Binary::Other,
    }
}

/// The first bytes of the file at `path`, enough for [`classify`].
pub fn header(path: &std::path::Path) -> io::Result<[u8; 8]> {
    use std::io::Read;
    let mut h = [0u8; 8];
    let mut f = fs::File::open(path)?;
    let mut n = 0;
    while n < h.len() {
        match f.read(&mut h[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(h)
}

/// Why a core module could not become a component.
#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    /// The module is not something the preview 1 adapter can wrap; the
    /// message is wit-component's (an unknown import module, say).
    #[error("cannot adapt the core module into a component: {0}")]
    Invalid(String),
    /// Reading the module or storing the component failed.
    #[error("adapting the core module: {0}")]
    Io(#[from] io::Error),
}

/// What a core module becomes as a task: `None` for a command module,
/// which runs as it is; otherwise the component adapted from it.
pub fn adapt(module: &[u8]) -> Result<Option<Vec<u8>>, AdaptError> {
    let (start, typed) = shape(module).map_err(AdaptError::Invalid)?;
    if start {
        return Ok(None);
    }
    if !typed {
        return Err(AdaptError::Invalid(
            "it has neither `_start` (a command) nor the component type wit-bindgen embeds \
             (a typed task): there is nothing to call"
                .into(),
        ));
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .map_err(invalid)?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .map_err(invalid)?
        .encode()
        .map(Some)
        .map_err(invalid)
}

/// wit-component's error, with its chain of causes.
fn invalid(e: impl std::fmt::Display) -> AdaptError {
    AdaptError::Invalid(format!("{e:#}"))
}

/// Whether the module exports `_start` (a `main()` program), and whether it
/// carries a `component-type` section (wit-bindgen's record of its world).
fn shape(module: &[u8]) -> Result<(bool, bool), String> {
    let invalid = |e: wasmparser::BinaryReaderError| format!("not a valid core module: {e}");
    let (mut start, mut typed) = (false, false);
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        match payload.map_err(invalid)? {
            wasmparser::Payload::ExportSection(exports) => {
                for export in exports {
                    start |= export.map_err(invalid)?.name == "_start";
                }
            }
            wasmparser::Payload::CustomSection(s) => {
                typed |= s.name().starts_with("component-type");
            }
            _ => {}
        }
    }
    Ok((start, typed))
}

/// The task the stored core module `module` is: itself for a command
/// module, else the component adapted from it. Decided (and adapted) only
/// the first time: the store keeps an index from module (and adapter) to
/// task.
pub fn adapt_stored(store: &Store, module: &Digest) -> Result<Stored, AdaptError> {
    let entry = index_path(store, module);
    if let Some(component) = fs::read_to_string(&entry)
        .ok()
        .and_then(|hex| hex.trim().parse::<Digest>().ok())
        && let Ok(meta) = fs::metadata(store.blob_path(&component))
    {
        return Ok(Stored {
            digest: component,
            size: meta.len(),
        });
    }
    let bytes = fs::read(store.blob_path(module))?;
    let stored = match adapt(&bytes)? {
        Some(component) => store.put_bytes(&component)?,
        None => Stored {
            digest: *module,
            size: bytes.len() as u64,
        },
    };
    store.write_atomic(&entry, stored.digest.to_string().as_bytes())?;
    Ok(stored)
}

/// Where the index keeps the component adapted from `module` by this
/// build's adapters.
fn index_path(store: &Store, module: &Digest) -> PathBuf {
    static ADAPTERS: OnceLock<String> = OnceLock::new();
    let adapters = ADAPTERS.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        h.update(b"cairn adapt v2\0wit-component 0.254\0");
        h.update(WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER);
        h.finalize().to_hex().to_string()
    });
    store
        .root()
        .join("build")
        .join("adapted")
        .join(&adapters[..16])
        .join(module.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_classified() {
        assert_eq!(classify(b"\0asm\x01\0\0\0rest"), Binary::Module);
        assert_eq!(classify(b"\0asm\x0d\0\x01\0"), Binary::Component);
        assert_eq!(classify(b"\0asm"), Binary::Other);
        assert_eq!(classify(b"#!/bin/sh\n"), Binary::Other);
    }

    #[test]
    fn a_main_program_stays_a_module_and_a_reactor_is_adapted() {
        let command = wat::parse_str(
            r#"(module
                 (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                 (memory (export "memory") 1)
                 (func (export "_start")))"#,
        )
        .unwrap();
        assert!(adapt(&command).unwrap().is_none());
        let reactor = wat::parse_str(
            r#"(module
                 (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                 (memory (export "memory") 1)
                 (func (export "_initialize")))"#,
        )
        .unwrap();
        // Without wit-bindgen's component type there is nothing to call.
        let err = adapt(&reactor).unwrap_err().to_string();
        assert!(err.contains("neither `_start`"), "{err}");
    }
}
