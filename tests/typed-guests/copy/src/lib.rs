//! `copy(input)`: a new artifact with the bytes of `input`, copied with
//! `std::io::copy` from an `Artifact` (Read) to a `Writer` (Write) through a
//! fixed 64 KiB buffer, so any size is copied in bounded memory.

use std::io::{self, BufReader};

use cairn_sdk::{Artifact, ArtifactHandle, Writer};

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "../wit"],
        world: "cairn-test:typed/copy",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
    });
}

struct StreamCopy;

impl bindings::Guest for StreamCopy {
    fn copy(input: &ArtifactHandle) -> ArtifactHandle {
        // `io::copy` from a `BufReader` moves the reader's buffer: reads of
        // 64 KiB, written out in chunks of at most 4 KiB.
        let mut reader = BufReader::with_capacity(64 * 1024, Artifact::borrowed(input));
        let mut writer = Writer::new();
        let copied = match io::copy(&mut reader, &mut writer) {
            Ok(copied) => copied,
            Err(e) => panic!("copying the artifact: {e}"),
        };
        assert_eq!(copied, writer.written());
        writer.finish()
    }
}

bindings::export!(StreamCopy with_types_in bindings);
