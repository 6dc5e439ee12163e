//! The SVG chart: each workload's p99 against the data size, ours solid (on PostgreSQL dotted)
//! and Duende's dashed, on logarithmic axes.

use std::fmt::Write;
use std::path::Path;

use super::{thousands, Row};

const WIDTH: f64 = 1000.0;
/// The least height; more when the legend needs it.
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 640.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 470.0;
/// One colour per workload (thirteen are drawn).
const COLOURS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22", "#000000", "#6b8e23", "#ff1493",
];

/// One line: a workload's p99 (ms) at each size, for one side.
struct Series {
    name: String,
    colour: &'static str,
    /// The line's `stroke-dasharray`, if not solid.
    dashes: Option<&'static str>,
    points: Vec<(f64, f64)>,
}

/// Writes the chart of `rows` to `file`.
pub fn write_chart(file: &Path, rows: &[Row]) -> std::io::Result<()> {
    std::fs::write(file, render(rows))
}

fn render(rows: &[Row]) -> String {
    let mut keys: Vec<&'static str> = Vec::new();
    for r in rows {
        if r.charted && r.ours.p99_ms().is_some() && !keys.contains(&r.key) {
            keys.push(r.key);
        }
    }
    let mut series = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let of = |side: fn(&Row) -> Option<f64>| -> Vec<(f64, f64)> {
            rows.iter()
                .filter(|r| r.key == *key)
                .filter_map(|r| Some((r.size as f64, side(r)?)))
                .collect()
        };
        for (dashes, who, points) in [
            (None, "ours", of(|r| r.ours.p99_ms())),
            (
                Some("2 3"),
                "ours on PostgreSQL",
                of(|r| r.ours_postgres.p99_ms()),
            ),
            (Some("6 4"), "Duende", of(|r| r.incumbent.p99_ms())),
        ] {
            if !points.is_empty() {
                series.push(Series {
                    name: format!("{key}, {who}"),
                    colour,
                    dashes,
                    points,
                });
            }
        }
    }
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y.max(0.01));
        y1 = y1.max(y);
    }
    if series.is_empty() {
        (x0, x1, y0, y1) = (1.0, 10.0, 0.1, 1.0);
    }
    // Whole decades around the data.
    let (dx0, dx1) = (
        x0.log10().floor(),
        x1.log10().ceil().max(x0.log10().floor() + 1.0),
    );
    let (dy0, dy1) = (
        y0.log10().floor(),
        y1.log10().ceil().max(y0.log10().floor() + 1.0),
    );
    let px = |x: f64| LEFT + (x.log10() - dx0) / (dx1 - dx0) * (RIGHT - LEFT);
    let py = |y: f64| BOTTOM - (y.max(0.01).log10() - dy0) / (dy1 - dy0) * (BOTTOM - TOP);

    // Tall enough for the legend, one line per series.
    let height = HEIGHT.max(TOP + 30.0 + series.len() as f64 * 17.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="22" font-size="15">p99 latency through HTTP against sessions stored (make bench-http)</text>"#
    );
    for d in dx0 as i32..=dx1 as i32 {
        let x = px(10f64.powi(d));
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{BOTTOM}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            BOTTOM + 18.0,
            thousands(10usize.pow(d as u32))
        );
    }
    for d in dy0 as i32..=dy1 as i32 {
        let y = py(10f64.powi(d));
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{} ms</text>"##,
            LEFT - 6.0,
            y + 4.0,
            10f64.powi(d)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">sessions</text>"#,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 38.0
    );
    for (i, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let dash = s
            .dashes
            .map(|d| format!(r#" stroke-dasharray="{d}""#))
            .unwrap_or_default();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            points.join(" "),
            s.colour
        );
        for p in &s.points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                px(p.0),
                py(p.1),
                s.colour
            );
        }
        let ly = TOP + 10.0 + i as f64 * 17.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            RIGHT + 20.0,
            RIGHT + 50.0,
            s.colour,
            RIGHT + 56.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Cell;
    use crate::wrk::Measured;
    use std::time::Duration;

    #[test]
    fn draws_a_line_per_side_and_workload() {
        let m = |p99_ms: u64| Measured {
            requests: 10,
            seconds: 1.0,
            p50: Duration::from_millis(1),
            p99: Duration::from_millis(p99_ms),
        };
        let rows: Vec<Row> = [(10_000, 2, 40), (100_000, 3, 400)]
            .into_iter()
            .map(|(size, ours, theirs)| Row {
                key: "first page",
                label: "first page".into(),
                size,
                ours: Cell::Load(m(ours)),
                ours_postgres: Cell::Load(m(ours * 2)),
                incumbent: Cell::Load(m(theirs)),
                ceiling: None,
                charted: true,
            })
            .collect();
        let svg = render(&rows);
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("first page, Duende"));
        assert!(svg.contains("first page, ours on PostgreSQL"));
        assert!(svg.contains("100,000"));
    }
}
