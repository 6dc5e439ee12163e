//! Realms and the clients registered in them. Each realm is one key (realm 0, `R`) and, for every
//! operation to read, an entry of the in-memory map of [`RealmEntry`]s by name; each client
//! registration is one key (realm, `c`, client id).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::super::keys::RealmId;
use super::super::record::from_ms;
use super::super::rules::audit_entry;
use super::layout::{ClientRegKey, Counter, RealmKey};
use super::SledStoreV2;
use crate::error::{Result, SessionError};
use crate::model::{Client, ClientRegistration, Realm, RealmSettings, RealmSettingsUpdate};
use crate::validate;

/// A realm as the store keeps it in memory.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(super) struct RealmEntry {
    pub id: RealmId,
    pub name: String,
    pub settings: RealmSettings,
    pub created_ms: i64,
}

/// A client registration as stored (JSON).
pub(super) fn decode_registration(v: &[u8]) -> Result<ClientRegistration> {
    serde_json::from_slice(v)
        .map_err(|e| SessionError::Storage(format!("corrupt client record: {e}")))
}

/// The key of a client registration.
fn client_key(realm: RealmId, client_id: &str) -> Vec<u8> {
    ClientRegKey { realm, client_id }.encode()
}

/// The client id a client registration's key names.
pub(super) fn client_of(key: &[u8]) -> Result<&str> {
    ClientRegKey::decode(key)
        .map(|k| k.client_id)
        .ok_or_else(|| SessionError::Storage("bad client registration key".into()))
}

impl SledStoreV2 {
    /// The realm of that name, or [`SessionError::RealmNotFound`].
    pub(super) fn realm(&self, name: &str) -> Result<Arc<RealmEntry>> {
        self.realms
            .load()
            .get(name)
            .cloned()
            .ok_or_else(|| SessionError::RealmNotFound(name.to_owned()))
    }

    /// Every realm's name by its id.
    pub(super) fn realm_names(&self) -> HashMap<RealmId, String> {
        self.realms
            .load()
            .values()
            .map(|r| (r.id, r.name.clone()))
            .collect()
    }

    /// Back-channel logout URI of every client of the realm that has one.
    pub(super) fn backchannel_uris(&self, realm: RealmId) -> Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        for item in self.tree.scan_prefix(ClientRegKey::prefix(realm)) {
            let (k, v) = item?;
            if let Some(uri) = decode_registration(&v)?.backchannel_logout_uri {
                out.insert(client_of(&k)?.to_owned(), uri);
            }
        }
        Ok(out)
    }

    fn client_view(&self, realm: RealmId, client_id: &str, r: ClientRegistration) -> Client {
        Client {
            client_id: client_id.to_owned(),
            name: r.name,
            backchannel_logout_uri: r.backchannel_logout_uri,
            backchannel_logout_session_required: r.backchannel_logout_session_required,
            session_count: self.counter(&Counter::Client(client_id).key(realm)),
        }
    }

    fn realm_view(&self, e: &RealmEntry) -> Realm {
        Realm {
            name: e.name.clone(),
            settings: e.settings.clone(),
            created_at: from_ms(e.created_ms),
            session_count: self.counter(&Counter::Total.key(e.id)),
        }
    }

    pub(super) fn put_realm_impl(
        &self,
        name: &str,
        update: &RealmSettingsUpdate,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Realm> {
        validate::realm_name(name)?;
        let _guard = self
            .realm_writes
            .lock()
            .map_err(|_| SessionError::Storage("realm lock poisoned".into()))?;
        let existing = self.realms.load().get(name).cloned();
        let entry = match &existing {
            Some(e) => RealmEntry {
                settings: update.apply_to(&e.settings),
                ..(**e).clone()
            },
            None => RealmEntry {
                id: u32::try_from(self.next_id()? + 1)
                    .map_err(|_| SessionError::Storage("realm ids exhausted".into()))?,
                name: name.to_owned(),
                settings: update.apply_to(&RealmSettings::default()),
                created_ms: now.timestamp_millis(),
            },
        };
        validate::realm_settings(&entry.settings)?;
        let value = serde_json::to_vec(&entry).map_err(|e| SessionError::Storage(e.to_string()))?;
        self.tree.insert(RealmKey { name }.encode(), value)?;
        let action = if existing.is_some() {
            "update_realm"
        } else {
            "create_realm"
        };
        self.audit(&audit_entry(name, action, name, actor, now))?;
        self.wait_durable()?;
        let mut map = HashMap::clone(&self.realms.load());
        map.insert(name.to_owned(), Arc::new(entry.clone()));
        self.realms.store(Arc::new(map));
        Ok(self.realm_view(&entry))
    }

    pub(super) fn get_realm_impl(&self, name: &str) -> Result<Realm> {
        Ok(self.realm_view(&*self.realm(name)?))
    }

    pub(super) fn list_realms_impl(&self) -> Result<Vec<Realm>> {
        let realms = self.realms.load();
        let mut out: Vec<Realm> = realms.values().map(|e| self.realm_view(e)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(super) fn put_client_impl(
        &self,
        realm: &str,
        client_id: &str,
        registration: &ClientRegistration,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Client> {
        let realm = self.realm(realm)?;
        validate::client_registration(client_id, registration)?;
        let value =
            serde_json::to_vec(registration).map_err(|e| SessionError::Storage(e.to_string()))?;
        let existed = self
            .tree
            .insert(client_key(realm.id, client_id), value)?
            .is_some();
        let action = if existed {
            "update_client"
        } else {
            "create_client"
        };
        self.audit(&audit_entry(&realm.name, action, client_id, actor, now))?;
        self.wait_durable()?;
        Ok(self.client_view(realm.id, client_id, registration.clone()))
    }

    pub(super) fn get_client_impl(&self, realm: &str, client_id: &str) -> Result<Client> {
        let realm = self.realm(realm)?;
        let value = self
            .tree
            .get(client_key(realm.id, client_id))?
            .ok_or_else(|| SessionError::ClientNotFound(client_id.to_owned()))?;
        Ok(self.client_view(realm.id, client_id, decode_registration(&value)?))
    }

    pub(super) fn list_clients_impl(&self, realm: &str) -> Result<Vec<Client>> {
        let realm = self.realm(realm)?;
        self.tree
            .scan_prefix(ClientRegKey::prefix(realm.id))
            .map(|item| {
                let (k, v) = item?;
                Ok(self.client_view(realm.id, client_of(&k)?, decode_registration(&v)?))
            })
            .collect()
    }

    pub(super) fn delete_client_impl(
        &self,
        realm: &str,
        client_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let realm = self.realm(realm)?;
        let existed = self.tree.remove(client_key(realm.id, client_id))?.is_some();
        if existed {
            let entry = audit_entry(&realm.name, "delete_client", client_id, actor, now);
            self.audit(&entry)?;
            self.wait_durable()?;
        }
        Ok(existed)
    }
}
