//! Charts drawn as inline SVG from the server's figures, no script: bars per bucket (stacked by
//! series), a level over time as a line, and a bar per item. Each shows its numbers (axis ticks,
//! a total in its caption and legend, a value over each bar where it fits), names every bucket's
//! figures in a tooltip (`<title>`), and carries an accessible label. Everything drawn follows
//! from the props alone, so the server's rendering and the browser's hydration agree.

use leptos::prelude::*;

/// One series of a chart: its name, the CSS class that colours it, a value per bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: &'static str,
    pub class: &'static str,
    pub values: Vec<u64>,
}

impl Series {
    /// Every bucket's value together.
    pub fn total(&self) -> u64 {
        self.values.iter().sum()
    }
}

/// The buckets along a chart's x axis: a short label each (shown for every `label_every`-th,
/// counting back from the last) and a full name for tooltips.
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets {
    pub labels: Vec<String>,
    pub names: Vec<String>,
    pub label_every: usize,
}

/// One bar of an [`ItemBars`] chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// What the bar is labelled with.
    pub label: String,
    /// What its tooltip calls it.
    pub name: String,
    pub value: u64,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 24.0;
/// Steps of the y axis.
const TICKS: u64 = 4;
/// Width of a digit of a value label, in SVG units (at its font size).
const DIGIT_WIDTH: f64 = 6.5;

/// The top of a y axis for values up to `max`: [`TICKS`] equal steps of 1, 2 or 5 times a power
/// of ten, so every tick is a round whole number.
pub fn axis_max(max: u64) -> u64 {
    let least_step = max.div_ceil(TICKS).max(1);
    let mut power: u64 = 1;
    loop {
        for m in [1, 2, 5] {
            if m * power >= least_step {
                return m * power * TICKS;
            }
        }
        power = power.saturating_mul(10);
    }
}

/// A coordinate as the SVG carries it.
fn at(v: f64) -> String {
    format!("{v:.1}")
}

fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

/// The y of a value on an axis topped at `top`.
fn y_of(v: u64, top: u64) -> f64 {
    TOP + plot_height() * (1.0 - v as f64 / top as f64)
}

/// The width of one bucket's slot.
fn slot_width(n: usize) -> f64 {
    (WIDTH - LEFT - RIGHT) / n.max(1) as f64
}

/// Gridlines with their values, and the bucket labels under the plot.
#[component]
fn Axes(top: u64, buckets: Buckets) -> impl IntoView {
    let grid = (0..=TICKS)
        .map(|i| {
            let v = top / TICKS * i;
            let y = y_of(v, top);
            view! {
                <g class="tick">
                    <line x1=at(LEFT) x2=at(WIDTH - RIGHT) y1=at(y) y2=at(y)/>
                    <text x=at(LEFT - 6.0) y=at(y + 3.5) text-anchor="end">{crate::format::thousands(v)}</text>
                </g>
            }
        })
        .collect_view();
    let n = buckets.labels.len();
    let slot = slot_width(n);
    let every = buckets.label_every.max(1);
    let labels = buckets
        .labels
        .into_iter()
        .enumerate()
        .filter(|(i, _)| (n - 1 - i).is_multiple_of(every))
        .map(|(i, label)| {
            let x = LEFT + slot * (i as f64 + 0.5);
            view! { <text class="x-label" x=at(x) y=at(HEIGHT - 6.0) text-anchor="middle">{label}</text> }
        })
        .collect_view();
    view! { <g class="axes" aria-hidden="true">{grid}{labels}</g> }
}

