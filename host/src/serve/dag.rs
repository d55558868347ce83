//! The DAG picture: a layered drawing of a run's (or a plan's) jobs as SVG,
//! drawn by the server, the same for the web view's run page and
//! `cairn plan --format svg`. Pure: names, dependencies and states in,
//! SVG text out.
//!
//! Jobs are laid out left to right in layers (a job one layer right of the
//! last job it needs); the instances of a matrix job are drawn together in
//! one box, as small nodes, or as a grid of cells when there are many, so a
//! run of 10,000 jobs still fits on a screen. Every job has its own node,
//! with the id `n<job id>` and the class `s-<state>`, so a page can recolour
//! it as the run goes on. Edges join boxes, not each pair of instances.

use petgraph::algo::toposort;
use petgraph::graphmap::DiGraphMap;
use std::collections::HashMap;
use std::fmt::Write;

/// One job to draw.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    /// Its name: the job's key, plus `[…]` matrix values for an instance.
    pub name: &'a str,
    /// Positions (in the slice given to [`svg`]) of the jobs it needs; each
    /// before it.
    pub deps: &'a [usize],
    /// Its state, a CSS class word (`executed`, `cached`, `running`, …).
    pub state: &'a str,
    /// What to write under its name (`done 1.2s`, `cached`).
    pub note: String,
}

