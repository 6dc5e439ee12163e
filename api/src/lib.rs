//! The JSON API over HTTP, under `/api/v1`: the identity provider's data plane (scope
//! `sessions:issue`), administration (scope `sessions:admin`; `sessions:read` reads it only),
//! the audit log, the OpenAPI
//! document, health and Prometheus metrics. Handlers are thin: they parse, call one
//! [`SessionService`] method, and shape the answer.

pub mod auth;
pub mod error;
pub mod export;
pub mod guard;
pub mod metrics;
pub mod openapi;
mod routes;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::Router;
use service::api_keys::ApiKeys;
use service::SessionService;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use guard::{GuardConfig, MAX_BODY_BYTES};

/// What the handlers need: the service.
#[derive(Clone)]
pub struct ApiState {
    pub service: SessionService,
}

impl FromRef<ApiState> for Arc<ApiKeys> {
    fn from_ref(s: &ApiState) -> Self {
        s.service.api_keys().clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sessions API",
        description = "Server-side sessions for identity providers: create, validate and end sessions; \
                       list, inspect and revoke them. Authenticate with 'Authorization: Bearer <API key>'. \
                       Scopes: `sessions:issue`, the identity provider's data plane; `sessions:admin`, all of \
                       administration; `sessions:read`, administration's reads only (what changes something \
                       answers 403 `forbidden`)."
    ),
    paths(
        routes::ops::healthz,
        routes::ops::prometheus,
        routes::signing_keys::jwks,
        routes::ops::openapi_document,
        routes::ops::docs_html,
        routes::ops::docs_script
    ),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody, sessions::SortKey, service::ExportFormat))
)]
struct ApiDoc;

/// Declares the bearer-key security scheme.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The documented routes and the OpenAPI document describing exactly them.
pub fn documented_routes() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi());
    let (routes, mut doc) = routes::register(router).split_for_parts();
    openapi::complete(&mut doc);
    (routes, doc)
}

/// The whole API: documented routes, the OpenAPI document and docs page, health, metrics, JSON
/// answers for unknown routes and methods, and request metrics. The server puts it behind
/// [`guard::guard`] with the dashboard; [`guarded_router`] does that for the API alone.
pub fn router(state: ApiState) -> Router {
    let (api, openapi) = documented_routes();
    let openapi = Arc::new(openapi);
    api.merge(routes::ops::router(openapi))
        .route("/api/{*rest}", axum::routing::any(routes::ops::not_found))
        .method_not_allowed_fallback(routes::ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}

/// `router` behind the request guard: limits, request ids, security headers.
pub fn guarded_router(state: ApiState, config: GuardConfig) -> Router {
    guard::protect(router(state), config)
}