/// The series' names with their totals.
#[component]
fn Legend(series: Vec<(&'static str, &'static str, u64)>) -> impl IntoView {
    let entries = series
        .into_iter()
        .map(|(name, class, total)| {
            view! {
                <li>
                    <svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect class=class width="10" height="10" rx="2"/></svg>
                    {name} " " <strong class="legend-total">{crate::format::thousands(total)}</strong>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="legend">{entries}</ul> }
}

/// A chart's frame: title, summary and legend above the drawing.
#[component]
fn Frame(
    id: &'static str,
    title: String,
    summary: String,
    /// Each series' name, colour class and total; none for a single series.
    legend: Vec<(&'static str, &'static str, u64)>,
    view_height: f64,
    children: Children,
) -> impl IntoView {
    let label = format!("{title}. {summary}");
    view! {
        <figure class="chart" data-chart=id>
            <figcaption>
                <h2>{title}</h2>
                <p class="chart-summary">{summary}</p>
                {(!legend.is_empty()).then(|| view! { <Legend series=legend/> })}
            </figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {view_height}") role="img" aria-label=label>
                {children()}
            </svg>
        </figure>
    }
}

/// Bars per bucket, the series stacked in order, each bar's total over it (where it fits).
#[component]
pub fn BarChart(
    /// Names the chart for tests and styles (`data-chart`).
    id: &'static str,
    title: String,
    /// The chart's figures in a sentence: shown under the title and part of its label.
    summary: String,
    buckets: Buckets,
    series: Vec<Series>,
) -> impl IntoView {
    let n = buckets.labels.len();
    let totals: Vec<u64> = (0..n)
        .map(|i| series.iter().map(|s| s.values[i]).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    let top = axis_max(max);
    let slot = slot_width(n);
    let bar = (slot * 0.7).max(1.0);
    let values_fit = max.to_string().len() as f64 * DIGIT_WIDTH <= slot;
    let bars = (0..n)
        .map(|i| {
            let left = LEFT + slot * i as f64;
            let x = left + (slot - bar) / 2.0;
            let mut base = 0;
            let mut tip = format!("{}: {}", buckets.names[i], crate::format::thousands(totals[i]));
            if series.len() > 1 {
                let parts: Vec<String> = series
                    .iter()
                    .map(|s| format!("{} {}", s.name, crate::format::thousands(s.values[i])))
                    .collect();
                tip = format!("{tip} ({})", parts.join(", "));
            }
            let rects = series
                .iter()
                .filter(|s| s.values[i] > 0)
                .map(|s| {
                    let (low, high) = (y_of(base, top), y_of(base + s.values[i], top));
                    base += s.values[i];
                    view! { <rect class=s.class x=at(x) y=at(high) width=at(bar) height=at(low - high)/> }
                })
                .collect_view();
            let value = (values_fit && totals[i] > 0).then(|| {
                view! {
                    <text class="value" x=at(x + bar / 2.0) y=at(y_of(totals[i], top) - 3.0) text-anchor="middle">
                        {totals[i].to_string()}
                    </text>
                }
            });
            view! {
                <g class="bucket" data-total=totals[i].to_string()>
                    <title>{tip}</title>
                    <rect class="hit" x=at(left) y=at(TOP) width=at(slot) height=at(plot_height())/>
                    {rects}
                    {value}
                </g>
            }
        })
        .collect_view();
    let legend = if series.len() > 1 {
        series
            .iter()
            .map(|s| (s.name, s.class, s.total()))
            .collect()
    } else {
        Vec::new()
    };
    view! {
        <Frame id title summary legend view_height=HEIGHT>
            <Axes top buckets/>
            {bars}
        </Frame>
    }
}

/// A level over time: a line through each bucket's value, the last one labelled.
#[component]
pub fn LineChart(
    /// Names the chart for tests and styles (`data-chart`).
    id: &'static str,
    title: String,
    /// The chart's figures in a sentence: shown under the title and part of its label.
    summary: String,
    buckets: Buckets,
    /// What a value is, for tooltips ("sessions").
    unit: &'static str,
    values: Vec<u64>,
) -> impl IntoView {
    let n = values.len();
    let top = axis_max(values.iter().copied().max().unwrap_or(0));
    let slot = slot_width(n);
    let point = |i: usize, v: u64| (LEFT + slot * (i as f64 + 0.5), y_of(v, top));
    let line: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (x, y) = point(i, *v);
            format!("{} {}", at(x), at(y))
        })
        .collect();
    let path = format!("M {}", line.join(" L "));
    let area = match (values.first(), values.last()) {
        (Some(_), Some(_)) => {
            let (x0, _) = point(0, 0);
            let (x1, _) = point(n - 1, 0);
            let base = at(y_of(0, top));
            format!("{path} L {} {base} L {} {base} Z", at(x1), at(x0))
        }
        _ => String::new(),
    };
    let points = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (x, y) = point(i, *v);
            let tip = format!(
                "{}: {} {unit}",
                buckets.names[i],
                crate::format::thousands(*v)
            );
            let left = LEFT + slot * i as f64;
            view! {
                <g class="bucket" data-total=v.to_string()>
                    <title>{tip}</title>
                    <rect class="hit" x=at(left) y=at(TOP) width=at(slot) height=at(plot_height())/>
                    <circle class="point" cx=at(x) cy=at(y) r="2.5"/>
                </g>
            }
        })
        .collect_view();
    let last = values.last().map(|v| {
        let (x, y) = point(n - 1, *v);
        view! {
            <text class="value last" x=at(x) y=at(y - 7.0) text-anchor="end">{crate::format::thousands(*v)}</text>
        }
    });
    view! {
        <Frame id title summary legend=Vec::new() view_height=HEIGHT>
            <Axes top buckets/>
            <path class="area" d=area/>
            <path class="line" d=path/>
            {points}
            {last}
        </Frame>
    }
}

