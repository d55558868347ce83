//! `merge(parts)`: fan-in; sums the per-chunk word counts in `parts`
//! (artifacts of `word\tcount` lines, as `count` returns them) and returns
//! the total in the same format, sorted by count descending, then by word,
//! as the command example (`examples/wordcount/tasks/merge`) does.
//!
//! The export is written by hand rather than with the generated `export!`:
//! wit-bindgen's Rust generator cannot lift a `list<borrow<T>>` parameter of
//! an imported resource `T` (bytecodealliance/wit-bindgen#811), so
//! `generate!` skips the export, and `export_merge` below lifts the list
//! itself, as Cairn's `tests/typed-guests/concat` does. The world's
//! component type, which declares the export, still comes from `generate!`.

use std::alloc::{Layout, dealloc};
use std::collections::HashMap;
use std::io::{BufWriter, Write};

use cairn_sdk::{Artifact, ArtifactHandle, Writer, info};

mod bindings {
    wit_bindgen::generate!({
        // Cairn's `wit/` first, then this task's own `wit/`.
        path: ["../../../../wit", "wit"],
        world: "example:wordcount-merge/merge",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
        // Written by hand below.
        skip: ["merge"],
    });
}

/// Sums the counts in `parts` into a new artifact. The export returns a
/// plain artifact, so a malformed part traps, with the reason in the log.
fn merge(parts: &[ArtifactHandle]) -> ArtifactHandle {
    let mut totals: HashMap<String, u64> = HashMap::new();
    for (index, part) in parts.iter().enumerate() {
        let text = match Artifact::borrowed(part).read_string() {
            Ok(text) => text,
            Err(e) => panic!("part {index}: {e}"),
        };
        if let Err(e) = add_counts(&mut totals, &text) {
            panic!("part {index}: {e}");
        }
    }
    let sorted = sort_counts(totals);

    let mut out = BufWriter::with_capacity(1 << 16, Writer::new());
    let written = write_counts(&mut out, &sorted).and_then(|()| {
        out.into_inner()
            .map_err(|e| e.into_error())
            .map(Writer::finish)
    });
    let artifact = match written {
        Ok(artifact) => artifact,
        Err(e) => panic!("writing the total: {e}"),
    };
    info!(
        "merged {} parts: {} distinct words",
        parts.len(),
        sorted.len()
    );
    artifact
}

/// Adds the `word\tcount` lines of `text` to `totals`.
fn add_counts(totals: &mut HashMap<String, u64>, text: &str) -> Result<(), String> {
    for (number, line) in text.lines().enumerate() {
        let (word, count) =
            parse_line(line).ok_or_else(|| format!("line {}: malformed {line:?}", number + 1))?;
        *totals.entry(word.to_string()).or_insert(0) += count;
    }
    Ok(())
}

fn parse_line(line: &str) -> Option<(&str, u64)> {
    let (word, count) = line.split_once('\t')?;
    if word.is_empty() {
        return None;
    }
    Some((word, count.parse().ok()?))
}

/// By count descending, then by word.
fn sort_counts(totals: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut sorted: Vec<(String, u64)> = totals.into_iter().collect();
    sorted.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sorted
}

/// Writes `word\tcount` lines.
fn write_counts(out: &mut impl Write, counts: &[(String, u64)]) -> std::io::Result<()> {
    for (word, count) in counts {
        writeln!(out, "{word}\t{count}")?;
    }
    out.flush()
}

/// The core export `merge: func(parts: list<borrow<artifact>>) -> artifact`
/// as the canonical ABI lowers it: the list is `len` handles (`u32`s) at
/// `ptr`, in memory the host allocated with `cabi_realloc`; the result is the
/// new artifact's own handle.
///
/// # Safety
///
/// Only the component model calls this, with a valid list.
#[unsafe(export_name = "merge")]
unsafe extern "C" fn export_merge(ptr: *mut u8, len: usize) -> i32 {
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
    let result = merge(&parts);
    // Borrowed handles must be dropped before the call returns.
    drop(parts);
    result.take_handle() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge_texts(parts: &[&str]) -> Result<String, String> {
        let mut totals = HashMap::new();
        for part in parts {
            add_counts(&mut totals, part)?;
        }
        let mut out = Vec::new();
        write_counts(&mut out, &sort_counts(totals)).unwrap();
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn sums_and_sorts_by_count_then_word() {
        let total = merge_texts(&[
            "apple\t2\nbanana\t1\ncherry\t5\n",
            "banana\t4\ndate\t5\n",
            "",
        ])
        .unwrap();
        assert_eq!(total, "banana\t5\ncherry\t5\ndate\t5\napple\t2\n");
        assert_eq!(merge_texts(&[]).unwrap(), "");
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(merge_texts(&["apple 2\n"]).is_err());
        assert!(merge_texts(&["apple\tmany\n"]).is_err());
        assert!(merge_texts(&["\t3\n"]).is_err());
    }
}
