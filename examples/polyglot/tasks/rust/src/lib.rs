//! `profile(text, options)`: the polyglot conformance contract
//! (`wit/profile.wit`, which documents every rule) in Rust, with cairn-sdk.
//! The Python, JavaScript and C tasks beside this one must agree with it
//! byte for byte.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use cairn_sdk::{Artifact, ArtifactHandle, Writer, info, label, metric};

mod bindings {
    wit_bindgen::generate!({
        // Cairn's `wit/` first, then this task's own `wit/` (a link to the
        // example's shared world).
        path: ["../../../../wit", "wit"],
        world: "example:polyglot/profile",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
    });
}

use bindings::{Casing, Options, Profile};

struct Task;

impl bindings::Guest for Task {
    fn profile(text: &ArtifactHandle, options: Options) -> Result<Profile, String> {
        let mut data = Artifact::borrowed(text).read_bytes();
        match options.casing {
            Casing::Keep => {}
            Casing::Lower => data.make_ascii_lowercase(),
            Casing::Upper => data.make_ascii_uppercase(),
        }
        let stop: HashSet<&[u8]> = options.stop_words.iter().map(|w| w.as_bytes()).collect();
        let counts = count(&data, usize::from(options.min_length), &stop);
        if counts.words == 0 {
            return Err(format!(
                "no words counted (min-length {})",
                options.min_length
            ));
        }
        let distinct = counts.by_word.len();
        let mut top = Vec::new();
        for (word, n) in counts.top(options.top as usize) {
            top.extend_from_slice(word);
            writeln!(top, "\t{n}").expect("writing to a Vec");
        }
        let summary = format!(
            "words {}\ndistinct {distinct}\nletters {}\n",
            counts.words, counts.letters
        );
        info!("counted {} words ({distinct} distinct)", counts.words);
        metric("words", counts.words as f64, None);
        if let Some(tag) = &options.tag {
            label("tag", tag);
        }
        Ok(Profile {
            words: counts.words,
            distinct: distinct as u32,
            mean_length: counts.letters as f64 / counts.words as f64,
            top: artifact(&top),
            text: artifact(&data),
            summary: artifact(summary.as_bytes()),
        })
    }
}

bindings::export!(Task with_types_in bindings);

/// A new artifact holding `bytes`.
fn artifact(bytes: &[u8]) -> ArtifactHandle {
    let mut w = Writer::new();
    // The export returns no io error: a failed write traps the task.
    w.write_all(bytes).expect("writing an artifact");
    w.finish()
}

/// What was counted.
struct Counts<'a> {
    words: u64,
    letters: u64,
    by_word: HashMap<&'a [u8], u64>,
}

impl Counts<'_> {
    /// The `n` most frequent words, most frequent first, ties in byte order.
    fn top(&self, n: usize) -> Vec<(&[u8], u64)> {
        let mut all: Vec<(&[u8], u64)> = self.by_word.iter().map(|(w, c)| (*w, *c)).collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

/// Counts the words of `data`: maximal runs of ASCII letters and digits at
/// least `min_length` bytes long that are not in `stop`.
fn count<'a>(data: &'a [u8], min_length: usize, stop: &HashSet<&[u8]>) -> Counts<'a> {
    let mut c = Counts {
        words: 0,
        letters: 0,
        by_word: HashMap::new(),
    };
    for word in data.split(|b| !b.is_ascii_alphanumeric()) {
        if word.is_empty() || word.len() < min_length || stop.contains(word) {
            continue;
        }
        c.words += 1;
        c.letters += word.len() as u64;
        *c.by_word.entry(word).or_insert(0) += 1;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_skip_short_and_stop_words() {
        let stop: HashSet<&[u8]> = [b"the".as_slice()].into_iter().collect();
        let c = count(b"the cat, a cat; the dog\xffdog dog", 2, &stop);
        assert_eq!((c.words, c.letters), (5, 15));
        assert_eq!(c.top(2), [(b"dog".as_slice(), 3), (b"cat".as_slice(), 2)]);
    }

    #[test]
    fn ties_are_broken_by_byte_order() {
        let c = count(b"b a B c", 1, &HashSet::new());
        assert_eq!(
            c.top(10),
            [(b"B".as_slice(), 1), (b"a".as_slice(), 1), (b"b".as_slice(), 1), (b"c".as_slice(), 1)]
        );
    }
}
