//! Server-sent events for the dashboard: a realm's session count when it changes, so the
//! sessions page can say that sessions came or went since it loaded. The store's change feed
//! says when (on a shared store, for changes made through any server); a stream sends the count
//! at once, then after each change of its realm, at most every [`AT_MOST_EVERY`] however often
//! the realm changes, and every [`FALLBACK`] without being told (for a change whose announcement
//! was lost). Streams end when the server stops, so an open dashboard tab never holds up a
//! shutdown, and when their administrator's dashboard session does (see [`signed_out`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use app::server_fns::auth::ssr::CookiePolicy;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{stream, StreamExt};
use service::SessionService;
use sessions::store::{ChangeSubscription, SessionStore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The least time between two counts of one stream: changes within it make one count.
const AT_MOST_EVERY: Duration = Duration::from_millis(300);
/// The longest a stream goes without a count, changes or not.
const FALLBACK: Duration = Duration::from_secs(30);
/// The longest a stream goes without checking that its administrator is still signed in.
const SIGN_IN_CHECK_EVERY: Duration = Duration::from_secs(15);

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

    /// The dashboard session token of the request, if it is a signed-in administrator's.
    async fn signed_in(&self, headers: &HeaderMap) -> Option<String> {
        self.admin(headers).await?;
        self.cookie.token(headers)
    }

    /// Whether the dashboard session `token` is still a signed-in, enabled administrator's. A
    /// store that cannot tell counts as no: the stream ends and the browser asks again.
    async fn still_signed_in(&self, token: &str) -> bool {
        matches!(
            self.service.dashboard_admin(token, false).await,
            Ok(Some(_))
        )
    }
}

/// Resolves once the administrator whose dashboard session `token` is has signed out, was
/// disabled, had their password changed (each ends their dashboard sessions), or the session
/// ran out. Checked at once whenever administrators' dashboard sessions end (the store's change
/// feed, on every server of a shared store, says so: `changes`, subscribed before the check
/// that let the stream open) and every [`SIGN_IN_CHECK_EVERY`] besides.
async fn signed_out(live: LiveState, token: String, changes: ChangeSubscription) {
    let mut changes = Some(changes);
    loop {
        let check = tokio::time::sleep(SIGN_IN_CHECK_EVERY);
        tokio::pin!(check);
        loop {
            let Some(feed) = &mut changes else {
                check.await;
                break;
            };
            tokio::select! {
                change = feed.next() => match change {
                    Some(c) if c.concerns(service::admins::ADMIN_REALM) => break,
                    Some(_) => {}
                    None => changes = None,
                },
                () = &mut check => break,
            }
        }
        if !live.still_signed_in(&token).await {
            return;
        }
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
    // Subscribed before the sign-in is checked: no session ending after the check goes unseen.
    let admin_changes = live.service.store().changes().subscribe();
    let Some(token) = live.signed_in(&headers).await else {
        return not_signed_in();
    };
    if let Err(e) = live.service.get_realm(&realm).await {
        return api::error::ApiError::from(e).into_response();
    }
    let store = live.service.store().clone();
    // Subscribed before the first count is read: no change after that read goes unseen.
    let watch = RealmWatch {
        changes: Some(store.changes().subscribe()),
        store,
        realm,
        last_sent: None,
    };
    let counts = stream::unfold(watch, |mut watch| async move {
        watch.due().await;
        let store = &watch.store;
        let count = store.get_realm(&watch.realm).await.ok()?.session_count;
        watch.last_sent = Some(Instant::now());
        Some((
            Ok::<_, Infallible>(Event::default().event("count").data(count.to_string())),
            watch,
        ))
    })
    .take_until(live.shutdown.clone().cancelled_owned())
    .take_until(signed_out(live.clone(), token, admin_changes));
    Sse::new(counts)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One stream's realm and what it heard of its changes.
struct RealmWatch {
    store: Arc<dyn SessionStore>,
    realm: String,
    /// `None` once the feed is gone: the fallback alone then.
    changes: Option<ChangeSubscription>,
    /// When the last count was sent; `None` before the first.
    last_sent: Option<Instant>,
}

impl RealmWatch {
    /// Waits until the next count is due: at once for the first; then when the realm changed
    /// (or anything may have), no sooner than [`AT_MOST_EVERY`] after the last count, the changes
    /// until then included; or [`FALLBACK`] after the last count.
    async fn due(&mut self) {
        let Some(last) = self.last_sent else {
            return;
        };
        let fallback = tokio::time::sleep_until(last + FALLBACK);
        tokio::pin!(fallback);
        loop {
            let Some(changes) = &mut self.changes else {
                fallback.await;
                return;
            };
            let change = tokio::select! {
                change = changes.next() => change,
                () = &mut fallback => return,
            };
            match change {
                Some(c) if c.concerns(&self.realm) => break,
                Some(_) => {}
                None => self.changes = None,
            }
        }
        tokio::time::sleep_until(last + AT_MOST_EVERY).await;
        // The count about to be read covers what changed until now.
        if let Some(changes) = &mut self.changes {
            while changes.try_next().is_some() {}
        }
    }
}
