//! `concat(parts)`: fan-in; one artifact holding the `parts` in order,
//! streamed in bounded memory.
//!
//! The export is written by hand rather than with the generated `export!`:
//! wit-bindgen's Rust generator cannot lift a `list<borrow<T>>` parameter of
//! an imported resource `T` (bytecodealliance/wit-bindgen#811: the code it
//! emits reuses one variable for every element's handle and does not
//! compile), so `generate!` skips the export. The world's component type,
//! which declares the export, still comes from `generate!`.

use std::alloc::{Layout, dealloc};
use std::io::{self, BufReader};

use cairn_sdk::{Artifact, ArtifactHandle, Writer};

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "../wit"],
        world: "cairn-test:typed/concat",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
        // Written by hand below.
        skip: ["concat"],
    });
}

/// Concatenates `parts` in order into a new artifact.
fn concat(parts: &[ArtifactHandle]) -> ArtifactHandle {
    let mut writer = Writer::new();
    for (i, part) in parts.iter().enumerate() {
        let mut reader = BufReader::with_capacity(64 * 1024, Artifact::borrowed(part));
        if let Err(e) = io::copy(&mut reader, &mut writer) {
            panic!("copying part {i}: {e}");
        }
    }
    writer.finish()
}

/// The core export `concat: func(parts: list<borrow<artifact>>) -> artifact`
/// as the canonical ABI lowers it: the list is `len` handles (`u32`s) at
/// `ptr`, in memory the host allocated with `cabi_realloc`; the result is the
/// new artifact's own handle.
///
/// # Safety
///
/// Only the component model calls this, with a valid list.
#[unsafe(export_name = "concat")]
unsafe extern "C" fn export_concat(ptr: *mut u8, len: usize) -> i32 {
    #[cfg(target_arch = "wasm32")]
    wit_bindgen::rt::run_ctors_once();
    let parts: Vec<ArtifactHandle> = (0..len)
        // SAFETY: the list holds `len` handles, each borrowed for this call.
        .map(|i| unsafe { ArtifactHandle::from_handle(ptr.cast::<u32>().add(i).read()) })
        .collect();
    if len > 0 {
        // SAFETY: the host allocated the list with `cabi_realloc` (size
        // `len * 4`, alignment 4) and hands it over to the callee.
        unsafe { dealloc(ptr, Layout::from_size_align_unchecked(len * 4, 4)) };
    }
    let result = concat(&parts);
    // Borrowed handles must be dropped before the call returns.
    drop(parts);
    result.take_handle() as i32
}
