//! The server's own accounts kept beside the sessions: API keys, dashboard administrators, the
//! keys that sign logout tokens and the Shared Signals streams of receivers. [`AccountStore`] is what the service needs of a backend for
//! them; each record is a plain value, the rules (hashing, rotation, audit) are the service's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::role::AdminRole;

use super::SessionStore;
use crate::error::Result;
use crate::signal::StreamRecord;

/// An API key as stored: its name, scopes (`sessions:issue`, `sessions:admin`), the realms it
/// is limited to, and the SHA-256 of its secret, never the secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub hash: [u8; 32],
    /// The only realms the key reaches; `None` for every realm (and for every key stored
    /// before keys could be limited, whose records have no such field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realms: Option<Vec<String>>,
}

/// A dashboard administrator as stored: the password only as its PHC-format hash.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AdminRecord {
    pub username: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub disabled: bool,
    /// What the administrator may do; records written before roles existed read as
    /// [`AdminRole::Admin`].
    #[serde(default)]
    pub role: AdminRole,
}

/// A logout-token signing key as stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// PKCS#8 DER of the private key, base64url.
    pub pkcs8: String,
    pub created_at: DateTime<Utc>,
    /// When a newer key replaced it.
    pub retired_at: Option<DateTime<Utc>>,
}

/// The accounts of a backend that also stores the sessions (audit entries about accounts go to
/// its audit log). Every write is durable when it returns.
#[async_trait::async_trait]
pub trait AccountStore: SessionStore {
    /// Every API key, by name.
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>>;
    /// Stores a key under a name no key has; false (and nothing stored) if one has it.
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<bool>;
    /// Stores a key, replacing any of the same name.
    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<()>;
    /// Deletes a key by name; false if there was none.
    async fn delete_api_key(&self, name: &str) -> Result<bool>;

    /// One administrator.
    async fn admin(&self, username: &str) -> Result<Option<AdminRecord>>;
    /// Every administrator, by name.
    async fn admins(&self) -> Result<Vec<AdminRecord>>;
    /// Creates or replaces an administrator.
    async fn put_admin(&self, admin: &AdminRecord) -> Result<()>;

    /// Every signing key kept.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    /// Stores `put` (new or changed keys) and deletes the keys named in `delete`, all at once.
    async fn update_signing_keys(&self, put: &[SigningKeyRecord], delete: &[String]) -> Result<()>;

    /// Every Shared Signals stream, by id.
    async fn signal_streams(&self) -> Result<Vec<StreamRecord>>;
    /// Creates or replaces a stream (by id). Session endings queue events for it from then on.
    /// A new stream of a key that has one is refused with
    /// [`crate::SessionError::Conflict`] (the service checks first; this holds across servers).
    async fn put_signal_stream(&self, stream: &StreamRecord) -> Result<()>;
    /// Deletes a stream by id; false if there was none. Its queued deliveries stay (the
    /// delivery worker gives them up).
    async fn delete_signal_stream(&self, id: &str) -> Result<bool>;
}
