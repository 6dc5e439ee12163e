//! The identity provider's data plane (scope `sessions:issue`): create, validate, end sessions,
//! record clients, and read or set a session's whitelisted properties with its token.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use sessions::{CreatedSession, NewSession, Session};
use utoipa::ToSchema;

use crate::auth::Issuer;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody, RealmPath, SessionPath};
use crate::ApiState;

/// Header carrying a session's secret token where a request acts as that session.
pub const SESSION_TOKEN_HEADER: &str = "x-session-token";

/// A token to check.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    pub token: String,
    /// Extend the idle expiry (written at most once per the realm's update interval).
    #[serde(default = "yes")]
    pub refresh: bool,
    /// `slim` (default): who the session is and until when; `full`: the whole session too, with
    /// only the properties the realm's whitelist names.
    #[serde(default)]
    pub fields: ValidateFields,
    /// The address the holder's request came from. A refresh written (at most once per the
    /// realm's update interval) from another address than the session's latest keeps it as
    /// `last_ip`, placed (`last_network`) when the server has GeoIP databases. At most 255
    /// bytes, no control characters; empty or blank: none.
    #[serde(default)]
    #[schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub ip: Option<String>,
}

fn yes() -> bool {
    true
}

/// How much a validation answers.
#[derive(Deserialize, ToSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ValidateFields {
    /// `sid`, `subject_id` and `expires_at`: what a request needs to be let through.
    #[default]
    Slim,
    /// Also the whole `session`.
    Full,
}

/// Whether the token names a live session; who it is and until when it is valid (the earlier of
/// its idle and absolute expiry); with `fields: full`, the whole session.
#[derive(Serialize, ToSchema)]
pub struct ValidateResponse {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
}

impl ValidateResponse {
    fn of(session: Option<Session>, fields: ValidateFields) -> Self {
        let Some(s) = session else {
            return Self {
                valid: false,
                sid: None,
                subject_id: None,
                expires_at: None,
                session: None,
            };
        };
        let expires_at = Some(s.effective_expiry());
        match fields {
            ValidateFields::Slim => Self {
                valid: true,
                sid: Some(s.sid),
                subject_id: Some(s.subject_id),
                expires_at,
                session: None,
            },
            ValidateFields::Full => Self {
                valid: true,
                sid: Some(s.sid.clone()),
                subject_id: Some(s.subject_id.clone()),
                expires_at,
                session: Some(s),
            },
        }
    }
}

/// A session's secret token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
}

/// Whether a session was ended.
#[derive(Serialize, ToSchema)]
pub struct LogoutResponse {
    pub logged_out: bool,
}

/// A client that joined a session.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddClientRequest {
    /// 1 to 255 bytes, no control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub client_id: String,
}

/// Whitelisted properties of a session.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Properties {
    /// Property values (names 1 to 255 bytes, values at most 255 bytes, neither with control
    /// characters); in an update, an empty value removes the property. A session holds at most
    /// 64 properties.
    pub properties: BTreeMap<String, String>,
}

fn session_token(headers: &HeaderMap) -> ApiResult<String> {
    headers
        .get(SESSION_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_session_token",
                "send the session's token in X-Session-Token",
            )
        })
}

/// Start a session.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/sessions", tag = "data plane",
    params(RealmPath), request_body = NewSession,
    responses((status = 201, body = CreatedSession, description = "The session and its secret token, shown only here"),
        (status = 409, body = ErrorBody, description = "The subject holds the realm's maximum number of sessions and the realm denies more (`quota_exceeded`), or evicting its oldest session collided with a concurrent change (`conflict`)")),
    security(("api_key" = ["sessions:issue"])))]
pub async fn create_session(
    _caller: Issuer,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiJson(new): ApiJson<NewSession>,
) -> ApiResult<(StatusCode, Json<CreatedSession>)> {
    let created = state.service.create_session(&realm, new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Check a token; with `refresh`, count it as activity.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/sessions/validate", tag = "data plane",
    params(RealmPath), request_body = ValidateRequest,
    responses((status = 200, body = ValidateResponse)),
    security(("api_key" = ["sessions:issue"])))]
pub async fn validate_session(
    _caller: Issuer,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> ApiResult<Json<ValidateResponse>> {
    let session = state
        .service
        .validate(&realm, &req.token, req.refresh, req.ip.as_deref())
        .await?;
    Ok(Json(ValidateResponse::of(session, req.fields)))
}

/// End the token's session. On disk when it answers.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/sessions/logout", tag = "data plane",
    params(RealmPath), request_body = TokenRequest,
    responses((status = 200, body = LogoutResponse),
        (status = 409, body = ErrorBody, description = "Ending a session collided with a concurrent change to its grants; try again (`conflict`)")),
    security(("api_key" = ["sessions:issue"])))]
pub async fn logout_session(
    _caller: Issuer,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiJson(req): ApiJson<TokenRequest>,
) -> ApiResult<Json<LogoutResponse>> {
    let logged_out = state.service.logout(&realm, &req.token).await?;
    Ok(Json(LogoutResponse { logged_out }))
}

/// Record that a client joined the session.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/sessions/{sid}/clients", tag = "data plane",
    params(RealmPath, SessionPath), request_body = AddClientRequest,
    responses((status = 204)),
    security(("api_key" = ["sessions:issue"])))]
pub async fn add_client(
    _caller: Issuer,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiPath(ids): ApiPath<SessionPath>,
    ApiJson(req): ApiJson<AddClientRequest>,
) -> ApiResult<StatusCode> {
    state
        .service
        .add_client(&realm, &ids.sid, &req.client_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read the whitelisted properties of the session whose token is in `X-Session-Token`.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/sessions/current/properties", tag = "data plane",
    params(RealmPath, ("X-Session-Token" = String, Header, description = "The session's secret token")),
    responses((status = 200, body = Properties)),
    security(("api_key" = ["sessions:issue"])))]
pub async fn read_properties(
    _caller: Issuer,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    headers: HeaderMap,
) -> ApiResult<Json<Properties>> {
    let token = session_token(&headers)?;
    let properties = state.service.get_properties(&realm, &token).await?;
    Ok(Json(Properties { properties }))
}

/// Set whitelisted properties of the session whose token is in `X-Session-Token`; others are 403.
#[utoipa::path(patch, path = "/api/v1/realms/{realm}/sessions/current/properties", tag = "data plane",
    params(RealmPath, ("X-Session-Token" = String, Header, description = "The session's secret token")), request_body = Properties,
    responses((status = 200, body = Properties),
        (status = 403, body = ErrorBody, description = "The key lacks the scope (`insufficient_scope`), or a property is not in the realm's whitelist (`property_not_allowed`)")),
    security(("api_key" = ["sessions:issue"])))]
pub async fn update_properties(
    _caller: Issuer,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    headers: HeaderMap,
    ApiJson(req): ApiJson<Properties>,
) -> ApiResult<Json<Properties>> {
    let token = session_token(&headers)?;
    let properties = state
        .service
        .set_properties(&realm, &token, req.properties)
        .await?;
    Ok(Json(Properties { properties }))
}
