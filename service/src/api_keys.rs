//! API keys: stored as SHA-256 hashes (they are 256-bit random secrets, so a slow hash adds
//! nothing), each with a name and scopes, checked on every request.

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

use crate::reload::{refresh, ReloadClock};
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
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 3] = [Scope::Issue, Scope::Admin, Scope::Read];

    /// The scope's name as keys carry it, e.g. `sessions:admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Issue => "sessions:issue",
            Scope::Admin => "sessions:admin",
            Scope::Read => "sessions:read",
        }
    }

    /// The administrative role the scope grants, if any.
    pub fn role(self) -> Option<Role> {
        match self {
            Scope::Issue => None,
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
    hash: [u8; 32],
}

/// An API key as listed: its name, scopes and age, never its secret or hash.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyInfo {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
}

impl From<&ApiKey> for ApiKeyInfo {
    fn from(k: &ApiKey) -> Self {
        Self {
            name: k.name.clone(),
            scopes: k.scopes.clone(),
            created_at: k.created_at,
        }
    }
}

/// Name of the key registered from `SESSIONS_BOOTSTRAP_API_KEY`.
pub const BOOTSTRAP_KEY_NAME: &str = "bootstrap";

/// The API keys of a server, persisted in the store ([`AccountStore`]) and held in memory.
pub struct ApiKeys {
    store: Arc<dyn AccountStore>,
    by_hash: ArcSwap<HashMap<[u8; 32], Arc<ApiKey>>>,
    loaded: ReloadClock,
}

impl ApiKey {
    /// The administrative role the key's scopes grant (the highest of them), if any.
    pub fn role(&self) -> Option<Role> {
        self.scopes.iter().filter_map(|s| s.role()).max()
    }

    fn record(&self) -> ApiKeyRecord {
        ApiKeyRecord {
            name: self.name.clone(),
            scopes: self.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            created_at: self.created_at,
            hash: self.hash,
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
    pub fn open(store: Arc<dyn AccountStore>) -> Result<Self> {
        let keys = Self {
            store,
            by_hash: ArcSwap::from_pointee(HashMap::new()),
            loaded: ReloadClock::new(),
        };
        keys.reload()?;
        Ok(keys)
    }

    /// Reads the keys from the store again (keys created or revoked through another server).
    pub fn reload(&self) -> Result<()> {
        let mut map = HashMap::new();
        for record in self.store.api_keys()? {
            let key = ApiKey::from_record(record)?;
            map.insert(key.hash, Arc::new(key));
        }
        self.by_hash.store(Arc::new(map));
        self.loaded.read_now();
        Ok(())
    }

    fn audit(
        &self,
        action: &str,
        name: &str,
        actor: &str,
        outcome: String,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.store.record_audit(&AuditEntry {
            at: now,
            actor: actor.to_owned(),
            realm: None,
            action: action.to_owned(),
            target: name.to_owned(),
            reason: None,
            outcome,
        })
    }

    /// Creates a key and answers its secret, which is shown this once. Audited.
    pub fn create(
        &self,
        name: &str,
        scopes: &[Scope],
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(ApiKey, String)> {
        sessions::validate::identifier("name", name)?;
        if scopes.is_empty() {
            return Err(SessionError::invalid("give the key at least one --scope"));
        }
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw).map_err(storage)?;
        let secret = format!("sk_{}", URL_SAFE_NO_PAD.encode(raw));
        let key = ApiKey {
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            created_at: now,
            hash: hash(&secret),
        };
        if !self.store.insert_api_key(&key.record())? {
            return Err(SessionError::Conflict(format!(
                "an API key named '{name}' exists; revoke it first"
            )));
        }
        self.reload()?;
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        self.audit(
            "create_api_key",
            name,
            actor,
            format!("ok; scopes {}", scopes.join(", ")),
            now,
        )?;
        Ok((key, secret))
    }

    /// Registers a key whose secret the operator chose (the bootstrap key), replacing any
    /// earlier key of that name.
    pub fn register(
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
            hash: hash(secret),
        };
        self.store.put_api_key(&key.record())?;
        self.reload()?;
        Ok(key)
    }

    /// Every key, by name.
    pub fn list(&self) -> Result<Vec<ApiKey>> {
        self.store
            .api_keys()?
            .into_iter()
            .map(ApiKey::from_record)
            .collect()
    }

    /// Revokes a key by name, at once for every request that follows; false if there was none.
    /// Audited.
    pub fn revoke(&self, name: &str, actor: &str, now: DateTime<Utc>) -> Result<bool> {
        let existed = self.store.delete_api_key(name)?;
        self.reload()?;
        if existed {
            self.audit("revoke_api_key", name, actor, "ok".into(), now)?;
        }
        Ok(existed)
    }

    /// The key a request presents, if it is one of ours. On a shared store, the keys are read
    /// again first when they were read more than [`crate::SHARED_RELOAD_EVERY`] ago.
    pub fn authenticate(&self, secret: &str) -> Option<Arc<ApiKey>> {
        refresh(&self.loaded, self.store.as_ref(), "API keys", || {
            self.reload()
        });
        self.by_hash.load().get(&hash(secret)).cloned()
    }
}
