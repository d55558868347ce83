//! `split --parts N`: cut the text at `/in/text` into N chunks at line
//! boundaries and write them as the list output `/out/chunks/0` …
//! `/out/chunks/{N-1}`.
//!
//! Chunks are as close to equal in bytes as the line boundaries allow: the
//! i-th cut is placed at byte `len * i / N` and then moved forward to just
//! after the next newline, so no line is ever split. With fewer lines than
//! chunks, the trailing chunks are empty files.

use std::fs;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(message) = run(Path::new("/in"), Path::new("/out"), &args) {
        eprintln!("split: {message}");
        std::process::exit(1);
    }
}

fn run(in_dir: &Path, out_dir: &Path, args: &[String]) -> Result<(), String> {
    let parts = parse_args(args)?;
    let input = in_dir.join("text");
    let data = fs::read(&input).map_err(|e| format!("reading {}: {e}", input.display()))?;

    let chunks = out_dir.join("chunks");
    fs::create_dir_all(&chunks).map_err(|e| format!("creating {}: {e}", chunks.display()))?;
    let bounds = boundaries(&data, parts);
    for (i, pair) in bounds.windows(2).enumerate() {
        let path = chunks.join(i.to_string());
        fs::write(&path, &data[pair[0]..pair[1]])
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    eprintln!("split {} bytes into {parts} chunks", data.len());
    Ok(())
}

fn parse_args(args: &[String]) -> Result<usize, String> {
    match args {
        [flag, n] if flag == "--parts" => match n.parse::<usize>() {
            Ok(parts) if parts > 0 => Ok(parts),
            _ => Err(format!("--parts needs a positive integer, got {n:?}")),
        },
        _ => Err(format!("usage: split --parts N (got {args:?})")),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh `<tmp>/…/{in,out}` pair for one test.
    fn sandbox(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "wordcount-split-test-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("in")).unwrap();
        fs::create_dir_all(root.join("out")).unwrap();
        root
    }

    fn split(name: &str, text: &str, parts: &str) -> Result<Vec<String>, String> {
        let root = sandbox(name);
        fs::write(root.join("in/text"), text).unwrap();
        let args = ["--parts".to_string(), parts.to_string()];
        let result = run(&root.join("in"), &root.join("out"), &args).map(|()| {
            let mut chunks = Vec::new();
            while let Ok(chunk) =
                fs::read_to_string(root.join(format!("out/chunks/{}", chunks.len())))
            {
                chunks.push(chunk);
            }
            chunks
        });
        fs::remove_dir_all(&root).unwrap();
        result
    }

    #[test]
    fn splits_at_line_boundaries() {
        let text = "one\ntwo\nthree\nfour\nfive\nsix\n";
        // The cuts at bytes 9 and 18 move forward to the line ends at 14 and 19.
        let chunks = split("lines", text, "3").unwrap();
        assert_eq!(chunks, ["one\ntwo\nthree\n", "four\n", "five\nsix\n"]);
        for chunk in &chunks {
            assert!(chunk.is_empty() || chunk.ends_with('\n'));
        }
    }

    #[test]
    fn fewer_lines_than_parts_gives_empty_chunks() {
        let chunks = split("few", "only line\n", "4").unwrap();
        assert_eq!(chunks, ["only line\n", "", "", ""]);
    }

    #[test]
    fn keeps_a_last_line_without_newline() {
        let text = "aaaa\nbbbb\ncccc";
        let chunks = split("no-newline", text, "2").unwrap();
        assert_eq!(chunks.concat(), text);
        assert_eq!(chunks, ["aaaa\nbbbb\n", "cccc"]);
    }

    #[test]
    fn empty_input_and_one_part() {
        assert_eq!(split("empty", "", "2").unwrap(), ["", ""]);
        assert_eq!(split("one", "a\nb\n", "1").unwrap(), ["a\nb\n"]);
    }

    #[test]
    fn chunks_are_balanced() {
        let text: String = (0..10_000).map(|i| format!("line number {i}\n")).collect();
        let chunks = split("balanced", &text, "7").unwrap();
        assert_eq!(chunks.len(), 7);
        assert_eq!(chunks.concat(), text);
        let ideal = text.len() / 7;
        for chunk in &chunks {
            assert!(
                chunk.len().abs_diff(ideal) <= 20,
                "{} vs {ideal}",
                chunk.len()
            );
        }
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(split("zero", "a\n", "0").is_err());
        assert!(split("nan", "a\n", "x").is_err());
        let root = sandbox("usage");
        assert!(run(&root.join("in"), &root.join("out"), &[]).is_err());
        fs::remove_dir_all(&root).unwrap();
    }
}
