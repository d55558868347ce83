//! The benchmark's typed tasks (see `wit/world.wit`). They are deliberately
//! trivial: the suite measures what Cairn costs around a task (planning,
//! instantiation, argument passing, the store, caching), so the task bodies
//! must cost next to nothing, or exactly the same fixed work as the Python
//! peers' (`bench/peers.py`): BLAKE3 over a 1 MiB file, or streaming 1 GiB.

use std::io::{self, BufReader, Read, Write};

use cairn_sdk::{Artifact, ArtifactHandle, Writer};

mod bindings {
    wit_bindgen::generate!({
        // Cairn's `wit/` first, then this crate's own `wit/`.
        path: ["../../../wit", "wit"],
        world: "cairn-bench:tasks/bench",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
    });
}

/// Buffer size for the streaming tasks: large enough that host calls are
/// not the bottleneck, small enough to keep guest memory bounded.
const BLOCK: usize = 1 << 20;

struct Bench;

impl bindings::Guest for Bench {
    fn noop(i: u64) -> u64 {
        i
    }

    fn step(i: u64, a: u64, b: u64, c: u64) -> u64 {
        combine(i, &[a, b, c])
    }

    fn gather(i: u64, deps: Vec<u64>) -> u64 {
        combine(i, &deps)
    }

    fn hash(i: u64, a: u64, b: u64, c: u64, data: &ArtifactHandle) -> u64 {
        combine(i, &[a, b, c]) ^ blake3_head(data)
    }

    fn hash_gather(i: u64, deps: Vec<u64>, data: &ArtifactHandle) -> u64 {
        combine(i, &deps) ^ blake3_head(data)
    }

    fn generate(bytes: u64) -> ArtifactHandle {
        // The pattern once, 250 bytes longer than a block: the block at any
        // offset is a slice of it starting at offset mod 251, so no byte is
        // computed twice (the Python peers fill by doubling, also a copy).
        let pattern: Vec<u8> = (0..BLOCK + 250).map(|k| (k % 251) as u8).collect();
        let mut writer = Writer::new();
        let mut offset = 0u64;
        while offset < bytes {
            let len = (bytes - offset).min(BLOCK as u64) as usize;
            let start = (offset % 251) as usize;
            if let Err(e) = writer.write_all(&pattern[start..start + len]) {
                panic!("writing at offset {offset}: {e}");
            }
            offset += len as u64;
        }
        writer.finish()
    }

    fn copy(input: &ArtifactHandle) -> ArtifactHandle {
        let mut reader = BufReader::with_capacity(BLOCK, Artifact::borrowed(input));
        let mut writer = Writer::new();
        if let Err(e) = io::copy(&mut reader, &mut writer) {
            panic!("copying the artifact: {e}");
        }
        writer.finish()
    }

    fn consume(input: &ArtifactHandle) -> String {
        let mut reader = Artifact::borrowed(input);
        let mut hasher = blake3::Hasher::new();
        let mut block = vec![0u8; BLOCK];
        loop {
            match reader.read(&mut block) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&block[..n]);
                }
                Err(e) => panic!("reading the artifact: {e}"),
            }
        }
        hasher.finalize().to_hex().to_string()
    }
}

/// The first 8 bytes (little-endian) of the BLAKE3 digest of all of `data`,
/// read in one call: the artifacts hashed this way are 1 MiB.
fn blake3_head(data: &ArtifactHandle) -> u64 {
    let bytes = Artifact::borrowed(data).read_bytes();
    let digest = blake3::hash(&bytes);
    u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// `i` plus the sum of `deps`, wrapping: cheap, and it depends on every input.
fn combine(i: u64, deps: &[u64]) -> u64 {
    deps.iter().fold(i, |acc, d| acc.wrapping_add(*d))
}

bindings::export!(Bench with_types_in bindings);
