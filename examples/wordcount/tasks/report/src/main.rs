//! `report --top N`: print to stdout a table of the N most frequent words in
//! `/in/counts` (`word\tcount` lines, as written by `merge`), with each
//! word's rank, count and share of all words, under a header line such as
//! `top 10 of 1234 distinct words (56789 total)`.
//!
//! Ties are broken by word, and percentages use integer arithmetic, so the
//! output depends only on the input.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(Path::new("/in"), Path::new("/out"), &args) {
        Ok(table) => print!("{table}"),
        Err(message) => {
            eprintln!("report: {message}");
            std::process::exit(1);
        }
    }
}

/// Returns the report rather than printing it, so tests can check it; `main`
/// prints it. The task has no file outputs, so `out_dir` is unused.
fn run(in_dir: &Path, _out_dir: &Path, args: &[String]) -> Result<String, String> {
    let top = parse_args(args)?;
    let input = in_dir.join("counts");
    let text =
        fs::read_to_string(&input).map_err(|e| format!("reading {}: {e}", input.display()))?;

    let mut counts = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let parsed = line
            .split_once('\t')
            .filter(|(word, _)| !word.is_empty())
            .and_then(|(word, count)| Some((word, count.parse::<u64>().ok()?)));
        let entry = parsed.ok_or_else(|| {
            format!(
                "{}:{}: malformed line {line:?}",
                input.display(),
                number + 1
            )
        })?;
        counts.push(entry);
    }
    counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let total: u64 = counts.iter().map(|&(_, count)| count).sum();
    Ok(table(&counts[..top.min(counts.len())], counts.len(), total))
}

fn parse_args(args: &[String]) -> Result<usize, String> {
    match args {
        [flag, n] if flag == "--top" => match n.parse::<usize>() {
            Ok(top) if top > 0 => Ok(top),
            _ => Err(format!("--top needs a positive integer, got {n:?}")),
        },
        _ => Err(format!("usage: report --top N (got {args:?})")),
    }
}

fn table(rows: &[(&str, u64)], distinct: usize, total: u64) -> String {
    let rank_width = rows.len().to_string().len().max("rank".len());
    let word_width = rows
        .iter()
        .map(|(w, _)| w.len())
        .max()
        .unwrap_or(0)
        .max("word".len());
    let count_width = rows
        .iter()
        .map(|(_, c)| c.to_string().len())
        .max()
        .unwrap_or(0);
    let count_width = count_width.max("count".len());

    let mut out = format!(
        "top {} of {distinct} distinct words ({total} total)\n",
        rows.len()
    );
    let _ = writeln!(
        out,
        "{:>rank_width$}  {:<word_width$}  {:>count_width$}  {:>7}",
        "rank", "word", "count", "percent"
    );
    for (i, &(word, count)) in rows.iter().enumerate() {
        // Hundredths of a percent, rounded half up; `total > 0` when rows exist.
        let hundredths = (u128::from(count) * 10_000 + u128::from(total) / 2) / u128::from(total);
        let percent = format!("{}.{:02}%", hundredths / 100, hundredths % 100);
        let _ = writeln!(
            out,
            "{:>rank_width$}  {word:<word_width$}  {count:>count_width$}  {percent:>7}",
            i + 1
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh `<tmp>/…/{in,out}` pair for one test.
    fn sandbox(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "wordcount-report-test-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("in")).unwrap();
        fs::create_dir_all(root.join("out")).unwrap();
        root
    }

    fn report(name: &str, counts: &str, args: &[&str]) -> Result<String, String> {
        let root = sandbox(name);
        fs::write(root.join("in/counts"), counts).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let result = run(&root.join("in"), &root.join("out"), &args);
        fs::remove_dir_all(&root).unwrap();
        result
    }

    #[test]
    fn prints_top_words_with_percentages() {
        let counts = "the\t6\nand\t3\ncairn\t1\n";
        let table = report("top", counts, &["--top", "2"]).unwrap();
        assert_eq!(
            table,
            "top 2 of 3 distinct words (10 total)\n\
             rank  word  count  percent\n   \
                1  the       6   60.00%\n   \
                2  and       3   30.00%\n"
        );
    }

    #[test]
    fn sorts_unsorted_input_and_caps_at_distinct() {
        let counts = "b\t1\nlongerword\t2\na\t1\n";
        let table = report("cap", counts, &["--top", "10"]).unwrap();
        assert_eq!(
            table,
            "top 3 of 3 distinct words (4 total)\n\
             rank  word        count  percent\n   \
                1  longerword      2   50.00%\n   \
                2  a               1   25.00%\n   \
                3  b               1   25.00%\n"
        );
    }

    #[test]
    fn rounds_percentages() {
        let table = report("round", "x\t1\ny\t2\n", &["--top", "2"]).unwrap();
        assert!(
            table.contains("66.67%") && table.contains("33.33%"),
            "{table}"
        );
    }

    #[test]
    fn empty_counts() {
        let table = report("empty", "", &["--top", "3"]).unwrap();
        assert_eq!(
            table,
            "top 0 of 0 distinct words (0 total)\nrank  word  count  percent\n"
        );
    }

    #[test]
    fn rejects_bad_input_and_arguments() {
        assert!(report("malformed", "word 3\n", &["--top", "1"]).is_err());
        assert!(report("no-top", "a\t1\n", &[]).is_err());
        assert!(report("zero", "a\t1\n", &["--top", "0"]).is_err());
    }
}
