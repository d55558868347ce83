//! `count` (no arguments): count the words in `/in/chunk` and write
//! `/out/counts` as `word\tcount` lines sorted by word (byte order).
//!
//! A word is a maximal run of ASCII letters and digits, lowercased; every
//! other byte separates words, so the input need not be valid UTF-8.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(message) = run(Path::new("/in"), Path::new("/out"), &args) {
        eprintln!("count: {message}");
        std::process::exit(1);
    }
}

fn run(in_dir: &Path, out_dir: &Path, args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("unexpected argument {arg:?} (count takes none)"));
    }
    let input = in_dir.join("chunk");
    let mut data = fs::read(&input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    data.make_ascii_lowercase();

    let mut counts: HashMap<&[u8], u64> = HashMap::new();
    for word in data.split(|b| !b.is_ascii_alphanumeric()) {
        if !word.is_empty() {
            *counts.entry(word).or_insert(0) += 1;
        }
    }
    let mut sorted: Vec<(&[u8], u64)> = counts.into_iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));

    let output = out_dir.join("counts");
    write_counts(&output, &sorted).map_err(|e| format!("writing {}: {e}", output.display()))?;
    eprintln!("{} distinct words", sorted.len());
    Ok(())
}

fn write_counts(path: &Path, counts: &[(&[u8], u64)]) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
    for (word, count) in counts {
        out.write_all(word)?;
        writeln!(out, "\t{count}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh `<tmp>/…/{in,out}` pair for one test.
    fn sandbox(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "wordcount-count-test-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("in")).unwrap();
        fs::create_dir_all(root.join("out")).unwrap();
        root
    }

    fn count(name: &str, chunk: &[u8], args: &[&str]) -> Result<String, String> {
        let root = sandbox(name);
        fs::write(root.join("in/chunk"), chunk).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let result = run(&root.join("in"), &root.join("out"), &args)
            .map(|()| fs::read_to_string(root.join("out/counts")).unwrap());
        fs::remove_dir_all(&root).unwrap();
        result
    }

    #[test]
    fn counts_lowercased_words_sorted() {
        let counts = count("basic", b"The cat, the HAT; the 2 cats!\nthe end", &[]).unwrap();
        assert_eq!(counts, "2\t1\ncat\t1\ncats\t1\nend\t1\nhat\t1\nthe\t4\n");
    }

    #[test]
    fn non_alphanumeric_bytes_separate_words() {
        let counts = count("bytes", b"don't\xffstop\xe2\x80\x94now", &[]).unwrap();
        assert_eq!(counts, "don\t1\nnow\t1\nstop\t1\nt\t1\n");
    }

    #[test]
    fn empty_chunk_gives_empty_counts() {
        assert_eq!(count("empty", b"", &[]).unwrap(), "");
        assert_eq!(count("blank", b" \n\n ,. ", &[]).unwrap(), "");
    }

    #[test]
    fn rejects_arguments() {
        assert!(count("args", b"a", &["--verbose"]).is_err());
    }
}
