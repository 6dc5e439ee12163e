//! API keys at runtime (scope `sessions:admin`): list, create and revoke without stopping the
//! server. Every change is audited.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use service::api_keys::{ApiKeyInfo, Scope};

use crate::auth::Admin;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::ApiState;

/// Every API key, by name.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyInfo>,
}

/// A key to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// 1 to 255 bytes, no control characters; unique.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    /// At least one of `sessions:issue`, `sessions:admin`, `sessions:read`.
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    /// The only realms the key reaches (at least one); absent or `null` for every realm. A
    /// limited key is refused with 403 `forbidden` in other realms and on routes that span
    /// every realm (API keys, the audit log, signing keys); listing realms shows it only its
    /// own.
    #[serde(default)]
    #[schema(min_items = 1)]
    pub realms: Option<Vec<String>>,
}

/// A created key with its secret, which is shown only in this answer.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyInfo,
    /// Send as `Authorization: Bearer <secret>`. Only its SHA-256 is stored.
    pub secret: String,
}

/// The path of a route naming one key.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ApiKeyPath {
    /// The key's name.
    #[param(min_length = 1)]
    pub name: String,
}

/// Every API key, without secrets.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api keys",
    responses((status = 200, body = ApiKeyList)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn list_api_keys(
    caller: Admin,
    State(state): State<ApiState>,
) -> ApiResult<Json<ApiKeyList>> {
    let api_keys = state
        .service
        .list_api_keys(&caller.actor())
        .await?
        .iter()
        .map(ApiKeyInfo::from)
        .collect();
    Ok(Json(ApiKeyList { api_keys }))
}

/// Create a key; its secret is in this answer and nowhere else.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api keys", request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey),
        (status = 409, body = ErrorBody, description = "A key of that name exists (`conflict`)")),
    security(("api_key" = ["sessions:admin"])))]
pub async fn create_api_key(
    caller: Admin,
    State(state): State<ApiState>,
    ApiJson(new): ApiJson<NewApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let (key, secret) = state
        .service
        .create_api_key(&new.name, new.scopes, new.realms, &caller.actor())
        .await?;
    let key = ApiKeyInfo::from(&key);
    Ok((StatusCode::CREATED, Json(CreatedApiKey { key, secret })))
}

/// Revoke a key: requests with it are refused from now on.
#[utoipa::path(delete, path = "/api/v1/api-keys/{name}", tag = "api keys",
    params(ApiKeyPath),
    responses((status = 204)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn revoke_api_key(
    caller: Admin,
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<ApiKeyPath>,
) -> ApiResult<StatusCode> {
    if state
        .service
        .revoke_api_key(&path.name, &caller.actor())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no API key named '{}'",
            path.name
        )))
    }
}
