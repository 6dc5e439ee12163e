//! OpenID Shared Signals: the transmitter's metadata (public), the receivers' endpoints (scope
//! `ssf:receiver`: their one stream, its status, verification and poll) and the administrators'
//! view of every stream (scope `sessions:admin`; `sessions:read` reads).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use service::signals::config::{
    PollRequest, PollResponse, StreamConfiguration, StreamRequest, StreamStatusBody, StreamSummary,
    TransmitterMetadata, VerificationRequest,
};
use sessions::StreamStatus;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Admin, Receiver};
use crate::error::{ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::ApiState;

/// The stream a query names.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// The stream's id.
    #[param(max_length = 64)]
    pub stream_id: String,
}

/// The stream a query may name (all of the receiver's without it).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OptionalStreamQuery {
    /// The stream's id; without it, every stream of the receiver (none or one).
    #[param(max_length = 64)]
    pub stream_id: Option<String>,
}

/// One stream when a `stream_id` was given, else the list of the receiver's streams.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum StreamRead {
    One(Box<StreamConfiguration>),
    All(Vec<StreamConfiguration>),
}

/// The path of a route naming one stream.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StreamPath {
    /// The stream's id.
    #[param(max_length = 64)]
    pub stream_id: String,
}

/// A status an administrator sets.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminStreamStatus {
    pub status: StreamStatus,
    /// Why; the receiver reads it in the stream-updated event (at most 255 characters).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Every stream, as administrators see it.
#[derive(Serialize, ToSchema)]
pub struct StreamList {
    pub streams: Vec<StreamSummary>,
}

/// The transmitter's metadata (OpenID Shared Signals Framework 1.0, section 7).
#[utoipa::path(get, path = "/.well-known/ssf-configuration", tag = "shared signals",
    responses((status = 200, body = TransmitterMetadata)))]
pub async fn metadata(State(state): State<ApiState>) -> Json<TransmitterMetadata> {
    Json(state.service.ssf_metadata())
}

/// Create the receiver's stream (one per API key). Without `delivery`, the stream is polled.
#[utoipa::path(post, path = "/api/v1/ssf/streams", tag = "shared signals",
    request_body = StreamRequest,
    responses((status = 201, body = StreamConfiguration),
        (status = 409, body = ErrorBody, description = "The key has a stream already (`conflict`)")),
    security(("api_key" = ["ssf:receiver"])))]
pub async fn create_stream(
    caller: Receiver,
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<StreamRequest>,
) -> ApiResult<(StatusCode, Json<StreamConfiguration>)> {
    let created = state.service.create_stream(&caller.key, request).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Read the receiver's stream, or (without `stream_id`) the list of its streams.
#[utoipa::path(get, path = "/api/v1/ssf/streams", tag = "shared signals",
    params(OptionalStreamQuery),
    responses((status = 200, body = StreamRead),
        (status = 404, body = ErrorBody, description = "No such stream of the receiver (`stream_not_found`)")),
    security(("api_key" = ["ssf:receiver"])))]
pub async fn read_streams(
    caller: Receiver,
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<OptionalStreamQuery>,
) -> ApiResult<Json<StreamRead>> {
    let id = query.stream_id.as_deref();
    let mut found = state.service.read_streams(&caller.key, id).await?;
    Ok(Json(match (id, found.pop()) {
        (Some(_), Some(one)) => StreamRead::One(Box::new(one)),
        (_, one) => StreamRead::All(one.into_iter().collect()),
    }))
}

/// Update the receiver's stream: the members given change, the others stay.
#[utoipa::path(patch, path = "/api/v1/ssf/streams", tag = "shared signals",
    request_body = StreamRequest,
    responses((status = 200, body = StreamConfiguration),
        (status = 404, body = ErrorBody, description = "No such stream of the receiver (`stream_not_found`)")),
    security(("api_key" = ["ssf:receiver"])))]
pub async fn update_stream(
    caller: Receiver,
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<StreamRequest>,
) -> ApiResult<Json<StreamConfiguration>> {
    let updated = state
        .service
        .update_stream(&caller.key, request, false)
        .await?;
    Ok(Json(updated))
}

/// Replace the receiver's stream: the receiver-supplied members left out are deleted.
#[utoipa::path(put, path = "/api/v1/ssf/streams", tag = "shared signals",
    request_body = StreamRequest,
    responses((status = 200, body = StreamConfiguration),
        (status = 404, body = ErrorBody, description = "No such stream of the receiver (`stream_not_found`)")),
    security(("api_key" = ["ssf:receiver"])))]
