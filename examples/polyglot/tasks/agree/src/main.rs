//! `agree NAME...`: the polyglot workflow's verdict. Every list input in
//! `/in` (`top/`, `text/`, `summary/`, …) holds one file per implementation,
//! in the order of the NAMEs. Prints one line per input when all agree;
//! otherwise names, for every input, each implementation whose bytes differ
//! from the first one's and where, and exits 1.

use std::fs;
use std::path::Path;

fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    cairn_sdk::run(|| agree(Path::new("/in"), &names));
}

fn agree(in_dir: &Path, names: &[String]) -> Result<(), String> {
    if names.len() < 2 {
        return Err("usage: agree NAME NAME... (at least two implementations)".into());
    }
    let mut inputs: Vec<String> = fs::read_dir(in_dir)
        .map_err(|e| format!("reading {}: {e}", in_dir.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading {}: {e}", in_dir.display()))?;
    inputs.sort();
    let mut disagreements = Vec::new();
    for input in &inputs {
        let files = cairn_sdk::Dirs::at(in_dir, "/out")
            .input_list(input)
            .map_err(|e| format!("{input}: {e}"))?;
        if files.len() != names.len() {
            return Err(format!(
                "{input}: {} files for {} implementations",
                files.len(),
                names.len()
            ));
        }
        let contents = files
            .iter()
            .map(|f| fs::read(f).map_err(|e| format!("reading {}: {e}", f.display())))
            .collect::<Result<Vec<_>, _>>()?;
        let reference = &contents[0];
        for (name, bytes) in names.iter().zip(&contents).skip(1) {
            if let Some(at) = first_difference(reference, bytes) {
                disagreements.push(format!(
                    "{input}: {name} differs from {} at byte {at} ({} bytes vs {})",
                    names[0],
                    bytes.len(),
                    reference.len()
                ));
            }
        }
        println!(
            "{input}: {} implementations, {} bytes{}",
            names.len(),
            reference.len(),
            if disagreements.is_empty() { ", identical" } else { "" }
        );
    }
    if disagreements.is_empty() {
        println!("all {} implementations agree: {}", names.len(), names.join(", "));
        Ok(())
    } else {
        Err(disagreements.join("\n"))
    }
}

/// The offset of the first byte where `a` and `b` differ, if they do.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i),
        None if a.len() != b.len() => Some(a.len().min(b.len())),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_located() {
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(first_difference(b"abc", b"abd"), Some(2));
        assert_eq!(first_difference(b"abc", b"ab"), Some(2));
    }
}
