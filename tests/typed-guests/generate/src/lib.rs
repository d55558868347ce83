//! `generate(bytes)`: an artifact of `bytes` bytes of a fixed pattern, byte
//! `i` being `i % 251`, written through the writer's stream 64 KiB at a time
//! (bounded memory whatever the size).

use std::io::Write;

use cairn_sdk::{ArtifactHandle, Writer};

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "../wit"],
        world: "cairn-test:typed/generate",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
    });
}

const BLOCK: usize = 64 * 1024;

struct Generate;

impl bindings::Guest for Generate {
    fn generate(bytes: u64) -> ArtifactHandle {
        let mut writer = Writer::new();
        let mut block = vec![0u8; BLOCK];
        let mut offset = 0u64;
        while offset < bytes {
            let len = (bytes - offset).min(BLOCK as u64) as usize;
            for (j, b) in block[..len].iter_mut().enumerate() {
                *b = ((offset + j as u64) % 251) as u8;
            }
            if let Err(e) = writer.write_all(&block[..len]) {
                panic!("writing at offset {offset}: {e}");
            }
            offset += len as u64;
        }
        writer.finish()
    }
}

bindings::export!(Generate with_types_in bindings);
