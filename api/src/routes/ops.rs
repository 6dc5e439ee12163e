//! Operations: health, Prometheus metrics, the OpenAPI document and its docs page, and JSON
//! answers for unknown routes.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::OpenApi;

use crate::error::ApiError;
use crate::{metrics, ApiState};

/// Routes for health, metrics and the API's own documentation.
pub fn router(openapi: Arc<OpenApi>) -> Router<ApiState> {
    let docs = Html(docs_page(&openapi));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .route("/.well-known/jwks.json", get(super::signing_keys::jwks))
        .route(
            "/api/v1/openapi.json",
            get(move || async move { Json(openapi.as_ref().clone()) }),
        )
        .route("/api/v1/docs", get(move || async move { docs.clone() }))
}

async fn healthz(State(state): State<ApiState>) -> Response {
    match state.service.list_realms(true) {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unhealthy", e.to_string())
            .into_response(),
    }
}

async fn prometheus(State(state): State<ApiState>) -> Response {
    let store = state.service.store();
    if let Ok(realms) = store.list_user_realms() {
        for r in realms {
            if let Ok(page) = store.list_deliveries(&r.name, None, None, 1) {
                let c = page.counts;
                for (status, n) in [
                    ("pending", c.pending),
                    ("delivered", c.delivered),
                    ("failed", c.failed),
                ] {
                    ::metrics::gauge!("backchannel_deliveries", "realm" => r.name.clone(), "status" => status)
                        .set(n as f64);
                }
            }
            ::metrics::gauge!("sessions_active", "realm" => r.name).set(r.session_count as f64);
        }
    }
    ::metrics::gauge!("store_durable_flushes").set(store.durable_flushes() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::handle().render(),
    )
        .into_response()
}

/// JSON 404 for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route; the API is described at /api/v1/openapi.json")
}

/// JSON 405 for known routes called with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// A self-contained HTML page listing every operation of the OpenAPI document.
fn docs_page(openapi: &OpenApi) -> String {
    let mut rows = String::new();
    for (path, item) in &openapi.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let summary = op
                .summary
                .clone()
                .or_else(|| op.description.clone())
                .unwrap_or_default();
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first().cloned())
                .unwrap_or_default();
            let _ = write!(
                rows,
                "<tr><td>{}</td><td><code>{method}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                escape(&tag),
                escape(path),
                escape(&summary)
            );
        }
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} {version}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1f2933}}table{{border-collapse:collapse}}\
         td,th{{padding:.4rem .8rem;border-bottom:1px solid #e4e7eb;text-align:left}}code{{font-size:.95em}}</style></head>\
         <body><h1>{title} {version}</h1><p>{description}</p>\
         <p>Machine-readable: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI 3.1).</p>\
         <table><thead><tr><th>Area</th><th>Method</th><th>Path</th><th>What it does</th></tr></thead><tbody>{rows}</tbody></table></body></html>",
        title = escape(&openapi.info.title),
        version = escape(&openapi.info.version),
        description = escape(openapi.info.description.as_deref().unwrap_or("")),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
