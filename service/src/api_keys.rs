//! API keys: stored as SHA-256 hashes (they are 256-bit random secrets, so a slow hash adds
//! nothing), each with a name, scopes and optionally the only realms it reaches, checked on
//! every request.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sessions::store::{AccountStore, ApiKeyRecord};
use sessions::{AuditEntry, Result, SessionError};
use sha2::{Digest, Sha256};

use crate::roles::Role;

/// What a key may do.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// Create, validate, refresh and end sessions (the identity provider's data plane).
    #[serde(rename = "sessions:issue")]
    Issue,
    /// Everything administration may do: list, inspect and revoke sessions; manage realms,
    /// clients and keys; read the audit log (role admin).
    #[serde(rename = "sessions:admin")]
    Admin,
    /// Administration's reading only: list and inspect sessions, clients, deliveries and the
    /// audit log; change nothing (role viewer).
    #[serde(rename = "sessions:read")]
    Read,
    /// A Shared Signals receiver: manage its one stream and poll it (see [`crate::signals`]).
    #[serde(rename = "ssf:receiver")]
    Receiver,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [Scope::Issue, Scope::Admin, Scope::Read, Scope::Receiver];

    /// The scope's name as keys carry it, e.g. `sessions:admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Issue => "sessions:issue",
            Scope::Admin => "sessions:admin",
            Scope::Read => "sessions:read",
            Scope::Receiver => "ssf:receiver",
        }
    }

    /// The administrative role the scope grants, if any.
    pub fn role(self) -> Option<Role> {
        match self {
            Scope::Issue | Scope::Receiver => None,
            Scope::Admin => Some(Role::Admin),
            Scope::Read => Some(Role::Viewer),
        }
    }

    /// The scope a name names, if any.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A stored API key, without its secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    /// The only realms the key reaches, sorted; `None` for every realm (keys created before
    /// keys could be limited reach every realm).
    #[serde(default)]
    pub realms: Option<Vec<String>>,
    hash: [u8; 32],
}

/// An API key as listed: its name, scopes, realms and age, never its secret or hash.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyInfo {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The only realms the key reaches; `null` for every realm. Elsewhere a limited key is
    /// refused with 403 `forbidden`.
    #[serde(default)]
    pub realms: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
}

impl From<&ApiKey> for ApiKeyInfo {
    fn from(k: &ApiKey) -> Self {
        Self {
            name: k.name.clone(),
            scopes: k.scopes.clone(),
            realms: k.realms.clone(),
            created_at: k.created_at,
        }
    }
}

/// The realms a new key is limited to, checked and sorted: `None` (every realm) stays `None`;
/// a list must name at least one realm, each a realm name an API path can carry (not starting
/// with `_`, neither `.` nor `..`).
pub fn check_realms(realms: Option<Vec<String>>) -> Result<Option<Vec<String>>> {
    let Some(mut realms) = realms else {
        return Ok(None);
    };
    if realms.is_empty() {
        return Err(SessionError::invalid(
            "give the key at least one realm, or none at all for every realm",
        ));
    }
    for realm in &realms {
        sessions::validate::realm_name(realm)?;
        if sessions::validate::is_reserved_realm(realm) || realm == "." || realm == ".." {
            return Err(SessionError::invalid(format!(
                "realm '{realm}' cannot be addressed through the API; a key cannot be limited \
                 to it"
            )));
        }
    }
    realms.sort();
    realms.dedup();
    Ok(Some(realms))
}

/// Name of the key registered from `SESSIONS_BOOTSTRAP_API_KEY`.
pub const BOOTSTRAP_KEY_NAME: &str = "bootstrap";

/// The API keys of a server, persisted in the store ([`AccountStore`]) and held in memory.
pub struct ApiKeys {
    store: Arc<dyn AccountStore>,
    by_hash: ArcSwap<HashMap<[u8; 32], Arc<ApiKey>>>,
}

impl ApiKey {
    /// The administrative role the key's scopes grant (the highest of them), if any.
    pub fn role(&self) -> Option<Role> {
        self.scopes.iter().filter_map(|s| s.role()).max()
    }

    /// Whether the key may act in `realm`: every key not limited to some realms may.
    pub fn reaches(&self, realm: &str) -> bool {
        self.realms
            .as_ref()
            .is_none_or(|realms| realms.iter().any(|r| r == realm))
    }

