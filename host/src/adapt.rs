//! Turning WASI preview 1 core modules into components, so that every
//! toolchain that targets `wasm32-wasip1` (C, Zig, Go, TinyGo,
//! AssemblyScript…) makes tasks without any extra tool.
//!
//! The adapter is the one the wasmtime release we embed ships
//! (`wasi-preview1-component-adapter-provider`), and `wit-component` is the
//! wasm-tools line that release uses: the two move together. A module that
//! exports `_start` gets the command adapter and becomes a command task; any
//! other module gets the reactor adapter, and its exports come from the
//! component type that `wit-bindgen` embeds in it (a typed task in C, say).
//!
//! Adapting is deterministic, so the result is cached in the store under the
//! module's digest and the adapter's: a module is adapted once.

use crate::digest::Digest;
use crate::store::{Store, Stored};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
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

/// The component made from the core module `module`.
pub fn adapt(module: &[u8]) -> Result<Vec<u8>, AdaptError> {
    let adapter = if exports_start(module).map_err(AdaptError::Invalid)? {
        WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER
    } else {
        WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
    };
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .map_err(invalid)?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter)
        .map_err(invalid)?
        .encode()
        .map_err(invalid)
}

/// wit-component's error, with its chain of causes.
fn invalid(e: impl std::fmt::Display) -> AdaptError {
    AdaptError::Invalid(format!("{e:#}"))
}

/// Whether the module exports `_start` (a `main()` program).
fn exports_start(module: &[u8]) -> Result<bool, String> {
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::ExportSection(exports) =
            payload.map_err(|e| format!("not a valid core module: {e}"))?
        {
            for export in exports {
                let export = export.map_err(|e| format!("not a valid core module: {e}"))?;
                if export.name == "_start" {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// The component adapted from the stored core module `module`, adapting it
/// only the first time: the store keeps an index from module (and adapter)
/// to component.
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
    let stored = store.put_bytes(&adapt(&bytes)?)?;
    fs::create_dir_all(entry.parent().expect("has a parent"))?;
    // Atomically: another run may be reading the index right now.
    let mut tmp = tempfile::NamedTempFile::new_in(store.root().join("tmp"))?;
    io::Write::write_all(&mut tmp, stored.digest.to_string().as_bytes())?;
    tmp.persist(&entry).map_err(|e| e.error)?;
    Ok(stored)
}

/// Where the index keeps the component adapted from `module` by this
/// build's adapters.
fn index_path(store: &Store, module: &Digest) -> PathBuf {
    static ADAPTERS: OnceLock<String> = OnceLock::new();
    let adapters = ADAPTERS.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        h.update(b"cairn adapt v1\0wit-component 0.254\0");
        h.update(WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER);
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
    fn a_main_program_gets_the_command_adapter() {
        let module = wat::parse_str(
            r#"(module
                 (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                 (memory (export "memory") 1)
                 (func (export "_start")))"#,
        )
        .unwrap();
        let component = adapt(&module).unwrap();
        assert_eq!(classify(&component), Binary::Component);
        let text = wasmprinter_names(&component);
        assert!(
            text.iter().any(|n| n.starts_with("wasi:cli/run@0.2")),
            "{text:?}"
        );
    }

    #[test]
    fn an_unknown_import_is_named() {
        let module = wat::parse_str(
            r#"(module (import "env" "host_thing" (func)) (memory (export "memory") 1)
                       (func (export "_start")))"#,
        )
        .unwrap();
        let err = adapt(&module).unwrap_err().to_string();
        assert!(err.contains("env"), "{err}");
    }

    /// The names a component exports.
    fn wasmprinter_names(component: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(component) {
            if let Ok(wasmparser::Payload::ComponentExportSection(exports)) = payload {
                names.extend(
                    exports
                        .into_iter()
                        .map(|e| e.unwrap().name.name.to_string()),
                );
            }
        }
        names
    }
}
