//! A job's metric as a line plot by step, drawn as SVG by the server (no
//! script, no external library). Pure.

use super::dag::escape;
use std::fmt::Write;

const W: f64 = 440.0;
const H: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;

/// A metric's points as (step, value), in step order; a metric reported
/// without steps is plotted by the order it was reported in.
pub fn plot(name: &str, points: &[(f64, f64)]) -> String {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (x0, x1) = span(pts.iter().map(|p| p.0));
    let (y0, y1) = span(pts.iter().map(|p| p.1));
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let sy = |y: f64| H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-metric="{}" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{} by step">"#,
        escape(name),
        escape(name)
    );
    // Axes, with ticks at the ends and the middle of each.
    let _ = write!(
        out,
        r#"<path class="axis" d="M{LEFT},{TOP}V{}H{}"/>"#,
        H - BOTTOM,
        W - RIGHT
    );
    for i in 0..=2 {
        let f = i as f64 / 2.0;
        let (x, y) = (x0 + f * (x1 - x0), y0 + f * (y1 - y0));
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            sx(x),
            H - BOTTOM + 16.0,
            number(x),
            LEFT - 6.0,
            sy(y) + 4.0,
            number(y)
        );
        let _ = write!(
            out,
            r#"<path class="grid" d="M{LEFT},{:.1}H{}"/>"#,
            sy(y),
            W - RIGHT
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis-label" x="{}" y="{}" text-anchor="end">step</text>"#,
        W - RIGHT,
        H - 2.0
    );
    let line: Vec<String> = pts
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="line" points="{}"/>"#,
        line.join(" ")
    );
    // Points are marked (and named on hover) while there are few.
    if pts.len() <= 200 {
        for &(x, y) in &pts {
            let _ = write!(
                out,
                r#"<circle class="pt" cx="{:.1}" cy="{:.1}" r="3"><title>step {}: {}</title></circle>"#,
                sx(x),
                sy(y),
                number(x),
                number(y)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// The range of the values, widened when it is a single value.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    }
}

/// A short, readable number: integers as they are, others to 4 significant digits.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 1e-3 && v.abs() < 1e6 {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_has_a_line_through_every_point() {
        let svg = plot("loss", &[(1.0, 0.5), (2.0, 0.25)]);
        assert!(svg.contains(r#"data-metric="loss""#));
        let points = svg.split(r#"points=""#).nth(1).unwrap();
        let points = &points[..points.find('"').unwrap()];
        assert_eq!(points.split(' ').count(), 2);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("step 2: 0.25"));
    }

    #[test]
    fn odd_values_do_not_break_it() {
        for pts in [
            vec![],
            vec![(0.0, 1.0)],
            vec![(0.0, f64::NAN), (1.0, f64::INFINITY)],
        ] {
            let svg = plot("m<&>", &pts);
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
            assert!(svg.contains("m&lt;&amp;&gt;"));
        }
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1.0 / 3.0), "0.3333");
        assert_eq!(number(1e-9), "1.000e-9");
    }
}
