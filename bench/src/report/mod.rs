//! The run's results: one row per workload and size, printed as a table, written into
//! `BENCHMARKS.md` between this benchmark's markers, and drawn as an SVG chart.

mod chart;
mod machine;
mod markdown;

pub use chart::write_chart;
pub use markdown::{section, write_section};

use crate::wrk::Measured;

/// One side's figure for a workload.
#[derive(Clone, Debug)]
pub enum Cell {
    /// A load run for a duration: latency and throughput.
    Load(Measured),
    /// A fixed number of one-shot requests: latency only.
    OneShot(Measured),
    /// A figure that is not a latency (disk, memory, a start-up time, a sweep).
    Text(String),
    /// The side has no such workload.
    Absent(&'static str),
}

impl Cell {
    fn measured(&self) -> Option<&Measured> {
        match self {
            Cell::Load(m) | Cell::OneShot(m) => Some(m),
            _ => None,
        }
    }

    /// The 99th percentile, for the chart.
    pub fn p99_ms(&self) -> Option<f64> {
        self.measured().map(|m| m.p99.as_secs_f64() * 1e3)
    }

    /// `p50`, `p99`, `req/s` cells.
    fn columns(&self) -> [String; 3] {
        match self {
            Cell::Load(m) => [ms(m.p50), ms(m.p99), format!("{:.0}", m.throughput())],
            Cell::OneShot(m) => [ms(m.p50), ms(m.p99), "—".into()],
            Cell::Text(t) => [t.clone(), String::new(), String::new()],
            Cell::Absent(why) => [why.to_string(), String::new(), String::new()],
        }
    }
}

/// One workload at one data size.
#[derive(Clone, Debug)]
pub struct Row {
    /// Stable name of the workload (the chart's series).
    pub key: &'static str,
    /// What the table shows (may say more, e.g. which page was reachable).
    pub label: String,
    pub size: usize,
    /// Our server on its embedded store.
    pub ours: Cell,
    /// Our server on PostgreSQL.
    pub ours_postgres: Cell,
    pub incumbent: Cell,
    /// The do-nothing handler's rate for the same method, for data-plane loads.
    pub ceiling: Option<Measured>,
    /// Whether the chart draws this workload.
    pub charted: bool,
}

impl Row {
    /// How many times better we are (`ours`: on either backend): throughput over throughput for
    /// loads, the incumbent's p50 over ours for one-shot requests.
    fn ratio(&self, ours: &Cell) -> String {
        let ratio = match (ours, &self.incumbent) {
            (Cell::Load(o), Cell::Load(i)) => o.throughput() / i.throughput(),
            (Cell::OneShot(o), Cell::OneShot(i)) => i.p50.as_secs_f64() / o.p50.as_secs_f64(),
            _ => return String::new(),
        };
        if ratio < 1.0 {
            format!("{ratio:.2}×")
        } else {
            format!("{ratio:.1}×")
        }
    }

    fn ceiling_ratio(&self) -> String {
        match (&self.ours, &self.ceiling) {
            (Cell::Load(o), Some(c)) => format!("{:.2}", o.throughput() / c.throughput()),
            _ => String::new(),
        }
    }
}

/// The table's header cells.
const HEADER: [&str; 14] = [
    "workload",
    "sessions",
    "ours p50",
    "ours p99",
    "ours req/s",
    "ours on PG p50",
    "ours on PG p99",
    "ours on PG req/s",
    "Duende p50",
    "Duende p99",
    "Duende req/s",
    "ours ÷ Duende",
    "ours on PG ÷ Duende",
    "ours ÷ ceiling",
];

/// The rows as a Markdown table, columns padded to line up in a terminal too.
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = std::iter::once(HEADER.iter().map(|h| h.to_string()).collect())
        .chain(rows.iter().map(|r| {
            let [op50, op99, ort] = r.ours.columns();
            let [pp50, pp99, prt] = r.ours_postgres.columns();
            let [ip50, ip99, irt] = r.incumbent.columns();
            vec![
                r.label.clone(),
                thousands(r.size),
                op50,
                op99,
                ort,
                pp50,
                pp99,
                prt,
                ip50,
                ip99,
                irt,
                r.ratio(&r.ours),
                r.ratio(&r.ours_postgres),
                r.ceiling_ratio(),
            ]
        }))
        .collect();
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String]| -> String {
        let padded: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let mut out = line(&cells[0]);
    out.push_str(&line(&rule));
    for row in &cells[1..] {
        out.push_str(&line(row));
    }
    out
}

/// A duration in milliseconds, with precision that fits its size.
pub fn ms(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn measured(requests: u64, p50_us: u64) -> Measured {
        Measured {
            requests,
            seconds: 1.0,
            p50: Duration::from_micros(p50_us),
            p99: Duration::from_micros(p50_us * 4),
        }
    }

    #[test]
    fn ratios_compare_rates_or_one_shot_latencies() {
        let row = Row {
            key: "validate",
            label: "validate".into(),
            size: 10_000,
            ours: Cell::Load(measured(60_000, 500)),
            ours_postgres: Cell::Load(measured(24_000, 1_000)),
            incumbent: Cell::Load(measured(12_000, 2_000)),
            ceiling: Some(measured(100_000, 300)),
            charted: true,
        };
        assert_eq!(row.ratio(&row.ours), "5.0×");
        assert_eq!(row.ratio(&row.ours_postgres), "2.0×");
        assert_eq!(row.ceiling_ratio(), "0.60");
        let remove = Row {
            ours: Cell::OneShot(measured(3, 20_000)),
            incumbent: Cell::OneShot(measured(3, 60_000)),
            ceiling: None,
            ..row
        };
        assert_eq!(remove.ratio(&remove.ours), "3.0×");
        assert_eq!(
            remove.ratio(&remove.ours_postgres),
            "",
            "a load against one-shot requests"
        );
        let slower = Row {
            ours: Cell::OneShot(measured(3, 80_000)),
            ..remove.clone()
        };
        assert_eq!(slower.ratio(&slower.ours), "0.75×");
        assert_eq!(remove.ceiling_ratio(), "");
        let text = table(&[remove]);
        assert!(text.contains("| validate"));
        assert!(text.contains("10,000"));
        assert!(text.contains("20.0 ms"));
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(ms(Duration::from_micros(680)), "0.68 ms");
        assert_eq!(ms(Duration::from_millis(131)), "131 ms");
    }
}
