//! Administration of sessions (scope `sessions:admin`): list, inspect, revoke.

use axum::extract::State;
use axum::Json;
use sessions::{
    QueryResult, RemoveAllSessions, RemoveOutcome, RemoveSessions, Session, SessionQuery,
};

use crate::auth::Admin;
use crate::error::{ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody, RealmPath, SessionPath};
use crate::ApiState;

/// One page of a realm's sessions, filtered, sorted and counted.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/sessions", tag = "administration",
    params(("realm" = String, Path),
        ("subject_id" = Option<String>, Query, description = "Exact subject id"),
        ("sid" = Option<String>, Query, description = "Exact session id"),
        ("display_name" = Option<String>, Query, description = "Each word prefixes a word of the name, any case"),
        ("client_id" = Option<String>, Query, description = "Sessions this client joined"),
        ("count" = Option<u32>, Query, description = "Page size, 1 to 1000, default 25"),
        ("sort" = Option<String>, Query, description = "created (default, newest first), last_access or expires"),
        ("results_token" = Option<String>, Query, description = "Token of the page last seen"),
        ("prior" = Option<bool>, Query, description = "With a token: the previous page")),
    responses((status = 200, body = QueryResult), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn list_sessions(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiQuery(query): ApiQuery<SessionQuery>,
) -> ApiResult<Json<QueryResult>> {
    Ok(Json(state.service.query(&realm, query).await?))
}

/// One session by its id.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/sessions/{sid}", tag = "administration",
    params(("realm" = String, Path), ("sid" = String, Path)),
    responses((status = 200, body = Session), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn get_session(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiPath(ids): ApiPath<SessionPath>,
) -> ApiResult<Json<Session>> {
    Ok(Json(state.service.get_session(&realm, &ids.sid)?))
}

/// End selected sessions (`sids`, answered one by one) or those matching `subject_id`/`sid`.
/// With `dry_run`, only reports what would happen. On disk when it answers.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/sessions/remove", tag = "administration",
    params(("realm" = String, Path)), request_body = RemoveSessions,
    responses((status = 200, body = RemoveOutcome), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn remove_sessions(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiJson(req): ApiJson<RemoveSessions>,
) -> ApiResult<Json<RemoveOutcome>> {
    Ok(Json(
        state.service.remove(&realm, req, &caller.actor()).await?,
    ))
}

/// End every session of the realm. On disk when it answers.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/sessions/logout-all", tag = "administration",
    params(("realm" = String, Path)), request_body = RemoveAllSessions,
    responses((status = 200, body = RemoveOutcome), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn logout_all(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiJson(req): ApiJson<RemoveAllSessions>,
) -> ApiResult<Json<RemoveOutcome>> {
    Ok(Json(
        state
            .service
            .remove_all(&realm, req, &caller.actor())
            .await?,
    ))
}
