//! Clients: the applications of a realm, with how many sessions joined each.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::{Client, Realm};

use crate::error::AppError;

/// What the clients page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientsView {
    pub realms: Vec<Realm>,
    pub realm: Option<String>,
    pub clients: Vec<Client>,
}

/// The realms, and the registered clients of the chosen realm (else the first).
#[server]
pub async fn load_clients(realm: Option<String>) -> Result<ClientsView, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service, user_realms};
    require_admin().await?;
    let service = service()?;
    let (realms, realm) = user_realms(&service, realm).await?;
    let clients = match &realm {
        Some(r) => service.list_clients(r).await.map_err(failed)?,
        None => Vec::new(),
    };
    Ok(ClientsView {
        realms,
        realm,
        clients,
    })
}
