//! Prometheus metrics: the recorder (installed by [`handle`], which the server calls at start so
//! the service's counters are kept from the first event), request counts and latencies per
//! route, and figures the store reports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sessions::store::SessionStore;

/// The process-wide recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // A recorder installed elsewhere in the process wins; ours then only renders.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// The counter and histogram of one (route, method, status), registered once.
#[derive(Clone)]
struct RouteMetrics {
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

type RouteKey = (&'static str, u16);

/// Handles by route, then by (method, status): a request's lookup allocates nothing once its
/// combination has been seen.
type Registry = RwLock<HashMap<Arc<str>, Vec<(RouteKey, RouteMetrics)>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// A request method as a label: one of the methods HTTP defines, or `other`. Labels come from a
/// closed set, so no request, however made up, adds a series.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("other")
}

fn route_metrics(route: &str, method: &'static str, status: u16) -> RouteMetrics {
    let find = |entries: &Vec<(RouteKey, RouteMetrics)>| {
        entries
            .iter()
            .find(|((m, s), _)| *m == method && *s == status)
            .map(|(_, h)| h.clone())
    };
    if let Some(found) = registry()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(route)
        .and_then(find)
    {
        return found;
    }
    handle();
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    let handles = RouteMetrics {
        requests: metrics::counter!("http_requests_total", &labels),
        duration: metrics::histogram!("http_request_duration_seconds", &labels),
    };
    let mut map = registry().write().unwrap_or_else(|e| e.into_inner());
    let entries = map.entry(Arc::from(route)).or_default();
    if find(entries).is_none() {
        entries.push(((method, status), handles.clone()));
    }
    handles
}

/// Middleware counting requests and timing them by route template (never the raw path; `unmatched`
/// for unknown routes), method and status.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    let handles = route_metrics(route, method, response.status().as_u16());
    handles.requests.increment(1);
    handles.duration.record(started.elapsed().as_secs_f64());
    response
}

/// The longest the store's figures on `/metrics` (sessions per realm, deliveries per status) go
/// unread. `/metrics` needs no key, so a scrape must not cost a store read per realm: between
/// refreshes it is served from the gauges in memory.
pub const STORE_FIGURES_REFRESH: Duration = Duration::from_secs(5);

/// When one server last read the store's figures.
#[derive(Default)]
pub struct StoreFigures {
    last_read: Mutex<Option<Instant>>,
}

impl StoreFigures {
    /// Reads the store's figures into their gauges, unless they were read less than
    /// [`STORE_FIGURES_REFRESH`] ago (or another scrape is reading them now).
    pub async fn refresh(&self, store: &Arc<dyn SessionStore>) {
        {
            let mut last = self.last_read.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < STORE_FIGURES_REFRESH) {
                return;
            }
            *last = Some(Instant::now());
        }
        // A failed read leaves the previous figures; the next refresh tries again.
        read_store_figures(store.as_ref()).await;
    }
}

/// Sets the gauges of sessions per realm and deliveries per status from the store.
async fn read_store_figures(store: &dyn SessionStore) {
    handle();
    if let Ok(realms) = store.list_user_realms().await {
        for r in realms {
            if let Ok(page) = store.list_deliveries(&r.name, None, None, 1).await {
                let c = page.counts;
                for (status, n) in [
                    ("pending", c.pending),
                    ("delivered", c.delivered),
                    ("failed", c.failed),
                ] {
                    metrics::gauge!("backchannel_deliveries", "realm" => r.name.clone(), "status" => status)
                        .set(n as f64);
                }
            }
            metrics::gauge!("sessions_active", "realm" => r.name).set(r.session_count as f64);
        }
    }
    metrics::gauge!("store_durable_flushes").set(store.durable_flushes() as f64);
}