    /// Whether the key is limited to some realms.
    pub fn is_limited(&self) -> bool {
        self.realms.is_some()
    }

    /// The realms a limited key reaches, for messages: `a, b`; `every realm` otherwise.
    pub fn realms_label(&self) -> String {
        match &self.realms {
            Some(realms) => realms.join(", "),
            None => "every realm".to_owned(),
        }
    }

    fn record(&self) -> ApiKeyRecord {
        ApiKeyRecord {
            name: self.name.clone(),
            scopes: self.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            created_at: self.created_at,
            hash: self.hash,
            realms: self.realms.clone(),
        }
    }

    fn from_record(r: ApiKeyRecord) -> Result<Self> {
        let scopes = r
            .scopes
            .iter()
            .map(|s| {
                Scope::parse(s)
                    .ok_or_else(|| storage(format!("API key '{}' has unknown scope {s}", r.name)))
            })
            .collect::<Result<_>>()?;
        Ok(ApiKey {
            name: r.name,
            scopes,
            created_at: r.created_at,
            realms: r.realms,
            hash: r.hash,
        })
    }
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn storage(e: impl std::fmt::Display) -> SessionError {
    SessionError::Storage(e.to_string())
}

impl ApiKeys {
    /// Loads the keys kept in the store.
    pub async fn open(store: Arc<dyn AccountStore>) -> Result<Self> {
        let keys = Self {
            store,
            by_hash: ArcSwap::from_pointee(HashMap::new()),
        };
        keys.reload().await?;
        Ok(keys)
    }

    /// Reads the keys from the store again (keys created or revoked through another server).
    pub async fn reload(&self) -> Result<()> {
        let mut map = HashMap::new();
        for record in self.store.api_keys().await? {
            let key = ApiKey::from_record(record)?;
            map.insert(key.hash, Arc::new(key));
        }
        self.by_hash.store(Arc::new(map));
        Ok(())
    }

    async fn audit(
        &self,
        action: &str,
        name: &str,
        actor: &str,
        outcome: String,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.store
            .record_audit(&AuditEntry {
                at: now,
                actor: actor.to_owned(),
                realm: None,
                action: action.to_owned(),
                target: name.to_owned(),
                reason: None,
                outcome,
            })
            .await
    }

