//! `split(text, count)`: splits the artifact `text` into `count` artifacts
//! at line boundaries, as evenly as possible by lines (chunk `i` holds lines
//! `i*n/count .. (i+1)*n/count` of `n`, so some are empty when there are
//! fewer lines than chunks), and counts the lines (a last line without a
//! newline counts). `count` 0 is an error.

use std::io::Write;

use cairn_sdk::{Artifact, ArtifactHandle, Writer};

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "../wit"],
        world: "cairn-test:typed/split",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
    });
}

use bindings::Parts;

struct Split;

impl bindings::Guest for Split {
    fn split(text: &ArtifactHandle, count: u32) -> Result<Parts, String> {
        if count == 0 {
            return Err("count must be at least 1".to_string());
        }
        let text = Artifact::borrowed(text).read_bytes();
        let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
        let (n, count) = (lines.len(), count as usize);
        let mut chunks = Vec::with_capacity(count);
        for i in 0..count {
            let mut writer = Writer::new();
            for line in &lines[i * n / count..(i + 1) * n / count] {
                writer.write_all(line).map_err(|e| e.to_string())?;
            }
            chunks.push(writer.finish());
        }
        Ok(Parts {
            chunks,
            lines: n as u64,
        })
    }
}

bindings::export!(Split with_types_in bindings);
