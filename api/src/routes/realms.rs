//! Realms (scope `sessions:admin`): explicit creation and settings, so a typo never creates one.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use sessions::{Realm, RealmSettingsUpdate};
use utoipa::ToSchema;

use crate::auth::{Admin, AdminOfItsRealms};
use crate::error::{ApiJson, ApiResult, RealmPath};
use crate::ApiState;

/// Every realm.
#[derive(Serialize, ToSchema)]
pub struct RealmList {
    pub realms: Vec<Realm>,
}

/// Create the realm, or update its settings; absent fields keep their value (or default).
#[utoipa::path(put, path = "/api/v1/realms/{realm}", tag = "realms",
    params(RealmPath), request_body = RealmSettingsUpdate,
    responses((status = 200, body = Realm)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn put_realm(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiJson(update): ApiJson<RealmSettingsUpdate>,
) -> ApiResult<Json<Realm>> {
    let realm = state
        .service
        .put_realm(&realm, update, &caller.actor())
        .await?;
    Ok(Json(realm))
}

/// A realm's settings and session count.
#[utoipa::path(get, path = "/api/v1/realms/{realm}", tag = "realms",
    params(RealmPath),
    responses((status = 200, body = Realm)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn get_realm(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
) -> ApiResult<Json<Realm>> {
    Ok(Json(state.service.get_realm(&realm).await?))
}

/// Every realm with its session count (the server's reserved `_` realms are not listed). A key
/// limited to some realms sees only those of them that exist.
#[utoipa::path(get, path = "/api/v1/realms", tag = "realms",
    responses((status = 200, body = RealmList)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn list_realms(
    caller: AdminOfItsRealms,
    State(state): State<ApiState>,
) -> ApiResult<Json<RealmList>> {
    let mut realms = state.service.list_realms(false).await?;
    realms.retain(|r| caller.key.reaches(&r.name));
    Ok(Json(RealmList { realms }))
}