pub async fn replace_stream(
    caller: Receiver,
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<StreamRequest>,
) -> ApiResult<Json<StreamConfiguration>> {
    let replaced = state
        .service
        .update_stream(&caller.key, request, true)
        .await?;
    Ok(Json(replaced))
}

/// Delete the receiver's stream; what it had queued is given up.
#[utoipa::path(delete, path = "/api/v1/ssf/streams", tag = "shared signals",
    params(StreamQuery),
    responses((status = 204),
        (status = 404, body = ErrorBody, description = "No such stream of the receiver (`stream_not_found`)")),
    security(("api_key" = ["ssf:receiver"])))]
pub async fn delete_stream(
    caller: Receiver,
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> ApiResult<StatusCode> {
    state
        .service
        .delete_stream(&caller.key, &query.stream_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The status of the receiver's stream.
#[utoipa::path(get, path = "/api/v1/ssf/streams/status", tag = "shared signals",
    params(StreamQuery),
    responses((status = 200, body = StreamStatusBody),
        (status = 404, body = ErrorBody, description = "No such stream of the receiver (`stream_not_found`)")),
    security(("api_key" = ["ssf:receiver"])))]
pub async fn stream_status(
    caller: Receiver,
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> ApiResult<Json<StreamStatusBody>> {
    let status = state
        .service
        .stream_status(&caller.key, &query.stream_id)
        .await?;
    Ok(Json(status))
}

/// Enable, pause (events held) or disable (events dropped) the receiver's stream.
#[utoipa::path(post, path = "/api/v1/ssf/streams/status", tag = "shared signals",
    request_body = StreamStatusBody,
    responses((status = 200, body = StreamStatusBody),
        (status = 404, body = ErrorBody, description = "No such stream of the receiver (`stream_not_found`)")),
    security(("api_key" = ["ssf:receiver"])))]
pub async fn set_stream_status(
    caller: Receiver,
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<StreamStatusBody>,
) -> ApiResult<Json<StreamStatusBody>> {
    let status = state.service.set_stream_status(&caller.key, body).await?;
    Ok(Json(status))
}

/// Ask for a verification event on the receiver's stream.
#[utoipa::path(post, path = "/api/v1/ssf/streams/verify", tag = "shared signals",
    request_body = VerificationRequest,
    responses((status = 204),
        (status = 404, body = ErrorBody, description = "No such stream of the receiver (`stream_not_found`)"),
        (status = 429, body = ErrorBody, description = "Sooner than `min_verification_interval` after the last (`too_many_requests`)")),
    security(("api_key" = ["ssf:receiver"])))]
pub async fn verify_stream(
    caller: Receiver,
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<VerificationRequest>,
) -> ApiResult<StatusCode> {
    state.service.verify_stream(&caller.key, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Poll the receiver's stream (RFC 8936): acknowledge SETs, report bad ones, fetch waiting ones.
#[utoipa::path(post, path = "/api/v1/ssf/poll", tag = "shared signals",
    request_body = PollRequest,
    responses((status = 200, body = PollResponse),
        (status = 404, body = ErrorBody, description = "The key has no stream (`stream_not_found`)")),
    security(("api_key" = ["ssf:receiver"])))]
pub async fn poll(
    caller: Receiver,
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<PollRequest>,
) -> ApiResult<Json<PollResponse>> {
    let answer = state.service.poll_stream(&caller.key, request).await?;
    Ok(Json(answer))
}

/// Every Shared Signals stream: its receiver, configuration and status.
#[utoipa::path(get, path = "/api/v1/signal-streams", tag = "shared signals",
    responses((status = 200, body = StreamList)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn list_streams(
    caller: Admin,
    State(state): State<ApiState>,
) -> ApiResult<Json<StreamList>> {
    let streams = state.service.list_signal_streams(&caller.actor()).await?;
    Ok(Json(StreamList { streams }))
}

/// Set a stream's status as an administrator (the receiver cannot change it back); the
/// receiver hears of it through a stream-updated event.
#[utoipa::path(post, path = "/api/v1/signal-streams/{stream_id}/status", tag = "shared signals",
    params(StreamPath),
    request_body = AdminStreamStatus,
    responses((status = 200, body = StreamSummary)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn set_status_as_admin(
    caller: Admin,
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<StreamPath>,
    ApiJson(body): ApiJson<AdminStreamStatus>,
) -> ApiResult<Json<StreamSummary>> {
    let summary = state
        .service
        .set_signal_stream_status(&caller.actor(), &path.stream_id, body.status, body.reason)
        .await?;
    Ok(Json(summary))
}
