//! Clients: the applications of a realm. A back-channel logout URI is held to the target rules
//! (see [`crate::backchannel::target`]) before it is registered.

use chrono::Utc;
use sessions::{Client, ClientRegistration, Result, SessionError};

use crate::roles::Permission;
use crate::{to_the_end, Actor, SessionService};

impl SessionService {
    /// Registers a client or replaces its registration. Durable.
    pub async fn put_client(
        &self,
        realm: &str,
        client_id: &str,
        registration: ClientRegistration,
        actor: &Actor,
    ) -> Result<Client> {
        actor.require(Permission::Administer)?;
        // Malformed input is refused as such before the target rules look at the URI.
        sessions::validate::client_registration(client_id, &registration)?;
        if let Some(uri) = &registration.backchannel_logout_uri {
            let settings = self.store.get_realm(realm).await?.settings;
            self.backchannel
                .allow_hosts
                .check_registration(uri, settings.backchannel_allow_http)
                .await
                .map_err(|refusal| SessionError::BackchannelUriNotAllowed(refusal.to_string()))?;
        }
        let (store, realm, client_id, actor) = (
            self.store.clone(),
            realm.to_owned(),
            client_id.to_owned(),
            actor.audit_name(),
        );
        to_the_end(async move {
            store
                .put_client(&realm, &client_id, &registration, &actor, Utc::now())
                .await
        })
        .await
    }

    /// A registered client with its session count.
    pub async fn get_client(&self, realm: &str, client_id: &str) -> Result<Client> {
        self.store.get_client(realm, client_id).await
    }

    /// Every registered client of the realm with its session count.
    pub async fn list_clients(&self, realm: &str) -> Result<Vec<Client>> {
        self.store.list_clients(realm).await
    }

    /// Removes a client's registration; false if there was none. Durable.
    pub async fn delete_client(&self, realm: &str, client_id: &str, actor: &Actor) -> Result<bool> {
        actor.require(Permission::Administer)?;
        let (store, realm, client_id, actor) = (
            self.store.clone(),
            realm.to_owned(),
            client_id.to_owned(),
            actor.audit_name(),
        );
        to_the_end(async move {
            store
                .delete_client(&realm, &client_id, &actor, Utc::now())
                .await
        })
        .await
    }
}
