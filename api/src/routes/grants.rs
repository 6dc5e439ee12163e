//! Grants: the identity provider records tokens and consents (scope `sessions:issue`) and asks
//! whether a token is still active; administrators list a subject's or a session's grants.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use sessions::{Grant, GrantOwner, Introspection, NewGrant};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Admin, Issuer};
use crate::error::{ApiError, ApiFormOrJson, ApiJson, ApiQuery, ApiResult, ErrorBody, RealmPath};
use crate::ApiState;

/// A token to introspect (RFC 7662), as a form (`token=...`) or as JSON. Other fields, such as
/// `token_type_hint`, are ignored as RFC 7662 allows.
#[derive(Deserialize, ToSchema)]
pub struct IntrospectRequest {
    pub token: String,
}

/// A token to revoke (RFC 7009), as a form (`token=...&token_type_hint=...`) or as JSON.
#[derive(Deserialize, ToSchema)]
pub struct RevokeTokenRequest {
    pub token: String,
    /// `refresh_token` or `access_token`; accepted and not needed (every kind is looked up).
    #[allow(dead_code)]
    pub token_type_hint: Option<String>,
}

/// What revoking a token did.
#[derive(Serialize, ToSchema)]
pub struct RevokeTokenOutcome {
    /// Whether a live grant was revoked; false for unknown, expired or already revoked tokens.
    pub revoked: bool,
}

/// Every grant of a subject to revoke, optionally only those of some clients.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeSubjectGrants {
    /// Not blank, 1 to 255 bytes, no control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub subject_id: String,
    /// Only these clients' grants (each not blank, 1 to 255 bytes, no control characters);
    /// absent for all.
    pub client_ids: Option<Vec<String>>,
    /// Why, for the audit log (at most 1000 bytes).
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

/// What revoking a subject's grants did.
#[derive(Serialize, ToSchema)]
pub struct GrantsRevoked {
    pub grants_revoked: u64,
}

/// Whose grants to list: give exactly one.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GrantFilter {
    /// Every live grant of this subject (1 to 255 bytes, no control characters). Give either
    /// this or `sid`.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub subject_id: Option<String>,
    /// Every live grant issued under this session (an id that names no session is a 404). Give
    /// either this or `subject_id`.
    #[param(min_length = 1)]
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
    params(RealmPath), request_body = NewGrant,
    responses((status = 201, body = Grant),
        (status = 409, body = ErrorBody, description = "The token is already recorded (`conflict`)")),
    security(("api_key" = ["sessions:issue"])))]
pub async fn create_grant(
    _caller: Issuer,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiJson(new): ApiJson<NewGrant>,
) -> ApiResult<(StatusCode, Json<Grant>)> {
    let grant = state.service.create_grant(&realm, new).await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

/// Whether a token is active (RFC 7662 shape): `{"active": false}` once it is revoked or expired.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/grants/introspect", tag = "grants",
    params(RealmPath),
    request_body(content((IntrospectRequest = "application/x-www-form-urlencoded"), (IntrospectRequest = "application/json"))),
    responses((status = 200, body = Introspection)),
    security(("api_key" = ["sessions:issue"])))]
pub async fn introspect(
    _caller: Issuer,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiFormOrJson(body): ApiFormOrJson<IntrospectRequest>,
) -> ApiResult<Json<Introspection>> {
    let grant = state.service.introspect(&realm, &body.token).await?;
    Ok(Json(
        grant
            .as_ref()
            .map_or_else(Introspection::inactive, Introspection::of),
    ))
}

/// Revoke a token (RFC 7009): its grant ends at once and introspection answers
/// `{"active": false}`. Answers 200 whether or not the token was known, as RFC 7009 says.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/grants/revoke", tag = "grants",
    params(RealmPath),
    request_body(content((RevokeTokenRequest = "application/x-www-form-urlencoded"), (RevokeTokenRequest = "application/json"))),
    responses((status = 200, body = RevokeTokenOutcome)),
    security(("api_key" = ["sessions:issue"])))]
pub async fn revoke_token(
    caller: Issuer,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiFormOrJson(body): ApiFormOrJson<RevokeTokenRequest>,
) -> ApiResult<Json<RevokeTokenOutcome>> {
    let revoked = state
        .service
        .revoke_token(&realm, &body.token, &caller.actor())
        .await?
        .is_some();
    Ok(Json(RevokeTokenOutcome { revoked }))
}

/// Revoke every grant of a subject (tokens with or without a session, and consents), within
/// the client scope. Durable and audited when it answers.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/grants/revoke-subject", tag = "grants",
    params(RealmPath), request_body = RevokeSubjectGrants,
    responses((status = 200, body = GrantsRevoked)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn revoke_subject_grants(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiJson(body): ApiJson<RevokeSubjectGrants>,
) -> ApiResult<Json<GrantsRevoked>> {
    let grants_revoked = state
        .service
        .revoke_subject_grants(
            &realm,
            &body.subject_id,
            body.client_ids,
            body.reason,
            &caller.actor(),
        )
        .await?;
    Ok(Json(GrantsRevoked { grants_revoked }))
}

/// The live grants of a subject or of a session.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/grants", tag = "grants",
    params(RealmPath, GrantFilter),
    responses((status = 200, body = GrantList)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
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
    let grants = state.service.list_grants(&realm, owner).await?;
    Ok(Json(GrantList { grants }))
}
