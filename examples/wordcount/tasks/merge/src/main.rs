//! `merge` (no arguments): sum the per-chunk word counts in the list input
//! `/in/parts/` (files `0`, `1`, … in `word\tcount` format) and write
//! `/out/total` in the same format, sorted by count descending, then by word.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(message) = run(Path::new("/in"), Path::new("/out"), &args) {
        eprintln!("merge: {message}");
        std::process::exit(1);
    }
}

fn run(in_dir: &Path, out_dir: &Path, args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("unexpected argument {arg:?} (merge takes none)"));
    }
    let parts_dir = in_dir.join("parts");
    let parts = list_parts(&parts_dir)?;

    let mut totals: HashMap<String, u64> = HashMap::new();
    for index in 0..parts {
        let path = parts_dir.join(index.to_string());
        let text =
            fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        for (number, line) in text.lines().enumerate() {
            let (word, count) = parse_line(line).ok_or_else(|| {
                format!("{}:{}: malformed line {line:?}", path.display(), number + 1)
            })?;
            *totals.entry(word.to_string()).or_insert(0) += count;
        }
    }
    let mut sorted: Vec<(String, u64)> = totals.into_iter().collect();
    sorted.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let output = out_dir.join("total");
    write_counts(&output, &sorted).map_err(|e| format!("writing {}: {e}", output.display()))?;
    eprintln!("merged {parts} parts: {} distinct words", sorted.len());
    Ok(())
}

/// The number of files in the list directory, checking they are named
/// exactly `0` … `n-1`.
fn list_parts(dir: &Path) -> Result<usize, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
    let mut indices = Vec::new();
    for entry in entries {
        let name = entry
            .map_err(|e| format!("listing {}: {e}", dir.display()))?
            .file_name();
        let name = name.to_string_lossy();
        match name.parse::<usize>() {
            Ok(index) if index.to_string() == name => indices.push(index),
            _ => return Err(format!("unexpected entry {name:?} in {}", dir.display())),
        }
    }
    indices.sort_unstable();
    if indices.iter().enumerate().any(|(i, &index)| i != index) {
        return Err(format!(
            "{} is not numbered 0..{}",
            dir.display(),
            indices.len()
        ));
    }
    Ok(indices.len())
}

fn parse_line(line: &str) -> Option<(&str, u64)> {
    let (word, count) = line.split_once('\t')?;
    if word.is_empty() {
        return None;
    }
    Some((word, count.parse().ok()?))
}

fn write_counts(path: &Path, counts: &[(String, u64)]) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
    for (word, count) in counts {
        writeln!(out, "{word}\t{count}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh `<tmp>/…/{in,out}` pair for one test, with the given parts.
    fn sandbox(name: &str, parts: &[(&str, &str)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "wordcount-merge-test-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("in/parts")).unwrap();
        fs::create_dir_all(root.join("out")).unwrap();
        for (file, text) in parts {
            fs::write(root.join("in/parts").join(file), text).unwrap();
        }
        root
    }

    fn merge(name: &str, parts: &[(&str, &str)]) -> Result<String, String> {
        let root = sandbox(name, parts);
        let result = run(&root.join("in"), &root.join("out"), &[])
            .map(|()| fs::read_to_string(root.join("out/total")).unwrap());
        fs::remove_dir_all(&root).unwrap();
        result
    }

    #[test]
    fn sums_and_sorts_by_count_then_word() {
        let total = merge(
            "sum",
            &[
                ("0", "apple\t2\nbanana\t1\ncherry\t5\n"),
                ("1", "banana\t4\ndate\t5\n"),
                ("2", ""),
            ],
        )
        .unwrap();
        assert_eq!(total, "banana\t5\ncherry\t5\ndate\t5\napple\t2\n");
    }

    #[test]
    fn empty_list_gives_empty_total() {
        assert_eq!(merge("none", &[]).unwrap(), "");
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(merge("no-tab", &[("0", "apple 2\n")]).is_err());
        assert!(merge("bad-count", &[("0", "apple\tmany\n")]).is_err());
        assert!(merge("no-word", &[("0", "\t3\n")]).is_err());
    }

    #[test]
    fn rejects_badly_named_parts() {
        assert!(merge("gap", &[("0", "a\t1\n"), ("2", "b\t1\n")]).is_err());
        assert!(merge("name", &[("0", "a\t1\n"), ("x", "b\t1\n")]).is_err());
        assert!(merge("leading-zero", &[("00", "a\t1\n")]).is_err());
    }
}
