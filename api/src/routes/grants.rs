//! Grants: the identity provider records tokens and consents (scope `sessions:issue`) and asks
//! whether a token is still active; administrators list a subject's or a session's grants.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sessions::{Grant, GrantOwner, Introspection, NewGrant};
use utoipa::{IntoParams, ToSchema};

use super::blocking;
use crate::auth::{Admin, Issuer};
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult, ErrorBody, RealmPath};
use crate::ApiState;

/// A token to introspect (RFC 7662), as a form (`token=...`) or as JSON. Other fields, such as
/// `token_type_hint`, are ignored as RFC 7662 allows.
#[derive(Deserialize, ToSchema)]
pub struct IntrospectRequest {
    pub token: String,
}

/// Whose grants to list: give exactly one.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GrantFilter {
    /// Every live grant of this subject.
    pub subject_id: Option<String>,
    /// Every live grant issued under this session.
    pub sid: Option<String>,
}

/// Live grants, soonest-created first.
#[derive(Serialize, ToSchema)]
pub struct GrantList {
    pub grants: Vec<Grant>,
}

/// Record a refresh token, reference access token, authorization code or consent. Tokens are
/// stored only as hashes; a grant naming a session must name a live session of the same subject.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/grants", tag = "grants",
    params(("realm" = String, Path)), request_body = NewGrant,
    responses((status = 201, body = Grant), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:issue"])))]
pub async fn create_grant(
    _caller: Issuer,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiJson(new): ApiJson<NewGrant>,
) -> ApiResult<(StatusCode, Json<Grant>)> {
    let grant = blocking(move || state.store.create_grant(&realm, &new, Utc::now())).await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

/// Whether a token is active (RFC 7662 shape): `{"active": false}` once it is revoked or expired.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/grants/introspect", tag = "grants",
    params(("realm" = String, Path)), request_body = IntrospectRequest,
    responses((status = 200, body = Introspection), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:issue"])))]
pub async fn introspect(
    _caller: Issuer,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    request: Request,
) -> ApiResult<Json<Introspection>> {
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body: IntrospectRequest = if form {
        axum::Form::from_request(request, &())
            .await
            .map(|f| f.0)
            .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", r.body_text()))?
    } else {
        ApiJson::from_request(request, &()).await?.0
    };
    let grant = state.store.introspect(&realm, &body.token, Utc::now())?;
    Ok(Json(
        grant
            .as_ref()
            .map_or_else(Introspection::inactive, Introspection::of),
    ))
}

/// The live grants of a subject or of a session.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/grants", tag = "grants",
    params(("realm" = String, Path), GrantFilter),
    responses((status = 200, body = GrantList), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn list_grants(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiQuery(filter): ApiQuery<GrantFilter>,
) -> ApiResult<Json<GrantList>> {
    let owner = match (filter.subject_id, filter.sid) {
        (Some(subject), None) => GrantOwner::Subject(subject),
        (None, Some(sid)) => GrantOwner::Session(sid),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "give exactly one of subject_id or sid",
            ))
        }
    };
    let grants = blocking(move || state.store.list_grants(&realm, &owner, Utc::now())).await?;
    Ok(Json(GrantList { grants }))
}
