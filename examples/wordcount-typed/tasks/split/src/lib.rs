//! `split(text, parts)`: cuts the artifact `text` into `parts` chunks at line
//! boundaries and returns them, in order, with the number of lines.
//!
//! As in the command example (`examples/wordcount/tasks/split`), chunks are
//! as close to equal in bytes as the line boundaries allow: the i-th cut is
//! placed at byte `len * i / parts` and then moved forward to just after the
//! next newline, so no line is ever split. With fewer lines than chunks, the
//! trailing chunks are empty. `parts` 0 is an error.

use std::io::Write;

use cairn_sdk::{Artifact, ArtifactHandle, Writer, info};

mod bindings {
    wit_bindgen::generate!({
        // Cairn's `wit/` (cairn:task and the WASI packages it uses), then
        // this task's own `wit/`, which depends on it.
        path: ["../../../../wit", "wit"],
        world: "example:wordcount-split/split",
        // Use cairn-sdk's bindings of cairn:task, so `artifact` is
        // `cairn_sdk::ArtifactHandle`…
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        // …and generate the WASI interfaces of `wasi:cli/imports` here.
        generate_all,
    });
}

use bindings::Chunks;

struct Split;

impl bindings::Guest for Split {
    fn split(text: &ArtifactHandle, parts: u32) -> Result<Chunks, String> {
        if parts == 0 {
            return Err("parts must be at least 1".to_string());
        }
        let data = Artifact::borrowed(text).read_bytes();
        let bounds = boundaries(&data, parts as usize);
        let mut chunks = Vec::with_capacity(parts as usize);
        for (i, pair) in bounds.windows(2).enumerate() {
            let mut writer = Writer::new();
            writer
                .write_all(&data[pair[0]..pair[1]])
                .map_err(|e| format!("writing chunk {i}: {e}"))?;
            chunks.push(writer.finish());
        }
        let lines = count_lines(&data);
        info!(
            "split {} bytes ({lines} lines) into {parts} chunks",
            data.len()
        );
        Ok(Chunks {
            parts: chunks,
            lines,
        })
    }
}

bindings::export!(Split with_types_in bindings);

/// The `parts + 1` byte offsets delimiting the chunks: the first is 0, the
/// last is `data.len()`, and every other one follows a newline (or is the end).
fn boundaries(data: &[u8], parts: usize) -> Vec<usize> {
    let len = data.len();
    let mut bounds = vec![0];
    for i in 1..parts {
        let prev = bounds[bounds.len() - 1];
        // u128 so that `len * i` cannot overflow a 32-bit usize on wasm32.
        let target = (len as u128 * i as u128 / parts as u128) as usize;
        let mut cut = target.max(prev);
        if cut > 0 && cut < len && data[cut - 1] != b'\n' {
            cut = match data[cut..].iter().position(|&b| b == b'\n') {
                Some(offset) => cut + offset + 1,
                None => len,
            };
        }
        bounds.push(cut);
    }
    bounds.push(len);
    bounds
}

/// The number of lines: newlines, plus one for a last line without one.
fn count_lines(data: &[u8]) -> u64 {
    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    match data.last() {
        Some(&last) if last != b'\n' => newlines + 1,
        _ => newlines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(data: &str, parts: usize) -> Vec<&str> {
        boundaries(data.as_bytes(), parts)
            .windows(2)
            .map(|pair| &data[pair[0]..pair[1]])
            .collect()
    }

    #[test]
    fn splits_at_line_boundaries() {
        let text = "one\ntwo\nthree\nfour\nfive\nsix\n";
        // The cuts at bytes 9 and 18 move forward to the line ends at 14 and 19.
        assert_eq!(
            chunks(text, 3),
            ["one\ntwo\nthree\n", "four\n", "five\nsix\n"]
        );
    }

    #[test]
    fn fewer_lines_than_parts_gives_empty_chunks() {
        assert_eq!(chunks("only line\n", 4), ["only line\n", "", "", ""]);
        assert_eq!(chunks("", 2), ["", ""]);
    }

    #[test]
    fn counts_lines() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a\nb\n"), 2);
        assert_eq!(count_lines(b"a\nb"), 2);
        assert_eq!(count_lines(b"\n\n"), 2);
    }
}
