//! `count(chunk, options)`: counts the words in the artifact `chunk` and
//! returns an artifact of `word\tcount` lines sorted by word (byte order).
//!
//! As in the command example (`examples/wordcount/tasks/count`), a word is a
//! maximal run of ASCII letters and digits; every other byte separates
//! words, so the input need not be valid UTF-8. `options.lowercase` folds
//! ASCII case first (the command example always does); words shorter than
//! `options.min-length` bytes are skipped (0 and 1 keep every word, as the
//! command example does).

use std::collections::HashMap;
use std::io::{BufWriter, Write};

use cairn_sdk::{Artifact, ArtifactHandle, Writer, info, metric};

mod bindings {
    wit_bindgen::generate!({
        // Cairn's `wit/` first, then this task's own `wit/`.
        path: ["../../../../wit", "wit"],
        world: "example:wordcount-count/count",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
    });
}

use bindings::CountOptions;

struct Count;

impl bindings::Guest for Count {
    fn count(chunk: &ArtifactHandle, options: CountOptions) -> ArtifactHandle {
        let mut data = Artifact::borrowed(chunk).read_bytes();
        if options.lowercase {
            data.make_ascii_lowercase();
        }
        let counts = count_words(&data, usize::from(options.min_length));
        let words: u64 = counts.iter().map(|&(_, n)| n).sum();

        let mut out = BufWriter::with_capacity(1 << 16, Writer::new());
        let written = write_counts(&mut out, &counts).and_then(|()| {
            out.into_inner()
                .map_err(|e| e.into_error())
                .map(Writer::finish)
        });
        let artifact = match written {
            Ok(artifact) => artifact,
            // The export returns a plain artifact: a failure traps.
            Err(e) => panic!("writing the counts: {e}"),
        };
        info!("{} distinct words, {words} in all", counts.len());
        metric("words", words as f64, None);
        artifact
    }
}

bindings::export!(Count with_types_in bindings);

/// Each word of `data` at least `min_length` bytes long, with its count,
/// sorted by word.
fn count_words(data: &[u8], min_length: usize) -> Vec<(&[u8], u64)> {
    let mut counts: HashMap<&[u8], u64> = HashMap::new();
    for word in data.split(|b| !b.is_ascii_alphanumeric()) {
        if !word.is_empty() && word.len() >= min_length {
            *counts.entry(word).or_insert(0) += 1;
        }
    }
    let mut sorted: Vec<(&[u8], u64)> = counts.into_iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    sorted
}

/// Writes `word\tcount` lines.
fn write_counts(out: &mut impl Write, counts: &[(&[u8], u64)]) -> std::io::Result<()> {
    for (word, count) in counts {
        out.write_all(word)?;
        writeln!(out, "\t{count}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(chunk: &[u8], lowercase: bool, min_length: usize) -> String {
        let mut data = chunk.to_vec();
        if lowercase {
            data.make_ascii_lowercase();
        }
        let mut out = Vec::new();
        write_counts(&mut out, &count_words(&data, min_length)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counts_lowercased_words_sorted() {
        let counts = count(b"The cat, the HAT; the 2 cats!\nthe end", true, 1);
        assert_eq!(counts, "2\t1\ncat\t1\ncats\t1\nend\t1\nhat\t1\nthe\t4\n");
    }

    #[test]
    fn keeps_case_and_skips_short_words() {
        let counts = count(b"The cat, the HAT; the 2 cats!\nthe end", false, 4);
        assert_eq!(counts, "cats\t1\n");
        let counts = count(b"The cat, the HAT", false, 0);
        assert_eq!(counts, "HAT\t1\nThe\t1\ncat\t1\nthe\t1\n");
    }

    #[test]
    fn non_alphanumeric_bytes_separate_words() {
        let counts = count(b"don't\xffstop\xe2\x80\x94now", true, 1);
        assert_eq!(counts, "don\t1\nnow\t1\nstop\t1\nt\t1\n");
        assert_eq!(count(b" \n\n ,. ", true, 1), "");
    }
}
