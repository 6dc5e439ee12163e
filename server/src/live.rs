//! Server-sent events for the dashboard: a realm's session count, every two seconds, so the
//! sessions page can say that sessions came or went since it loaded.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::stream;
use sessions::store::SessionStore;

/// How often the count is sent.
const EVERY: Duration = Duration::from_secs(2);

/// `GET /live/realms/{realm}`: `count` events with the realm's session count, for a signed-in
/// administrator.
pub async fn realm_counts(
    State(store): State<Arc<dyn SessionStore>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> Response {
    let signed_in = app::server_fns::auth::ssr::cookie_token(&headers)
        .and_then(|t| {
            store
                .validate(api::ADMIN_REALM, &t, false, Utc::now())
                .ok()
                .flatten()
        })
        .is_some();
    if !signed_in {
        return api::error::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in to the dashboard first",
        )
        .into_response();
    }
    if let Err(e) = store.get_realm(&realm) {
        return api::error::ApiError::from(e).into_response();
    }
    let counts = stream::unfold((store, realm, true), |(store, realm, first)| async move {
        if !first {
            tokio::time::sleep(EVERY).await;
        }
        let count = store.get_realm(&realm).ok()?.session_count;
        Some((
            Ok::<_, Infallible>(Event::default().event("count").data(count.to_string())),
            (store, realm, false),
        ))
    });
    Sse::new(counts)
        .keep_alive(KeepAlive::default())
        .into_response()
}