    /// Creates a key that reaches every realm and answers its secret, which is shown this
    /// once. Audited.
    pub async fn create(
        &self,
        name: &str,
        scopes: &[Scope],
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(ApiKey, String)> {
        self.create_in_realms(name, scopes, None, actor, now).await
    }

    /// Creates a key limited to `realms` (`None`: every realm) and answers its secret, which is
    /// shown this once. Audited.
    pub async fn create_in_realms(
        &self,
        name: &str,
        scopes: &[Scope],
        realms: Option<Vec<String>>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(ApiKey, String)> {
        sessions::validate::identifier("name", name)?;
        if scopes.is_empty() {
            return Err(SessionError::invalid("give the key at least one --scope"));
        }
        let realms = check_realms(realms)?;
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw).map_err(storage)?;
        let secret = format!("sk_{}", URL_SAFE_NO_PAD.encode(raw));
        let key = ApiKey {
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            created_at: now,
            realms,
            hash: hash(&secret),
        };
        if !self.store.insert_api_key(&key.record()).await? {
            return Err(SessionError::Conflict(format!(
                "an API key named '{name}' exists; revoke it first"
            )));
        }
        self.reload().await?;
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        let outcome = match &key.realms {
            Some(realms) => format!(
                "ok; scopes {}; realms {}",
                scopes.join(", "),
                realms.join(", ")
            ),
            None => format!("ok; scopes {}", scopes.join(", ")),
        };
        self.audit("create_api_key", name, actor, outcome, now)
            .await?;
        Ok((key, secret))
    }

    /// Registers a key whose secret the operator chose (the bootstrap key), replacing any
    /// earlier key of that name.
    pub async fn register(
        &self,
        name: &str,
        secret: &str,
        scopes: &[Scope],
        now: DateTime<Utc>,
    ) -> Result<ApiKey> {
        if secret.len() < 16 {
            return Err(SessionError::invalid(
                "an API key must be at least 16 characters",
            ));
        }
        let key = ApiKey {
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            created_at: now,
            realms: None,
            hash: hash(secret),
        };
        self.store.put_api_key(&key.record()).await?;
        self.reload().await?;
        Ok(key)
    }

    /// Every key, by name.
    pub async fn list(&self) -> Result<Vec<ApiKey>> {
        self.store
            .api_keys()
            .await?
            .into_iter()
            .map(ApiKey::from_record)
            .collect()
    }

    /// Revokes a key by name, at once for every request that follows; false if there was none.
    /// A receiver key's Shared Signals stream goes with it (a later key of the same name starts
    /// without one). Audited.
    pub async fn revoke(&self, name: &str, actor: &str, now: DateTime<Utc>) -> Result<bool> {
        let existed = self.store.delete_api_key(name).await?;
        self.reload().await?;
        for stream in self.store.signal_streams().await? {
            if stream.key_name == name {
                self.store.delete_signal_stream(&stream.id).await?;
            }
        }
        if existed {
            self.audit("revoke_api_key", name, actor, "ok".into(), now)
                .await?;
        }
        Ok(existed)
    }

    /// The key a request presents, if it is one of ours (as last read: on a shared store the
    /// server reads the keys again every [`crate::SHARED_RELOAD_EVERY`], see
    /// [`crate::SessionService::reload_shared`]).
    pub fn authenticate(&self, secret: &str) -> Option<Arc<ApiKey>> {
        self.by_hash.load().get(&hash(secret)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessions::store::SledStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_stored_before_keys_had_realms_reaches_every_realm() {
        let store = Arc::new(SledStore::temporary().unwrap());
        let secret = "sk_stored-before-realms-existed";
        let hash: Vec<String> = hash(secret).iter().map(|b| b.to_string()).collect();
        // The record exactly as servers without realms wrote it: no `realms` field.
        let old = format!(
            r#"{{"name":"old","scopes":["sessions:issue"],"created_at":"2026-01-02T03:04:05Z","hash":[{}]}}"#,
            hash.join(",")
        );
        store
            .companion_tree("api_keys")
            .unwrap()
            .insert("old", old.as_bytes())
            .unwrap();
        let keys = ApiKeys::open(store.clone()).await.unwrap();
        let key = keys.authenticate(secret).expect("the old key still opens");
        assert_eq!(key.realms, None);
        assert!(!key.is_limited());
        assert!(key.reaches("a") && key.reaches("b"));
        assert_eq!(
            ApiKeyInfo::from(key.as_ref()).realms,
            None,
            "listed as every realm"
        );
        // Written again unchanged, the record still has no `realms` field.
        keys.register("again", "another-secret-0123", &[Scope::Read], Utc::now())
            .await
            .unwrap();
        let again = store
            .companion_tree("api_keys")
            .unwrap()
            .get("again")
            .unwrap()
            .unwrap();
        assert!(!String::from_utf8_lossy(&again).contains("realms"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_limited_to_realms_reaches_only_them_and_keeps_them_when_read_again() {
        let store = Arc::new(SledStore::temporary().unwrap());
        let keys = ApiKeys::open(store.clone()).await.unwrap();
        let (key, secret) = keys
            .create_in_realms(
                "idp-a",
                &[Scope::Issue],
                Some(vec!["b".into(), "a".into(), "a".into()]),
                "test",
                Utc::now(),
            )
            .await
            .unwrap();
        assert_eq!(key.realms, Some(vec!["a".to_owned(), "b".to_owned()]));
        let keys = ApiKeys::open(store).await.unwrap();
        let key = keys.authenticate(&secret).unwrap();
        assert!(key.reaches("a") && key.reaches("b") && !key.reaches("c"));
        assert_eq!(key.realms_label(), "a, b");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_cannot_be_limited_to_no_realm_or_a_bad_name() {
        let keys = ApiKeys::open(Arc::new(SledStore::temporary().unwrap()))
            .await
            .unwrap();
        for realms in [vec![], vec!["_admin".to_owned()], vec!["a b".to_owned()]] {
            let e = keys
                .create_in_realms("k", &[Scope::Issue], Some(realms.clone()), "t", Utc::now())
                .await
                .unwrap_err();
            assert!(
                matches!(e, SessionError::InvalidRequest(_)),
                "{realms:?}: {e}"
            );
        }
        assert!(keys.list().await.unwrap().is_empty());
    }
}
