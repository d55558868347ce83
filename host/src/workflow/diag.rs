//! Diagnostics for workflow files: a position, what was found, what was
//! expected, rendered with the source line and a caret under the spot.

use std::fmt;
use std::sync::Arc;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Line, starting at 1.
    pub line: usize,
    /// Column in characters, starting at 1.
    pub col: usize,
}

/// A region of one line: where a diagnostic points and how wide its caret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First character.
    pub start: Pos,
    /// Width in characters (at least 1 when rendered).
    pub len: usize,
}

impl Span {
    /// A span of `len` characters starting at `start`.
    pub fn new(start: Pos, len: usize) -> Self {
        Span { start, len }
    }

    /// The sub-span `offset` characters into this one, `len` wide. Only
    /// meaningful for single-line spans, which is what scalars give us.
    pub fn slice(self, offset: usize, len: usize) -> Self {
        Span {
            start: Pos {
                line: self.start.line,
                col: self.start.col + offset,
            },
            len,
        }
    }
}

/// A source file kept beside its diagnostics so they can quote it.
#[derive(Debug, Clone)]
pub struct Source {
    /// The name shown to the user (the path as given).
    pub name: String,
    /// The whole text.
    pub text: Arc<str>,
}

impl Source {
    /// Wraps a file's name and text.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }

    fn line(&self, line: usize) -> Option<&str> {
        self.text.lines().nth(line.checked_sub(1)?)
    }
}

/// One problem found in a workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where it is; `None` for problems that are not in the file (a bad
    /// `--param` on the command line).
    pub span: Option<Span>,
    /// What is wrong.
    pub message: String,
    /// What would have been right, shown under the caret.
    pub expected: Option<String>,
    /// A hint, such as a "did you mean".
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem at `span`.
    pub fn at(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            span: Some(span),
            message: message.into(),
            expected: None,
            help: None,
        }
    }

    /// A problem with no position in the file.
    pub fn global(message: impl Into<String>) -> Self {
        Diagnostic {
            span: None,
            message: message.into(),
            expected: None,
            help: None,
        }
    }

    /// Says what was expected.
    pub fn expected(mut self, what: impl Into<String>) -> Self {
        self.expected = Some(what.into());
        self
    }

    /// Adds a hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds "did you mean `x`?" when one of `candidates` is close to `found`.
    pub fn suggest<'a>(self, found: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match did_you_mean(found, candidates) {
            Some(best) => self.help(format!("did you mean `{best}`?")),
            None => self,
        }
    }
}

/// Every problem found in one file, in file order.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    /// The file they are about.
    pub source: Source,
    /// The problems; never empty.
    pub items: Vec<Diagnostic>,
}

impl std::error::Error for Diagnostics {}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            render(f, &self.source, d)?;
        }
        let n = self.items.len();
        if n > 1 {
            write!(f, "\n{n} errors in {}", self.source.name)?;
        }
        Ok(())
    }
}

fn render(f: &mut fmt::Formatter<'_>, src: &Source, d: &Diagnostic) -> fmt::Result {
    writeln!(f, "error: {}", d.message)?;
    match d.span {
        Some(span) => {
            let Pos { line, col } = span.start;
            writeln!(f, "  --> {}:{line}:{col}", src.name)?;
            let gutter = line.to_string().len();
            let (text, col, len) = window(src.line(line).unwrap_or(""), col, span.len);
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{line} | {text}")?;
            let pad: String = text
                .chars()
                .take(col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let carets = "^".repeat(len.max(1));
            match &d.expected {
                Some(e) => writeln!(f, "{:gutter$} | {pad}{carets} expected {e}", "")?,
                None => writeln!(f, "{:gutter$} | {pad}{carets}", "")?,
            }
        }
        None => {
            writeln!(f, "  --> {}", src.name)?;
            if let Some(e) = &d.expected {
                writeln!(f, "   = expected {e}")?;
            }
        }
    }
    if let Some(h) = &d.help {
        writeln!(f, "   = help: {h}")?;
    }
    Ok(())
}

/// At most this many characters of a source line are shown.
const SHOWN: usize = 160;

/// The part of a long line around columns `col..col + len` (1-based,
/// characters), with `…` where it was cut, and the span's place in it: a
/// generated or hostile file may have lines of megabytes.
fn window(text: &str, col: usize, len: usize) -> (String, usize, usize) {
    let chars = text.chars().count();
    if chars <= SHOWN {
        return (text.to_string(), col, len);
    }
    let len = len.clamp(1, SHOWN / 2);
    let start = col
        .saturating_sub(1 + SHOWN / 4)
        .min(chars.saturating_sub(SHOWN));
    let mut shown: String = text.chars().skip(start).take(SHOWN).collect();
    let mut col = col - start;
    if start > 0 {
        shown.insert(0, '…');
        col += 1;
    }
    if start + SHOWN < chars {
        shown.push('…');
    }
    (shown, col, len)
}

/// The candidate closest to `found` by edit distance, if it is close enough
/// to be a plausible typo.
pub fn did_you_mean<'a>(
    found: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(found, c), c))
        .filter(|(d, c)| *d <= (found.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent
/// transpositions, the most common typo (`uess` for `uses`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_line_is_shown_around_its_span() {
        let line: String = "[".repeat(100_000);
        let (shown, col, len) = super::window(&line, 50_000, 1);
        assert_eq!(shown.chars().count(), super::SHOWN + 2);
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(col, super::SHOWN / 4 + 2);
        assert_eq!(len, 1);
        let (shown, col, _) = super::window(&line, 3, 1);
        assert_eq!((shown.chars().count(), col), (super::SHOWN + 1, 3));
        let (shown, col, _) = super::window(&line, 100_000, 1);
        assert!(shown.starts_with('…') && !shown.ends_with('…'));
        assert_eq!(shown.chars().nth(col - 1), Some('['));
        assert_eq!(super::window("short", 2, 3), ("short".to_string(), 2, 3));
    }

    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("uess", ["uses", "needs", "args"]),
            Some("uses")
        );
        assert_eq!(
            did_you_mean("outptus", ["outputs", "inputs"]),
            Some("outputs")
        );
        assert_eq!(did_you_mean("zzz", ["uses", "needs"]), None);
    }

    #[test]
    fn renders_position_caret_and_expectation() {
        let src = Source::new("wf.yaml", "jobs:\n  a:\n    uess: x.wasm\n");
        let d = Diagnostic::at(Span::new(Pos { line: 3, col: 5 }, 4), "unknown key `uess`")
            .expected("one of: uses, needs")
            .suggest("uess", ["uses", "needs"]);
        let text = Diagnostics {
            source: src,
            items: vec![d],
        }
        .to_string();
        assert!(text.contains("--> wf.yaml:3:5"), "{text}");
        assert!(text.contains("3 |     uess: x.wasm"), "{text}");
        assert!(
            text.contains("  |     ^^^^ expected one of: uses, needs"),
            "{text}"
        );
        assert!(text.contains("did you mean `uses`?"), "{text}");
    }
}
