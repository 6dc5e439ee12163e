//! Clients (scope `sessions:admin`): the applications of a realm, with their session counts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use sessions::{Client, ClientRegistration};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Admin;
use crate::error::{ApiJson, ApiPath, ApiResult, RealmPath};
use crate::ApiState;

/// The path of a route naming one client.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ClientPath {
    /// The client id: 1 to 255 bytes, no control characters.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
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
    params(RealmPath, ClientPath), request_body = ClientRegistration,
    responses((status = 200, body = Client)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn put_client(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiPath(path): ApiPath<ClientPath>,
    ApiJson(registration): ApiJson<ClientRegistration>,
) -> ApiResult<Json<Client>> {
    let client = state
        .service
        .put_client(&realm, &path.client_id, registration, &caller.actor())
        .await?;
    Ok(Json(client))
}

/// A registered client and the number of sessions that joined it.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/clients/{client_id}", tag = "clients",
    params(RealmPath, ClientPath),
    responses((status = 200, body = Client)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn get_client(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiPath(path): ApiPath<ClientPath>,
) -> ApiResult<Json<Client>> {
    Ok(Json(
        state.service.get_client(&realm, &path.client_id).await?,
    ))
}

/// Remove a client's registration; its sessions stay.
#[utoipa::path(delete, path = "/api/v1/realms/{realm}/clients/{client_id}", tag = "clients",
    params(RealmPath, ClientPath),
    responses((status = 204)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn delete_client(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiPath(path): ApiPath<ClientPath>,
) -> ApiResult<StatusCode> {
    let client_id = path.client_id.clone();
    let existed = state
        .service
        .delete_client(&realm, &path.client_id, &caller.actor())
        .await?;
    if existed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(sessions::SessionError::ClientNotFound(client_id).into())
    }
}

/// Every registered client of the realm with its session count.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/clients", tag = "clients",
    params(RealmPath),
    responses((status = 200, body = ClientList)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn list_clients(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
) -> ApiResult<Json<ClientList>> {
    Ok(Json(ClientList {
        clients: state.service.list_clients(&realm).await?,
    }))
}
