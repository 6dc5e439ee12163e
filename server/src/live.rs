//! Server-sent events for the dashboard: a realm's session count, every two seconds, so the
//! sessions page can say that sessions came or went since it loaded. Streams end when the
//! server stops, so an open dashboard tab never holds up a shutdown.

use std::convert::Infallible;
use std::time::Duration;

use app::server_fns::auth::ssr::CookiePolicy;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{stream, StreamExt};
use service::SessionService;
use tokio_util::sync::CancellationToken;

/// How often the count is sent.
const EVERY: Duration = Duration::from_secs(2);

/// What the live routes need.
#[derive(Clone)]
pub struct LiveState {
    pub service: SessionService,
    pub cookie: CookiePolicy,
    /// Cancelled when the server stops.
    pub shutdown: CancellationToken,
}

impl LiveState {
    /// The administrator whose live dashboard session's cookie the request carries, if enabled.
    pub async fn admin(&self, headers: &HeaderMap) -> Option<service::Actor> {
        let token = self.cookie.token(headers)?;
        self.service
            .dashboard_admin(&token, false)
            .await
            .ok()
            .flatten()
    }

    /// Whether the request comes from a signed-in administrator.
    async fn signed_in(&self, headers: &HeaderMap) -> bool {
        self.admin(headers).await.is_some()
    }
}

/// The answer to a dashboard route asked without a live dashboard session.
pub fn not_signed_in() -> Response {
    api::error::ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "sign in to the dashboard first",
    )
    .into_response()
}

/// `GET /live/realms/{realm}`: `count` events with the realm's session count, for a signed-in
/// administrator.
pub async fn realm_counts(
    State(live): State<LiveState>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !live.signed_in(&headers).await {
        return not_signed_in();
    }
    if let Err(e) = live.service.get_realm(&realm) {
        return api::error::ApiError::from(e).into_response();
    }
    let store = live.service.store().clone();
    let counts = stream::unfold((store, realm, true), |(store, realm, first)| async move {
        if !first {
            tokio::time::sleep(EVERY).await;
        }
        let count = service::inline_call(store.as_ref(), || store.get_realm(&realm))
            .ok()?
            .session_count;
        Some((
            Ok::<_, Infallible>(Event::default().event("count").data(count.to_string())),
            (store, realm, false),
        ))
    })
    .take_until(live.shutdown.cancelled_owned());
    Sse::new(counts)
        .keep_alive(KeepAlive::default())
        .into_response()
}
