//! Administration of sessions (scope `sessions:admin`): list, inspect, export, end.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use service::ExportFormat;
use sessions::{
    EndAllSessions, EndOutcome, EndSessions, EndedPage, EndedQuery, QueryResult, Session,
    SessionFilters, SessionQuery, SortKey,
};

use crate::export::{ended_export_response, export_response, EndedExportParams, ExportParams};

use crate::auth::Admin;
use crate::error::{ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody, RealmPath, SessionPath};
use crate::ApiState;

/// One page of a realm's sessions, filtered, sorted and counted.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/sessions", tag = "administration",
    params(RealmPath, SessionFilters,
        ("count" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, 1 to 1000, default 25"),
        ("sort" = Option<SortKey>, Query, description = "created (default, newest first), last_access or expires"),
        ("results_token" = Option<String>, Query,
            description = "The `results_token` of the page last seen, for the same filters, sort and page size; any other token is a 400"),
        ("prior" = Option<bool>, Query, description = "With a `results_token`: the previous page (without one it is a 400)")),
    responses((status = 200, body = QueryResult)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn list_sessions(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiQuery(query): ApiQuery<SessionQuery>,
) -> ApiResult<Json<QueryResult>> {
    Ok(Json(state.service.query(&realm, query).await?))
}

/// One page of a realm's ended sessions, newest end first, with the exact number that match:
/// who, from where, when and how each ended (and by whom), and whether each of its applications
/// was told. Kept for `--ended-retention-days` (30 by default).
#[utoipa::path(get, path = "/api/v1/realms/{realm}/sessions/ended", tag = "administration",
    params(RealmPath, EndedQuery),
    responses((status = 200, body = EndedPage),
        (status = 400, body = ErrorBody, description = "A malformed filter, page size or `after` (`invalid_request`, `invalid_query`)")),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn list_ended_sessions(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiQuery(query): ApiQuery<EndedQuery>,
) -> ApiResult<Json<EndedPage>> {
    Ok(Json(state.service.ended_sessions(&realm, query).await?))
}

/// Every ended session the filters match, newest end first, as CSV or JSON lines, streamed as
/// it is read. Audited as `export_ended_sessions`.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/sessions/ended/export", tag = "administration",
    params(RealmPath, EndedExportParams),
    responses((status = 200, description = "The ended sessions, as a download", content(
        (String = "text/csv"), (String = "application/jsonl"))),
        (status = 400, body = ErrorBody, description = "A malformed filter or format (`invalid_request`, `invalid_query`)")),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn export_ended_sessions(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiQuery(params): ApiQuery<EndedExportParams>,
) -> ApiResult<Response> {
    ended_export_response(&state.service, &realm, &params, &caller.actor()).await
}

/// One session by its id.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/sessions/{sid}", tag = "administration",
    params(RealmPath, SessionPath),
    responses((status = 200, body = Session)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn get_session(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiPath(ids): ApiPath<SessionPath>,
) -> ApiResult<Json<Session>> {
    Ok(Json(state.service.get_session(&realm, &ids.sid).await?))
}

/// Every session a listing's filters match, in its order, as CSV or JSON lines, streamed as it
/// is read (any number of rows; none held in memory). Audited as `export_sessions`.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/sessions/export", tag = "administration",
    params(RealmPath,
        ("format" = ExportFormat, Query, description = "`csv` (a header row, then one row per session: sid, subject_id, display_name, created_at, last_access_at, idle_expires_at, expires_at, client_ids separated by spaces, ip, user_agent, browser, os, device_type) or `jsonl` (one session object per line)"),
        SessionFilters,
        ("sort" = Option<SortKey>, Query, description = "created (default, newest first), last_access or expires")),
    responses((status = 200, description = "The sessions, as a download", content(
        (String = "text/csv"), (String = "application/jsonl"))),
        (status = 400, body = ErrorBody, description = "A malformed filter (say, an `ip` that is not an address or CIDR range) or format (`invalid_request`, `invalid_query`)")),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn export_sessions(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    export_response(&state.service, &realm, &params, &caller.actor()).await
}

/// End selected sessions (`sids`, answered one by one) or those matching filters (`subject_id`,
/// `sid`, `ip`, `created_after`, `created_before`, AND-ed). With `dry_run`, only reports what
/// would happen. On disk when it answers.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/sessions/end", tag = "administration",
    params(RealmPath), request_body = EndSessions,
    responses((status = 200, body = EndOutcome),
        (status = 409, body = ErrorBody, description = "Ending a session collided with a concurrent change to its grants; try again (`conflict`)")),
    security(("api_key" = ["sessions:admin"])))]
pub async fn end_sessions(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiJson(req): ApiJson<EndSessions>,
) -> ApiResult<Json<EndOutcome>> {
    let actor = caller.actor();
    Ok(Json(state.service.end_sessions(&realm, req, &actor).await?))
}

/// The former name of [`end_sessions`] (`POST .../sessions/end`): the same call, kept for
/// clients written against it.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/sessions/remove", tag = "administration",
    params(RealmPath), request_body = EndSessions, responses((status = 200, body = EndOutcome)),
    security(("api_key" = ["sessions:admin"])))]
#[deprecated = "`POST .../sessions/end`"]
pub async fn remove_sessions(
    caller: Admin,
    state: State<ApiState>,
    realm: RealmPath,
    req: ApiJson<EndSessions>,
) -> ApiResult<Json<EndOutcome>> {
    end_sessions(caller, state, realm, req).await
}

/// End every session of the realm. On disk when it answers.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/sessions/end-all", tag = "administration",
    params(RealmPath), request_body = EndAllSessions,
    responses((status = 200, body = EndOutcome),
        (status = 409, body = ErrorBody, description = "Ending a session collided with a concurrent change to its grants; try again (`conflict`)")),
    security(("api_key" = ["sessions:admin"])))]
pub async fn end_all_sessions(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiJson(req): ApiJson<EndAllSessions>,
) -> ApiResult<Json<EndOutcome>> {
    let actor = caller.actor();
    Ok(Json(
        state.service.end_all_sessions(&realm, req, &actor).await?,
    ))
}

/// The former name of [`end_all_sessions`] (`POST .../sessions/end-all`): the same call, kept
/// for clients written against it.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/sessions/logout-all", tag = "administration",
    params(RealmPath), request_body = EndAllSessions, responses((status = 200, body = EndOutcome)),
    security(("api_key" = ["sessions:admin"])))]
#[deprecated = "`POST .../sessions/end-all`"]
pub async fn logout_all(
    caller: Admin,
    state: State<ApiState>,
    realm: RealmPath,
    req: ApiJson<EndAllSessions>,
) -> ApiResult<Json<EndOutcome>> {
    end_all_sessions(caller, state, realm, req).await
}
