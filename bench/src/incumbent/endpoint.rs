//! The incumbent behind HTTP: a minimal axum endpoint over [`DuendeStore`], taking the same
//! request bodies and query parameters as our API, so both sides pay for HTTP and JSON alike.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::store::{DuendeStore, NewServerSideSession, SessionQuery, StoreError};
use super::ticket::{self, TICKET_BYTES};
use crate::dataset::IDLE_TIMEOUT;

/// Answers the endpoint's start-up check.
pub const HEALTH_PATH: &str = "/healthz";

#[derive(Clone)]
struct Endpoint {
    store: DuendeStore,
    sweep: Arc<Sweep>,
}

/// The cleanup job's progress.
#[derive(Default)]
struct Sweep {
    running: AtomicBool,
    removed: AtomicU64,
    seconds: Mutex<Option<f64>>,
}

/// `POST /validate`, `POST /sessions`, `GET /sessions`, `GET /count`, `POST /remove` (the
/// session rows alone), `POST /remove-sessions` (with grants and notifications), `POST /sweep`
/// (start the cleanup job) and `GET /sweep` (its progress).
pub fn router(store: DuendeStore) -> Router {
    Router::new()
        .route(HEALTH_PATH, get(|| async {}))
        .route("/validate", post(validate))
        .route("/sessions", post(create).get(query))
        .route("/count", get(count))
        .route("/remove", post(remove))
        .route("/remove-sessions", post(remove_sessions))
        .route("/sweep", post(start_sweep).get(sweep_status))
        .with_state(Endpoint {
            store,
            sweep: Arc::default(),
        })
}

/// A store failure: a 500 (the load generator counts it as an error).
struct Failure(StoreError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.0.to_string()).into_response()
    }
}

impl<E: Into<StoreError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.into())
    }
}

#[derive(Deserialize)]
struct ValidateRequest {
    token: String,
    #[serde(default)]
    refresh: bool,
}

/// The cookie handler's `RetrieveAsync` (`GetAsync` by key) and, with `refresh`, its sliding
/// renewal (`UpdateAsync`).
async fn validate(
    State(e): State<Endpoint>,
    Json(req): Json<ValidateRequest>,
) -> Result<Response, Failure> {
    let now = Utc::now();
    let Some(session) = e.store.get(&req.token).await? else {
        return Ok(Json(json!({"valid": false})).into_response());
    };
    let mut expires = session.expires;
    if expires.is_some_and(|x| x <= now) {
        return Ok(Json(json!({"valid": false})).into_response());
    }
    if req.refresh {
        let renewed = now + IDLE_TIMEOUT;
        e.store.renew(&session, now, renewed).await?;
        expires = Some(renewed);
    }
    Ok(Json(json!({
        "valid": true,
        "sid": session.session_id,
        "subject_id": session.subject_id,
        "expires_at": expires,
    }))
    .into_response())
}

/// The body our API takes; Duende's ticket store keeps subject, session id and display name,
/// and the ticket the client list.
#[derive(Deserialize)]
struct CreateRequest {
    subject_id: String,
    display_name: Option<String>,
    #[serde(default)]
    client_ids: Vec<String>,
}

/// `StoreAsync` of a new ticket: a random key and session id, the protected ticket, `CreateAsync`.
async fn create(
    State(e): State<Endpoint>,
    Json(req): Json<CreateRequest>,
) -> Result<Response, Failure> {
    let now = Utc::now();
    let key = random_hex(32)?;
    let session_id = random_hex(16)?;
    let data = ticket::encode(&req.client_ids, &random_bytes(TICKET_BYTES)?);
    let id = e
        .store
        .create(&NewServerSideSession {
            key: &key,
            subject_id: &req.subject_id,
            session_id: &session_id,
            display_name: req.display_name.as_deref(),
            created: now,
            expires: now + IDLE_TIMEOUT,
            data: &data,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "key": key, "sid": session_id})),
    )
        .into_response())
}

/// `QuerySessionsAsync`.
async fn query(
    State(e): State<Endpoint>,
    Query(q): Query<SessionQuery>,
) -> Result<Response, Failure> {
    Ok(Json(e.store.query(&q).await?).into_response())
}

/// The row count.
async fn count(State(e): State<Endpoint>) -> Result<Response, Failure> {
    Ok(Json(json!({"total_count": e.store.count().await?})).into_response())
}

#[derive(Deserialize)]
struct RemoveRequest {
    subject_id: String,
    sid: Option<String>,
}

/// `DeleteSessionsAsync` by subject (and session id): the session rows alone.
async fn remove(
    State(e): State<Endpoint>,
    Json(req): Json<RemoveRequest>,
) -> Result<Response, Failure> {
    let removed = e.store.remove(&req.subject_id, req.sid.as_deref()).await?;
    Ok(Json(json!({"removed": removed})).into_response())
}

/// A subject whose sessions end (our API's body; its `reason` is not Duende's).
#[derive(Deserialize)]
struct RemoveSessionsRequest {
    subject_id: String,
}

/// `RemoveSessionsAsync` by subject with every flag on: grants, notifications and sessions.
async fn remove_sessions(
    State(e): State<Endpoint>,
    Json(req): Json<RemoveSessionsRequest>,
) -> Result<Response, Failure> {
    Ok(Json(e.store.remove_sessions(&req.subject_id).await?).into_response())
}

/// Starts the cleanup job (`ServerSideSessionCleanupHost`): batches until one comes back short.
async fn start_sweep(State(e): State<Endpoint>) -> StatusCode {
    if e.sweep.running.swap(true, Ordering::SeqCst) {
        return StatusCode::CONFLICT;
    }
    e.sweep.removed.store(0, Ordering::SeqCst);
    *e.sweep.seconds.lock().unwrap_or_else(|p| p.into_inner()) = None;
    tokio::spawn(async move {
        let started = Instant::now();
        loop {
            match e.store.remove_expired_batch(Utc::now()).await {
                Ok(n) => {
                    e.sweep.removed.fetch_add(n as u64, Ordering::SeqCst);
                    if (n as i64) < super::store::CLEANUP_BATCH {
                        break;
                    }
                }
                Err(err) => {
                    eprintln!("incumbent cleanup failed: {err}");
                    break;
                }
            }
        }
        *e.sweep.seconds.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(started.elapsed().as_secs_f64());
        e.sweep.running.store(false, Ordering::SeqCst);
    });
    StatusCode::ACCEPTED
}

/// The cleanup job's progress: rows removed, and its duration once done.
async fn sweep_status(State(e): State<Endpoint>) -> Json<serde_json::Value> {
    let seconds = *e.sweep.seconds.lock().unwrap_or_else(|p| p.into_inner());
    Json(json!({
        "running": e.sweep.running.load(Ordering::SeqCst),
        "removed": e.sweep.removed.load(Ordering::SeqCst),
        "seconds": seconds,
    }))
}

fn random_bytes(n: usize) -> Result<Vec<u8>, StoreError> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// `CryptoRandom.CreateUniqueId` in hex.
fn random_hex(bytes: usize) -> Result<String, StoreError> {
    Ok(random_bytes(bytes)?
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect())
}