/// One horizontal bar per item, its value after it.
#[component]
pub fn ItemBars(
    /// Names the chart for tests and styles (`data-chart`).
    id: &'static str,
    title: String,
    /// The chart's figures in a sentence: shown under the title and part of its label.
    summary: String,
    /// What a value is, for tooltips ("sessions").
    unit: &'static str,
    items: Vec<Item>,
) -> impl IntoView {
    const ROW: f64 = 26.0;
    const LABEL_END: f64 = 170.0;
    const VALUE_ROOM: f64 = 70.0;
    let height = TOP + ROW * items.len() as f64;
    let max = items.iter().map(|i| i.value).max().unwrap_or(0).max(1);
    let room = WIDTH - LABEL_END - 8.0 - VALUE_ROOM;
    let bars = items
        .into_iter()
        .enumerate()
        .map(|(row, item)| {
            let y = TOP / 2.0 + ROW * row as f64;
            let w = room * item.value as f64 / max as f64;
            let x = LABEL_END + 8.0;
            let tip = format!(
                "{}: {} {unit}",
                item.name,
                crate::format::thousands(item.value)
            );
            view! {
                <g class="bucket" data-total=item.value.to_string()>
                    <title>{tip}</title>
                    <text class="item-label" x=at(LABEL_END) y=at(y + ROW / 2.0 + 1.0) text-anchor="end">{item.label}</text>
                    <rect class="s-client" x=at(x) y=at(y + 4.0) width=at(w.max(1.0)) height=at(ROW - 8.0) rx="2"/>
                    <text class="value" x=at(x + w + 6.0) y=at(y + ROW / 2.0 + 1.0)>{crate::format::thousands(item.value)}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <Frame id title summary legend=Vec::new() view_height=height>
            {bars}
        </Frame>
    }
}

#[cfg(test)]
mod tests {
    use super::axis_max;

    #[test]
    fn axes_end_on_round_steps() {
        assert_eq!(axis_max(0), 4);
        assert_eq!(axis_max(4), 4);
        assert_eq!(axis_max(5), 8);
        assert_eq!(axis_max(9), 20);
        assert_eq!(axis_max(1234), 2000);
        assert_eq!(axis_max(2001), 4000);
    }
}
