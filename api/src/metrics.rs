//! Prometheus metrics: the recorder (installed by [`handle`], which the server calls at start so
//! the service's counters are kept from the first event), request counts and latencies per
//! route, and figures the store reports.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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

type RouteKey = (axum::http::Method, u16);

/// Handles by route, then by (method, status): a request's lookup allocates nothing once its
/// combination has been seen.
type Registry = RwLock<HashMap<Arc<str>, Vec<(RouteKey, RouteMetrics)>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn route_metrics(route: &str, method: &axum::http::Method, status: u16) -> RouteMetrics {
    let find = |entries: &Vec<(RouteKey, RouteMetrics)>| {
        entries
            .iter()
            .find(|((m, s), _)| m == method && *s == status)
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
        ("method", method.as_str().to_owned()),
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
        entries.push(((method.clone(), status), handles.clone()));
    }
    handles
}

/// Middleware counting requests and timing them by route and status.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    let handles = route_metrics(route, &method, response.status().as_u16());
    handles.requests.increment(1);
    handles.duration.record(started.elapsed().as_secs_f64());
    response
}
