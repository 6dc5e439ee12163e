//! The overview page: a realm's activity at a glance, drawn from the store's time-bucketed
//! counters: sessions over the last 24 hours and 30 days, sign-ins per hour, sessions ended per
//! day by reason, delivery attempts per day by outcome, and sessions per client.

use chrono::TimeDelta;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use sessions::stats::{DeliveryOutcome, EndReason, Overview, OverviewBucket};

use crate::components::charts::{BarChart, Buckets, Item, ItemBars, LineChart, Series};
use crate::components::loaded::Loaded;
use crate::components::realm_picker::RealmPicker;
use crate::format::{exact, thousands};
use crate::routes::link;
use crate::server_fns::overview::{load_anomalies, load_overview, OverviewView};

/// The link to a realm's overview.
pub fn overview_href(realm: &str) -> String {
    format!("/realms/{realm}/overview")
}

/// Clients drawn in the sessions-per-client chart, those with the most sessions first.
const CLIENTS_SHOWN: usize = 12;

/// The overview page, at `/overview` (the first realm) and `/realms/{realm}/overview`.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let params = use_params_map();
    let realm = move || params.with(|p| p.get("realm"));
    let data = Resource::new(realm, load_overview);
    view! {
        <h1>"Overview"</h1>
        <Loaded loading="Loading the overview…">
            {move || Suspend::new(async move { data.await.map(|view| view! { <OverviewBody view/> }) })}
        </Loaded>
    }
}

/// The hourly buckets' axis: "14:00" under every third, "27 Nov 14:00–15:00 UTC" in tooltips.
fn hours_axis(buckets: &[OverviewBucket]) -> Buckets {
    Buckets {
        labels: buckets
            .iter()
            .map(|b| b.start.format("%H:%M").to_string())
            .collect(),
        names: buckets
            .iter()
            .map(|b| {
                let end = b.start + TimeDelta::hours(1);
                format!(
                    "{}–{} UTC",
                    b.start.format("%d %b %H:%M"),
                    end.format("%H:%M")
                )
            })
            .collect(),
        label_every: 3,
    }
}

/// The daily buckets' axis: "27 Nov" under every fifth, "Fri 27 Nov 2026 (UTC)" in tooltips.
fn days_axis(buckets: &[OverviewBucket]) -> Buckets {
    Buckets {
        labels: buckets
            .iter()
            .map(|b| b.start.format("%d %b").to_string())
            .collect(),
        names: buckets
            .iter()
            .map(|b| b.start.format("%a %d %b %Y (UTC)").to_string())
            .collect(),
        label_every: 5,
    }
}

/// How the overview names a reason, and the class that colours it.
fn reason_label(r: EndReason) -> (&'static str, &'static str) {
    match r {
        EndReason::Logout => ("Logout", "s-logout"),
        EndReason::Expired => ("Expired", "s-expired"),
        EndReason::Revoked => ("Ended by an administrator", "s-revoked"),
        EndReason::RealmSignOut => ("Realm sign-out", "s-realm-sign-out"),
        EndReason::Evicted => ("Evicted by the quota", "s-evicted"),
    }
}

/// How the overview names an outcome, and the class that colours it.
fn outcome_label(o: DeliveryOutcome) -> (&'static str, &'static str) {
    match o {
        DeliveryOutcome::Delivered => ("Delivered", "s-delivered"),
        DeliveryOutcome::Failed => ("Failed, retried", "s-failed"),
        DeliveryOutcome::GaveUp => ("Gave up", "s-gave-up"),
    }
}

fn sum(buckets: &[OverviewBucket], f: impl Fn(&OverviewBucket) -> u64) -> u64 {
    buckets.iter().map(f).sum()
}

