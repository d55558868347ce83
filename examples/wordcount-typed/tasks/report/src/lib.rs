//! `report(counts, top)`: a table of the `top` most frequent words in the
//! artifact `counts` (`word\tcount` lines, as `merge` returns them), with
//! each word's rank, count and share of all words, under a header line such
//! as `top 10 of 1234 distinct words (56789 total)`. The job's output `out`
//! is the table, a string.
//!
//! The same table as the command example's (`examples/wordcount/tasks/
//! report`): ties are broken by word, and percentages use integer
//! arithmetic, so the output depends only on the input. `top` 0 gives the
//! header alone.

use std::fmt::Write as _;

use cairn_sdk::{Artifact, ArtifactHandle, info};

mod bindings {
    wit_bindgen::generate!({
        // Cairn's `wit/` first, then this task's own `wit/`.
        path: ["../../../../wit", "wit"],
        world: "example:wordcount-report/report",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
    });
}

struct Report;

impl bindings::Guest for Report {
    fn report(counts: &ArtifactHandle, top: u32) -> String {
        // The export returns a plain string: bad input traps, with the
        // reason in the log.
        let text = match Artifact::borrowed(counts).read_string() {
            Ok(text) => text,
            Err(e) => panic!("{e}"),
        };
        match report(&text, top as usize) {
            Ok(table) => {
                info!("reported the top {top} words");
                table
            }
            Err(e) => panic!("{e}"),
        }
    }
}

bindings::export!(Report with_types_in bindings);

/// The table of the `top` most frequent words in `text`.
fn report(text: &str, top: usize) -> Result<String, String> {
    let mut counts = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let parsed = line
            .split_once('\t')
            .filter(|(word, _)| !word.is_empty())
            .and_then(|(word, count)| Some((word, count.parse::<u64>().ok()?)));
        let entry = parsed.ok_or_else(|| format!("line {}: malformed {line:?}", number + 1))?;
        counts.push(entry);
    }
    counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let total: u64 = counts.iter().map(|&(_, count)| count).sum();
    Ok(table(&counts[..top.min(counts.len())], counts.len(), total))
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

    #[test]
    fn prints_top_words_with_percentages() {
        let table = report("the\t6\nand\t3\ncairn\t1\n", 2).unwrap();
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
        let table = report("b\t1\nlongerword\t2\na\t1\n", 10).unwrap();
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
    fn empty_counts_and_top_zero() {
        let header = "top 0 of 0 distinct words (0 total)\nrank  word  count  percent\n";
        assert_eq!(report("", 3).unwrap(), header);
        let table = report("a\t1\n", 0).unwrap();
        assert!(table.starts_with("top 0 of 1 distinct words (1 total)\n"));
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(report("word 3\n", 1).is_err());
        assert!(report("\t3\n", 1).is_err());
    }
}
