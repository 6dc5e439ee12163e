//! Clients (scope `sessions:admin`): the applications of a realm, with their session counts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sessions::{Client, ClientRegistration};
use utoipa::ToSchema;

use super::blocking;
use crate::auth::Admin;
use crate::backchannel::target::Refusal;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody, RealmPath};
use crate::ApiState;

/// The path of a route naming one client.
#[derive(Deserialize)]
pub struct ClientPath {
    pub client_id: String,
}

/// Every registered client of a realm.
#[derive(Serialize, ToSchema)]
pub struct ClientList {
    pub clients: Vec<Client>,
}

/// Register a client, or replace its registration. A back-channel logout URI must use https
/// (unless the realm allows http) and must not point at a loopback, private, link-local or
/// otherwise non-public address, unless its host is on the server's allow-list
/// (`--backchannel-allow-hosts`); a refused one is a 400 `backchannel_uri_not_allowed`.
#[utoipa::path(put, path = "/api/v1/realms/{realm}/clients/{client_id}", tag = "clients",
    params(("realm" = String, Path), ("client_id" = String, Path)), request_body = ClientRegistration,
    responses((status = 200, body = Client), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn put_client(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiPath(path): ApiPath<ClientPath>,
    ApiJson(registration): ApiJson<ClientRegistration>,
) -> ApiResult<Json<Client>> {
    // Malformed input is refused as such before the target rules look at the URI.
    sessions::validate::client_registration(&path.client_id, &registration)?;
    if let Some(uri) = &registration.backchannel_logout_uri {
        let settings = state.store.get_realm(&realm)?.settings;
        state
            .backchannel
            .allow_hosts
            .check_registration(uri, settings.backchannel_allow_http)
            .await
            .map_err(not_allowed)?;
    }
    let client = blocking(move || {
        state.store.put_client(
            &realm,
            &path.client_id,
            &registration,
            &caller.actor,
            Utc::now(),
        )
    })
    .await?;
    Ok(Json(client))
}

/// A back-channel logout URI the target rules refuse.
fn not_allowed(refusal: Refusal) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "backchannel_uri_not_allowed",
        refusal.to_string(),
    )
}

/// A registered client and the number of sessions that joined it.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/clients/{client_id}", tag = "clients",
    params(("realm" = String, Path), ("client_id" = String, Path)),
    responses((status = 200, body = Client), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn get_client(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiPath(path): ApiPath<ClientPath>,
) -> ApiResult<Json<Client>> {
    Ok(Json(state.store.get_client(&realm, &path.client_id)?))
}

/// Remove a client's registration; its sessions stay.
#[utoipa::path(delete, path = "/api/v1/realms/{realm}/clients/{client_id}", tag = "clients",
    params(("realm" = String, Path), ("client_id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn delete_client(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiPath(path): ApiPath<ClientPath>,
) -> ApiResult<StatusCode> {
    let client_id = path.client_id.clone();
    let existed = blocking(move || {
        state
            .store
            .delete_client(&realm, &path.client_id, &caller.actor, Utc::now())
    })
    .await?;
    if existed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(sessions::SessionError::ClientNotFound(client_id).into())
    }
}

/// Every registered client of the realm with its session count.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/clients", tag = "clients",
    params(("realm" = String, Path)),
    responses((status = 200, body = ClientList), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn list_clients(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
) -> ApiResult<Json<ClientList>> {
    Ok(Json(ClientList {
        clients: state.store.list_clients(&realm)?,
    }))
}
