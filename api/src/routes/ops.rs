//! Operations: health, Prometheus metrics, the OpenAPI document and its docs page, and JSON
//! answers for unknown routes.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use utoipa::openapi::OpenApi;

use crate::error::{ApiError, ErrorBody};

/// The answer of a healthy server.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: String,
}
use crate::{metrics, ApiState};

/// Routes for health, metrics and the API's own documentation.
pub fn router(openapi: Arc<OpenApi>) -> Router<ApiState> {
    let docs = DocsPage(Arc::from(docs_page(&openapi)));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .route("/.well-known/jwks.json", get(super::signing_keys::jwks))
        .route("/api/v1/openapi.json", get(openapi_document))
        .route("/api/v1/docs", get(docs_html))
        .route("/api/v1/docs.js", get(docs_script))
        .layer(Extension(openapi))
        .layer(Extension(docs))
        .layer(Extension(Arc::new(metrics::StoreFigures::default())))
}

/// The docs page, rendered once.
#[derive(Clone)]
pub struct DocsPage(Arc<str>);

/// The docs page's own policy: like every answer's, but its script (same origin only) may run
/// and call the API.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The script of the docs page's "try it" form.
const DOCS_SCRIPT: &str = include_str!("docs.js");

/// This document: the API's contract (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, content_type = "application/json", body = Object,
        description = "The OpenAPI 3.1 document")))]
pub async fn openapi_document(Extension(openapi): Extension<Arc<OpenApi>>) -> Json<OpenApi> {
    Json(openapi.as_ref().clone())
}

/// A page listing every operation, with a form to try one.
#[utoipa::path(get, path = "/api/v1/docs", tag = "operations",
    responses((status = 200, content_type = "text/html", body = String,
        description = "The docs page")))]
pub async fn docs_html(Extension(page): Extension<DocsPage>) -> Response {
    (
        [(header::CONTENT_SECURITY_POLICY, DOCS_CSP)],
        Html(page.0.to_string()),
    )
        .into_response()
}

/// The docs page's script.
#[utoipa::path(get, path = "/api/v1/docs.js", tag = "operations",
    responses((status = 200, content_type = "text/javascript", body = String,
        description = "The script of the docs page's form")))]
pub async fn docs_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        DOCS_SCRIPT,
    )
        .into_response()
}

/// Whether the server can read its store.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health, description = "The store answers"),
        (status = 503, body = ErrorBody, description = "The store does not answer (`unhealthy`)")))]
pub async fn healthz(State(state): State<ApiState>) -> Response {
    match state.service.list_realms(true).await {
        Ok(_) => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
            }),
        )
            .into_response(),
        Err(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unhealthy", e.to_string())
            .into_response(),
    }
}

/// Prometheus metrics: requests by route, method and status, latencies, sessions per realm,
/// back-channel deliveries per status. The store's figures are read at most every 5 s; scrapes in
/// between are answered from memory.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String,
        description = "Prometheus text exposition format 0.0.4")))]
pub async fn prometheus(
    State(state): State<ApiState>,
    Extension(figures): Extension<Arc<metrics::StoreFigures>>,
) -> Response {
    figures.refresh(state.service.store()).await;
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
                "<tr><td>{}</td><td><code>{method}</code></td><td><code>{}</code></td><td>{}</td>\
                 <td><button type=\"button\" data-try=\"{method} {}\">Try</button></td></tr>",
                escape(&tag),
                escape(path),
                escape(&summary),
                escape(path)
            );
        }
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} {version}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1f2933}}table{{border-collapse:collapse}}\
         td,th{{padding:.4rem .8rem;border-bottom:1px solid #e4e7eb;text-align:left}}code{{font-size:.95em}}</style></head>\
         <body><h1>{title} {version}</h1><p>{description}</p>\
         <p>Machine-readable: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI 3.1).</p>\
         <table><thead><tr><th>Area</th><th>Method</th><th>Path</th><th>What it does</th><th></th></tr></thead><tbody>{rows}</tbody></table>\
         <section id=\"try\" hidden><h2>Try a call</h2>\
         <p>Sends the request to this server with your API key; the key stays in this page.</p>\
         <p><label>API key <input id=\"key\" type=\"password\" autocomplete=\"off\" size=\"40\"></label></p>\
         <p><label>Operation <select id=\"op\"></select></label></p><div id=\"params\"></div>\
         <p><label id=\"body-label\">Body (JSON)<br><textarea id=\"body\" rows=\"10\" cols=\"80\"></textarea></label></p>\
         <p><button id=\"send\" type=\"button\">Send</button></p><pre id=\"result\" aria-live=\"polite\"></pre></section>\
         <script src=\"/api/v1/docs.js\" defer></script></body></html>",
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
