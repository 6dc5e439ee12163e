//! The JSON API over HTTP, under `/api/v1`: the identity provider's data plane (scope
//! `sessions:issue`), administration (scope `sessions:admin`), the audit log, the OpenAPI
//! document, health and Prometheus metrics. Handlers are thin: they check input and call the
//! [`SessionStore`].

pub mod admins;
pub mod auth;
pub mod backchannel;
pub mod error;
mod metrics;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use std::convert::Infallible;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, FromRef, Request};
use axum::response::Response;
use axum::routing::Route;
use axum::Router;
use sessions::store::SessionStore;
use tower::{BoxError, Layer, Service, ServiceBuilder};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use admins::{AdminAccounts, ADMIN_REALM};
pub use auth::{ApiKeys, Scope};
pub use backchannel::{Backchannel, DeliveryConfig, SigningKeys};
pub use metrics::record_reaped;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Time allowed for an ordinary request.
pub const REQUEST_TIME_LIMIT: Duration = Duration::from_secs(30);

/// Time allowed for a bulk removal: ending a whole realm's sessions, revoking their tokens and
/// queueing their logouts runs for minutes at a million sessions.
pub const BULK_TIME_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Answers a request that runs past `limit` with a JSON 503 (`timed_out`). Work it started on a
/// blocking thread still runs to the end.
fn time_limit(
    limit: Duration,
) -> impl Layer<
    Route,
    Service: Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
                 + Clone
                 + Send
                 + Sync
                 + 'static,
> + Clone
       + Send
       + Sync
       + 'static {
    ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |_: BoxError| async move {
            error::ApiError::timed_out(limit)
        }))
        .layer(tower::timeout::TimeoutLayer::new(limit))
}

/// What the handlers need.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn SessionStore>,
    pub keys: Arc<ApiKeys>,
    pub backchannel: Arc<Backchannel>,
}

impl FromRef<ApiState> for Arc<ApiKeys> {
    fn from_ref(s: &ApiState) -> Self {
        s.keys.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sessions API",
        description = "Server-side sessions for identity providers: create, validate and end sessions; \
                       list, inspect and revoke them. Authenticate with 'Authorization: Bearer <API key>'."
    ),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody))
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
    routes::register(router).split_for_parts()
}

/// The whole API: documented routes (each under its time limit), the OpenAPI document and docs
/// page, health, metrics, JSON answers for unknown routes and methods, body limit and request
/// metrics.
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_request_past_its_time_limit_gets_a_json_503() {
        let limit = Duration::from_millis(20);
        let slow = Router::new()
            .route(
                "/slow",
                axum::routing::get(|| tokio::time::sleep(Duration::from_secs(5))),
            )
            .layer(time_limit(limit));
        let request = Request::get("/slow").body(Body::empty()).unwrap();
        let response = slow.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "timed_out", "{v}");
    }
}