/// The colours of the states, shared by the standalone SVG and the web
/// view's stylesheet, so both draw alike.
pub const STYLE: &str = "\
svg.dag { font: 12px system-ui, -apple-system, 'Segoe UI', sans-serif; }
svg.dag .n rect, svg.dag rect.c { fill: #f2f2f2; stroke: #9a9a9a; stroke-width: 1.2; }
svg.dag .n { cursor: pointer; }
svg.dag rect.c { stroke-width: 0.6; cursor: pointer; }
svg.dag .t { fill: #1d1d1f; font-weight: 600; }
svg.dag .d { fill: #555; font-size: 11px; }
svg.dag .gb { fill: #fafafa; stroke: #b8b8b8; stroke-dasharray: 4 3; }
svg.dag .gt { fill: #444; font-weight: 600; }
svg.dag .e { fill: none; stroke: #8a8a8a; stroke-width: 1.2; }
svg.dag .ah { fill: #8a8a8a; }
svg.dag .s-executed rect, svg.dag rect.s-executed { fill: #dcf3e4; stroke: #2e9e5b; }
svg.dag .s-cached rect, svg.dag rect.s-cached { fill: #dcebf8; stroke: #2b7bb9; }
svg.dag .s-failed rect, svg.dag rect.s-failed { fill: #fbe1e1; stroke: #c93c3c; stroke-width: 1.8; }
svg.dag .s-running rect, svg.dag rect.s-running { fill: #fff1c9; stroke: #d99a00; stroke-width: 1.8; }
svg.dag .s-queued rect, svg.dag rect.s-queued { fill: #fbf6e6; stroke: #c9b57a; }
svg.dag .s-skipped rect, svg.dag rect.s-skipped,
svg.dag .s-not-run rect, svg.dag rect.s-not-run,
svg.dag .s-interrupted rect, svg.dag rect.s-interrupted { fill: #ececec; stroke: #777; stroke-dasharray: 3 2; }
svg.dag .s-runs rect, svg.dag rect.s-runs { fill: #ffe4c4; stroke: #e07b00; }
svg.dag .s-waits rect, svg.dag rect.s-waits { fill: #f2f2f2; stroke: #aaa; }
";

const NODE_W: i64 = 168;
const NODE_H: i64 = 38;
const MEMBER_H: i64 = 26;
const PAD: i64 = 8;
const HEAD: i64 = 24;
const CELL: i64 = 10;
const LAYER_GAP: i64 = 56;
const COLUMN_GAP: i64 = 20;
const ROW_GAP: i64 = 14;
const MARGIN: i64 = 12;
/// More edges than this are drawn as one path, without arrow heads.
const MANY_EDGES: usize = 500;
/// A matrix of more instances than this is drawn as a grid of cells.
const SMALL_MATRIX: usize = 24;
/// Boxes in one column before a layer wraps into another, at least: a
/// layer of many independent jobs becomes a block, not a tower.
const COLUMN_BOXES: usize = 40;

/// How one box (a job, or all instances of a matrix job) is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Single,
    Members,
    Cells { cols: i64 },
}

struct Group {
    key: String,
    members: Vec<usize>,
    deps: Vec<usize>,
    kind: Kind,
    w: i64,
    h: i64,
    x: i64,
    y: i64,
}

/// The job's key: its name without matrix values.
pub fn group_key(name: &str) -> &str {
    name.split_once('[').map_or(name, |(k, _)| k)
}

/// Draws the jobs as a standalone SVG document (its colours inside it).
pub fn svg(nodes: &[Node<'_>]) -> String {
    draw(nodes, true)
}

/// Draws the jobs as an SVG element for a page whose stylesheet holds
/// [`STYLE`].
pub fn svg_inline(nodes: &[Node<'_>]) -> String {
    draw(nodes, false)
}

fn draw(nodes: &[Node<'_>], standalone: bool) -> String {
    let mut groups = group(nodes);
    let columns = place(&mut groups);
    let width = columns.iter().map(|c| c.x + c.w).max().unwrap_or(0) + MARGIN;
    let height = groups.iter().map(|g| g.y + g.h).max().unwrap_or(0) + MARGIN;
    let (width, height) = (width.max(2 * MARGIN), height.max(2 * MARGIN));

    // About 120 bytes a job: reserve once rather than grow a 1 MB string.
    let mut out = String::with_capacity(512 + nodes.len() * 120);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="the DAG of {} jobs">"#,
        nodes.len()
    );
    if standalone {
        let _ = write!(out, "<style>{STYLE}</style>");
    }
    out.push_str(r#"<defs><marker id="ah" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path class="ah" d="M0,0L8,4L0,8z"/></marker></defs>"#);
    out.push_str(r#"<g class="edges">"#);
    // Many edges are one path of many curves: an element and an arrow
    // head each would make a big graph slow to draw (edges always run
    // left to right, so the heads say little there).
    let edges: usize = groups.iter().map(|g| g.deps.len()).sum();
    let one_path = edges > MANY_EDGES;
    if one_path {
        out.push_str(r#"<path class="e" d=""#);
    }
    for g in &groups {
        for &d in &g.deps {
            let s = &groups[d];
            let (x1, y1) = (s.x + s.w, s.y + s.h / 2);
            let (x2, y2) = (g.x, g.y + g.h / 2);
            let mid = (x2 - x1).max(20) / 2;
            let curve = format!("M{x1},{y1}C{},{y1} {},{y2} {x2},{y2}", x1 + mid, x2 - mid);
            if one_path {
                out.push_str(&curve);
            } else {
                let _ = write!(
                    out,
                    r#"<path class="e" marker-end="url(#ah)" d="{curve}"/>"#
                );
            }
        }
    }
    if one_path {
        out.push_str(r#""/>"#);
    }
    out.push_str("</g>");
    for g in &groups {
        match g.kind {
            Kind::Single => {
                let i = g.members[0];
                node(
                    &mut out,
                    i,
                    &nodes[i],
                    g.x,
                    g.y,
                    NODE_W,
                    NODE_H,
                    nodes[i].name,
                );
            }
            Kind::Members | Kind::Cells { .. } => {
                let _ = write!(
                    out,
                    r#"<g class="g"><rect class="gb" x="{}" y="{}" width="{}" height="{}" rx="7"/><text class="gt" x="{}" y="{}">{} ×{}</text>"#,
                    g.x,
                    g.y,
                    g.w,
                    g.h,
                    g.x + PAD,
                    g.y + 16,
                    escape(&clip(&g.key, 18)),
                    g.members.len()
                );
                for (k, &i) in g.members.iter().enumerate() {
                    let n = &nodes[i];
                    if let Kind::Cells { cols } = g.kind {
                        let (r, c) = (k as i64 / cols, k as i64 % cols);
                        let _ = write!(
                            out,
                            r#"<rect class="c s-{}" id="n{i}" x="{}" y="{}" width="{}" height="{}"><title>{}
{}</title></rect>"#,
                            class(n.state),
                            g.x + PAD + c * CELL,
                            g.y + HEAD + r * CELL,
                            CELL - 1,
                            CELL - 1,
                            escape(n.name),
                            escape(&n.note)
                        );
                    } else {
                        let label = n
                            .name
                            .split_once('[')
                            .map_or(n.name, |(_, v)| v.trim_end_matches(']'));
                        let y = g.y + HEAD + k as i64 * (MEMBER_H + 4);
                        node(&mut out, i, n, g.x + PAD, y, g.w - 2 * PAD, MEMBER_H, label);
                    }
                }
                out.push_str("</g>");
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// One job's node: a box with its name and note, and a title (name, then
/// note) for hover and for finding the job from the drawing.
#[allow(clippy::too_many_arguments)]
fn node(out: &mut String, i: usize, n: &Node<'_>, x: i64, y: i64, w: i64, h: i64, label: &str) {
    let chars = ((w - 14) / 7).max(4) as usize;
    let _ = write!(
        out,
        r#"<g class="n s-{}" id="n{i}"><title>{}
{}</title><rect x="{x}" y="{y}" width="{w}" height="{h}" rx="5"/>"#,
        class(n.state),
        escape(n.name),
        escape(&n.note)
    );
    if h >= NODE_H {
        let _ = write!(
            out,
            r#"<text class="t" x="{}" y="{}">{}</text><text class="d" x="{}" y="{}">{}</text></g>"#,
            x + 8,
            y + 16,
            escape(&clip(label, chars)),
            x + 8,
            y + 31,
            escape(&clip(&n.note, chars + 2))
        );
    } else {
        let _ = write!(
            out,
            r#"<text class="t" x="{}" y="{}">{}</text><text class="d" x="{}" y="{}" text-anchor="end">{}</text></g>"#,
            x + 7,
            y + 17,
            escape(&clip(label, chars / 2)),
            x + w - 7,
            y + 17,
            escape(&clip(&n.note, chars / 2))
        );
    }
}

/// A state as a CSS class word: `not run` becomes `not-run`.
pub fn class(state: &str) -> String {
    state
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Text made safe inside XML and HTML (elements and quoted attributes).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Jobs into boxes: one per job key, in order of first appearance, with
/// the boxes each needs.
fn group(nodes: &[Node<'_>]) -> Vec<Group> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut of = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let key = group_key(n.name);
        let g = *index.entry(key).or_insert_with(|| {
            groups.push(Group {
                key: key.to_string(),
                members: Vec::new(),
                deps: Vec::new(),
                kind: Kind::Single,
                w: 0,
                h: 0,
                x: 0,
                y: 0,
            });
            groups.len() - 1
        });
        groups[g].members.push(i);
        of.push(g);
    }
    for (i, n) in nodes.iter().enumerate() {
        let g = of[i];
        for &d in n.deps {
            if let Some(&dg) = of.get(d)
                && dg != g
                && !groups[g].deps.contains(&dg)
            {
                groups[g].deps.push(dg);
            }
        }
    }
    for g in &mut groups {
        let k = g.members.len();
        let matrix = k > 1 || nodes[g.members[0]].name.contains('[');
        (g.kind, g.w, g.h) = if !matrix {
            (Kind::Single, NODE_W, NODE_H)
        } else if k <= SMALL_MATRIX {
            let h = HEAD + k as i64 * (MEMBER_H + 4) + PAD - 4;
            (Kind::Members, NODE_W + 2 * PAD, h)
        } else {
            // Roughly square, but never narrower than a node.
            let cols = ((k as f64).sqrt().ceil() as i64).max(NODE_W / CELL);
            let rows = (k as i64 + cols - 1) / cols;
            (
                Kind::Cells { cols },
                cols * CELL + 2 * PAD,
                HEAD + rows * CELL + PAD,
            )
        };
    }
    groups
}

/// One column of boxes: its left edge and width.
struct Column {
    x: i64,
    w: i64,
}

/// Gives every box its place: layers by longest path, boxes in a layer
/// ordered by where the boxes they need are (barycentres), long layers
/// wrapped into several columns, each column centred vertically.
fn place(groups: &mut [Group]) -> Vec<Column> {
    let n = groups.len();
    let mut graph = DiGraphMap::<usize, ()>::with_capacity(n, n);
    for (g, group) in groups.iter().enumerate() {
        graph.add_node(g);
        for &d in &group.deps {
            graph.add_edge(d, g, ());
        }
    }
    let mut layer = vec![0usize; n];
    // Records always hold a DAG; a cycle (a damaged record) draws flat.
    if let Ok(order) = toposort(&graph, None) {
        for g in order {
            layer[g] = groups[g]
                .deps
                .iter()
                .map(|&d| layer[d] + 1)
                .max()
                .unwrap_or(0);
        }
    }
    let layers = layer.iter().max().map_or(0, |m| m + 1);
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for g in 0..n {
        by_layer[layer[g]].push(g);
    }
    // Barycentre ordering: each box goes where the boxes it needs are, on
    // average, so edges cross less. Two sweeps settle most graphs.
    let mut pos = vec![0f64; n];
    for l in &by_layer {
        for (i, &g) in l.iter().enumerate() {
            pos[g] = i as f64 / l.len().max(1) as f64;
        }
    }
    for _ in 0..2 {
        for l in by_layer.iter_mut().skip(1) {
            let key = |g: &usize| {
                let deps = &groups[*g].deps;
                if deps.is_empty() {
                    pos[*g]
                } else {
                    deps.iter().map(|&d| pos[d]).sum::<f64>() / deps.len() as f64
                }
            };
            let mut keyed: Vec<(f64, usize)> = l.iter().map(|g| (key(g), *g)).collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            *l = keyed.into_iter().map(|(_, g)| g).collect();
            for (i, &g) in l.iter().enumerate() {
                pos[g] = i as f64 / l.len().max(1) as f64;
            }
        }
    }
    let mut columns = Vec::new();
    let mut x = MARGIN;
    let mut stacks: Vec<(Vec<usize>, i64)> = Vec::new();
    // Twice the side of a square of all the boxes: layers of a balanced
    // graph stay whole, one huge layer wraps into a block.
    let per_column = COLUMN_BOXES.max(2 * (n as f64).sqrt().ceil() as usize);
    for l in &by_layer {
        for (c, chunk) in l.chunks(per_column).enumerate() {
            let w = chunk.iter().map(|&g| groups[g].w).max().unwrap_or(0);
            if c > 0 {
                x += COLUMN_GAP - LAYER_GAP;
            }
            let mut y = 0;
            for &g in chunk {
                groups[g].x = x;
                groups[g].y = y;
                y += groups[g].h + ROW_GAP;
            }
            stacks.push((chunk.to_vec(), y - ROW_GAP));
            columns.push(Column { x, w });
            x += w + LAYER_GAP;
        }
    }
    let tallest = stacks.iter().map(|s| s.1).max().unwrap_or(0);
    for (stack, h) in &stacks {
        let shift = MARGIN + (tallest - h) / 2;
        for &g in stack {
            groups[g].y += shift;
        }
    }
    columns
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes<'a>(spec: &'a [(&'a str, &'a [usize])]) -> Vec<Node<'a>> {
        spec.iter()
            .map(|(name, deps)| Node {
                name,
                deps,
                state: "executed",
                note: "done".into(),
            })
            .collect()
    }

    fn ids(svg: &str) -> Vec<usize> {
        svg.match_indices(r#"id="n"#)
            .map(|(i, _)| {
                let rest = &svg[i + 5..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn every_job_has_a_node_and_matrices_share_a_box() {
        let spec: &[(&str, &[usize])] = &[
            ("split", &[]),
            ("count[part=0]", &[0]),
            ("count[part=1]", &[0]),
            ("merge", &[1, 2]),
        ];
        let svg = svg(&nodes(spec));
        assert_eq!(ids(&svg), [0, 1, 2, 3]);
        assert_eq!(svg.matches(r#"class="gb""#).count(), 1);
        assert!(svg.contains("count ×2"));
        // split → count, count → merge: one edge per pair of boxes.
        assert_eq!(svg.matches(r#"class="e""#).count(), 2);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn layers_go_left_to_right() {
        let spec: &[(&str, &[usize])] = &[("a", &[]), ("b", &[0]), ("c", &[1]), ("d", &[0])];
        let mut groups = group(&nodes(spec));
        place(&mut groups);
        assert!(groups[0].x < groups[1].x && groups[1].x < groups[2].x);
        assert_eq!(groups[1].x, groups[3].x, "b and d are both one step from a");
    }

    #[test]
    fn a_large_matrix_is_a_grid_of_cells() {
        let names: Vec<String> = (0..1000).map(|i| format!("w[i={i}]")).collect();
        let n: Vec<Node<'_>> = names
            .iter()
            .map(|name| Node {
                name,
                deps: &[],
                state: "cached",
                note: "cached".into(),
            })
            .collect();
        let svg = svg(&n);
        assert_eq!(svg.matches(r#"<rect class="c s-cached""#).count(), 1000);
        assert_eq!(ids(&svg).len(), 1000);
    }

    #[test]
    fn a_wide_layer_wraps_into_a_block() {
        let names: Vec<String> = (0..400).map(|i| format!("j{i}")).collect();
        let n: Vec<Node<'_>> = names
            .iter()
            .map(|name| Node {
                name,
                deps: &[],
                state: "executed",
                note: String::new(),
            })
            .collect();
        let mut groups = group(&n);
        let columns = place(&mut groups);
        assert_eq!(columns.len(), 10, "40 boxes a column");
        let tallest = groups.iter().map(|g| g.y + g.h).max().unwrap();
        assert!(tallest < 40 * (NODE_H + ROW_GAP) + 2 * MARGIN);
    }

    #[test]
    fn many_edges_are_one_path() {
        let names: Vec<String> = (0..1200).map(|i| format!("j{i}")).collect();
        let deps: Vec<Vec<usize>> = (0..1200)
            .map(|i| if i < 600 { vec![] } else { vec![i - 600] })
            .collect();
        let n: Vec<Node<'_>> = names
            .iter()
            .zip(&deps)
            .map(|(name, deps)| Node {
                name,
                deps,
                state: "executed",
                note: String::new(),
            })
            .collect();
        let svg = svg(&n);
        assert_eq!(svg.matches(r#"class="e""#).count(), 1);
        let d = svg.split(r#"class="e" d=""#).nth(1).unwrap();
        assert_eq!(d[..d.find('"').unwrap()].matches('M').count(), 600);
        assert_eq!(svg.matches(r#" id="n"#).count(), 1200);
    }

    #[test]
    fn names_are_escaped() {
        let spec: &[(&str, &[usize])] = &[("x[v=<b>&\"]", &[])];
        let svg = svg(&nodes(spec));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&lt;b&gt;&amp;&quot;"));
    }

    #[test]
    fn no_jobs_is_an_empty_picture() {
        let svg = svg(&[]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