/// "1 sign-in", "3 sign-ins".
fn count_of(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

#[component]
fn OverviewBody(view: OverviewView) -> impl IntoView {
    let Some(o) = view.overview else {
        return view! { <p class="notice">"No realm exists yet."</p> }.into_any();
    };
    let realm = o.realm.clone();
    view! {
        <form method="get" action=overview_href(&realm) class="filters">
            <RealmPicker realms=view.realms current=realm.clone() counts=true href=Callback::new(|r: String| overview_href(&r))/>
            <p class="as-of">"Figures as of " <time datetime=o.generated_at.to_rfc3339()>{exact(o.generated_at)}</time></p>
        </form>
        <Tiles overview=o.clone()/>
        <AnomalyTiles realm=realm.clone()/>
        <div class="overview-grid">
            <ActiveCharts overview=o.clone()/>
            <SignInsChart hourly=o.hourly.clone()/>
            <EndedChart daily=o.daily.clone()/>
            <DeliveriesChart daily=o.daily.clone()/>
            <ClientsChart overview=o/>
        </div>
    }
    .into_any()
}

/// The headline figures.
#[component]
fn Tiles(overview: Overview) -> impl IntoView {
    let o = &overview;
    let tiles = [
        ("sessions", "Sessions now", o.session_count),
        (
            "sign-ins-24h",
            "Sign-ins, last 24 hours",
            sum(&o.hourly, |b| b.sign_ins),
        ),
        (
            "ended-24h",
            "Sessions ended, last 24 hours",
            sum(&o.hourly, |b| b.ended.total()),
        ),
        (
            "attempts-30d",
            "Delivery attempts, last 30 days",
            sum(&o.daily, |b| b.deliveries.total()),
        ),
    ]
    .into_iter()
    .map(|(id, label, n)| {
        view! {
            <div class="tile" data-tile=id>
                <span class="tile-label">{label}</span>
                <strong class="tile-value">{thousands(n)}</strong>
            </div>
        }
    })
    .collect_view();
    view! { <section class="tiles" aria-label="Headline figures">{tiles}</section> }
}

/// Sessions with each anomaly, each a link to the listing of them (loaded apart: it reads the
/// realm's sessions).
#[component]
fn AnomalyTiles(realm: String) -> impl IntoView {
    let source = realm.clone();
    let counts = Resource::new(move || source.clone(), load_anomalies);
    let realm = StoredValue::new(realm);
    view! {
        <Loaded loading="Counting anomalies…">
            {move || {
                let realm = realm.get_value();
                Suspend::new(async move {
                counts.await.map(|counts| {
                    let tiles = counts
                        .into_iter()
                        .map(|c| {
                            let href = link(
                                "/",
                                &[("realm", realm.clone()), ("anomaly", c.anomaly.clone())],
                            );
                            view! {
                                <a class="tile anomaly" data-anomaly=c.anomaly.clone() href=href>
                                    <span class="tile-label">{c.label}</span>
                                    <strong class="tile-value">{thousands(c.session_count)}</strong>
                                </a>
                            }
                        })
                        .collect_view();
                    view! { <section class="tiles anomalies" aria-label="Anomalies">{tiles}</section> }
                })
            })
            }}
        </Loaded>
    }
}

/// Sessions at each bucket's end, over 24 hours and over 30 days.
#[component]
fn ActiveCharts(overview: Overview) -> impl IntoView {
    let summary = |buckets: &[OverviewBucket], span: &str| {
        let peak = buckets.iter().map(|b| b.active_sessions).max().unwrap_or(0);
        let low = buckets.iter().map(|b| b.active_sessions).min().unwrap_or(0);
        format!(
            "{} now; between {} and {} at the end of each {span}",
            thousands(overview.session_count),
            thousands(low),
            thousands(peak)
        )
    };
    let values = |buckets: &[OverviewBucket]| buckets.iter().map(|b| b.active_sessions).collect();
    view! {
        <LineChart
            id="active-24h"
            title="Active sessions, last 24 hours".into()
            summary=summary(&overview.hourly, "hour")
            buckets=hours_axis(&overview.hourly)
            unit="sessions"
            values=values(&overview.hourly)
        />
        <LineChart
            id="active-30d"
            title="Active sessions, last 30 days".into()
            summary=summary(&overview.daily, "day")
            buckets=days_axis(&overview.daily)
            unit="sessions"
            values=values(&overview.daily)
        />
    }
}

/// Sessions created per hour.
#[component]
fn SignInsChart(hourly: Vec<OverviewBucket>) -> impl IntoView {
    let total = sum(&hourly, |b| b.sign_ins);
    let busiest = hourly.iter().map(|b| b.sign_ins).max().unwrap_or(0);
    let summary = format!(
        "{} in the last 24 hours; at most {} in an hour",
        count_of(total, "sign-in", "sign-ins"),
        thousands(busiest)
    );
    let series = vec![Series {
        name: "Sign-ins",
        class: "s-sign-ins",
        values: hourly.iter().map(|b| b.sign_ins).collect(),
    }];
    view! {
        <BarChart id="sign-ins" title="Sign-ins per hour".into() summary buckets=hours_axis(&hourly) series/>
    }
}

/// Sessions ended per day, stacked by reason.
#[component]
fn EndedChart(daily: Vec<OverviewBucket>) -> impl IntoView {
    let total = sum(&daily, |b| b.ended.total());
    let summary = format!(
        "{} in the last 30 days",
        count_of(total, "session ended", "sessions ended")
    );
    let series = EndReason::ALL
        .into_iter()
        .map(|r| {
            let (name, class) = reason_label(r);
            Series {
                name,
                class,
                values: daily.iter().map(|b| b.ended.get(r)).collect(),
            }
        })
        .collect();
    view! {
        <BarChart id="ended" title="Sessions ended per day, by reason".into() summary buckets=days_axis(&daily) series/>
    }
}

/// Back-channel delivery attempts per day, stacked by outcome.
#[component]
fn DeliveriesChart(daily: Vec<OverviewBucket>) -> impl IntoView {
    let total = sum(&daily, |b| b.deliveries.total());
    let summary = format!(
        "{} in the last 30 days",
        count_of(total, "delivery attempt", "delivery attempts")
    );
    let series = DeliveryOutcome::ALL
        .into_iter()
        .map(|o| {
            let (name, class) = outcome_label(o);
            Series {
                name,
                class,
                values: daily.iter().map(|b| b.deliveries.get(o)).collect(),
            }
        })
        .collect();
    view! {
        <BarChart id="deliveries" title="Back-channel deliveries per day, by outcome".into() summary buckets=days_axis(&daily) series/>
    }
}

/// Sessions per registered client, the most first.
#[component]
fn ClientsChart(overview: Overview) -> impl IntoView {
    let mut clients = overview.clients;
    if clients.is_empty() {
        return view! {
            <figure class="chart" data-chart="clients">
                <figcaption><h2>"Sessions per client"</h2></figcaption>
                <p class="notice empty">"No client is registered in this realm."</p>
            </figure>
        }
        .into_any();
    }
    clients.sort_by(|a, b| {
        b.session_count
            .cmp(&a.session_count)
            .then_with(|| a.client_id.cmp(&b.client_id))
    });
    let registered = clients.len();
    let shown = registered.min(CLIENTS_SHOWN);
    let mut summary = count_of(registered as u64, "registered client", "registered clients");
    if shown < registered {
        summary = format!("{summary}; the {shown} with the most sessions");
    }
    let items = clients
        .into_iter()
        .take(shown)
        .map(|c| {
            let label = match &c.name {
                Some(name) => shorten(name),
                None => shorten(&c.client_id),
            };
            let name = match c.name {
                Some(name) => format!("{name} ({})", c.client_id),
                None => c.client_id,
            };
            Item {
                label,
                name,
                value: c.session_count,
            }
        })
        .collect();
    view! {
        <ItemBars id="clients" title="Sessions per client".into() summary unit="sessions" items/>
    }
    .into_any()
}

/// A label cut to fit beside a bar.
fn shorten(text: &str) -> String {
    const MAX: usize = 24;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(MAX - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    /// An empty bucket starting at `start`.
    fn bucket(start: &str) -> OverviewBucket {
        OverviewBucket {
            start: start.parse::<DateTime<Utc>>().unwrap(),
            active_sessions: 0,
            sign_ins: 0,
            ended: Default::default(),
            deliveries: Default::default(),
        }
    }

    #[test]
    fn axes_name_buckets_in_utc() {
        let h = hours_axis(&[bucket("2026-11-27T14:00:00Z")]);
        assert_eq!(h.labels, ["14:00"]);
        assert_eq!(h.names, ["27 Nov 14:00–15:00 UTC"]);
        let d = days_axis(&[bucket("2026-11-27T00:00:00Z")]);
        assert_eq!(d.labels, ["27 Nov"]);
        assert_eq!(d.names, ["Fri 27 Nov 2026 (UTC)"]);
        assert_eq!(shorten("short"), "short");
        assert_eq!(shorten(&"x".repeat(30)).chars().count(), 24);
    }
}
