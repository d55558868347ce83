//! A YAML tree that remembers where every node came from, so that every
//! later error can point at the file, line and column it is about.

use crate::workflow::diag::{Diagnostic, Pos, Span};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML node and its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts (and, for scalars, how wide it is).
    pub span: Span,
    /// What it is.
    pub kind: Kind,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar and whether it was quoted (a quoted `"1"` is a string, a
    /// plain `1` is a number; a plain empty scalar is null).
    Scalar {
        /// The scalar's text, unescaped.
        text: String,
        /// True for plain (unquoted, non-block) scalars.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping in file order. Keys are scalars; duplicates are rejected.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for a plain empty scalar or `~`/`null`.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true } if text.is_empty() || text == "~" || text == "null")
    }

    /// A word for the kind of node, for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "nothing",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// Parses one YAML document. An empty file is an empty mapping.
pub fn parse(text: &str) -> Result<Node, Diagnostic> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| {
        let m = e.marker();
        Diagnostic::at(Span::new(pos(m), 1), format!("invalid YAML: {}", e.info()))
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root.unwrap_or(Node {
        span: Span::new(Pos { line: 1, col: 1 }, 1),
        kind: Kind::Map(Vec::new()),
    }))
}

/// yaml-rust2 markers count lines from 1 and columns from 0, in characters.
fn pos(m: &Marker) -> Pos {
    Pos {
        line: m.line(),
        col: m.col() + 1,
    }
}

enum Frame {
    Seq(Span, usize, Vec<Node>),
    Map(Span, usize, Vec<(Node, Node)>, Option<Node>),
}

/// The most nodes a document may expand to: each alias copies its anchor,
/// so a few hundred bytes of nested aliases could otherwise ask for
/// gigabytes ("billion laughs").
const MAX_NODES: usize = 1_000_000;

#[derive(Default)]
struct Builder {
    nodes: usize,
    stack: Vec<Frame>,
    anchors: Vec<(usize, Node)>,
    root: Option<Node>,
    error: Option<Diagnostic>,
}

impl Builder {
    fn push(&mut self, node: Node, anchor: usize) {
        self.nodes += 1;
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key)) => match key.take() {
                None => {
                    if !matches!(node.kind, Kind::Scalar { .. }) {
                        self.fail(
                            Diagnostic::at(node.span, "mapping keys must be plain names")
                                .expected("a scalar key"),
                        );
                    } else if let Some((first, _)) =
                        entries.iter().find(|(k, _)| k.as_str() == node.as_str())
                    {
                        let d = Diagnostic::at(
                            node.span,
                            format!("duplicate key `{}`", node.as_str().unwrap_or_default()),
                        )
                        .help(format!("first defined at line {}", first.span.start.line));
                        self.fail(d);
                    } else {
                        *key = Some(node);
                    }
                }
                Some(k) => entries.push((k, node)),
            },
        }
    }

    fn fail(&mut self, d: Diagnostic) {
        self.error.get_or_insert(d);
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let at = pos(&mark);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = matches!(
                    style,
                    TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted
                );
                let len = text.chars().count() + if quoted { 2 } else { 0 };
                let node = Node {
                    span: Span::new(at, len),
                    kind: Kind::Scalar {
                        text,
                        plain: style == TScalarStyle::Plain,
                    },
                };
                self.push(node, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack
                    .push(Frame::Seq(Span::new(at, 1), anchor, Vec::new()))
            }
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Frame::Map(Span::new(at, 1), anchor, Vec::new(), None))
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(span, anchor, items)) = self.stack.pop() {
                    self.push(
                        Node {
                            span,
                            kind: Kind::Seq(items),
                        },
                        anchor,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(span, anchor, entries, _)) = self.stack.pop() {
                    self.push(
                        Node {
                            span,
                            kind: Kind::Map(entries),
                        },
                        anchor,
                    );
                }
            }
            Event::Alias(id) => match self.anchors.iter().rev().find(|(a, _)| *a == id) {
                Some((_, node)) if self.nodes.saturating_add(size(node)) > MAX_NODES => {
                    self.fail(
                        Diagnostic::at(
                            Span::new(at, 1),
                            "aliases expand this document past its size limit",
                        )
                        .expected(format!("at most {MAX_NODES} nodes after expanding aliases")),
                    );
                }
                Some((_, node)) => {
                    self.nodes += size(node);
                    let node = Node {
                        span: Span::new(at, 1),
                        kind: node.kind.clone(),
                    };
                    self.push(node, 0);
                }
                None => self.fail(Diagnostic::at(
                    Span::new(at, 1),
                    "alias to an unknown anchor",
                )),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Nodes in a tree.
fn size(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::Scalar { .. } => 0,
        Kind::Seq(items) => items.iter().map(size).sum(),
        Kind::Map(entries) => entries.iter().map(|(k, v)| size(k) + size(v)).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let n = parse("name: x\njobs:\n  a:\n    uses: a.wasm\n").unwrap();
        let Kind::Map(top) = &n.kind else { panic!() };
        let (k, v) = &top[1];
        assert_eq!(k.as_str(), Some("jobs"));
        assert_eq!(k.span.start, Pos { line: 2, col: 1 });
        let Kind::Map(jobs) = &v.kind else { panic!() };
        let Kind::Map(a) = &jobs[0].1.kind else {
            panic!()
        };
        assert_eq!(a[0].1.span.start, Pos { line: 4, col: 11 });
        assert_eq!(a[0].1.span.len, 6);
    }

    #[test]
    fn quoted_scalars_are_not_plain() {
        let n = parse("a: '1'\nb: 1\nc:\n").unwrap();
        let Kind::Map(m) = &n.kind else { panic!() };
        assert!(matches!(&m[0].1.kind, Kind::Scalar { plain: false, .. }));
        assert!(matches!(&m[1].1.kind, Kind::Scalar { plain: true, .. }));
        assert!(m[2].1.is_null());
    }

    #[test]
    fn syntax_errors_and_duplicates_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{e:?}");
        assert!(e.span.is_some());
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.message, "duplicate key `a`");
        assert_eq!(e.span.unwrap().start, Pos { line: 3, col: 1 });
    }

    #[test]
    fn alias_bombs_are_refused_quickly() {
        // Found by fuzzing: each level multiplies the document by ten.
        let mut text = String::from("a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 1..9 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(",")));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("past its size limit"), "{e:?}");
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let n = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        let Kind::Map(m) = &n.kind else { panic!() };
        assert_eq!(m[0].1.kind, m[1].1.kind);
    }
}
