//! A store's contents as plain values, for copying a store to another backend exactly (same
//! session ids, token hashes, grant ids, delivery and audit ids, realm numbers and results-token
//! key, so tokens and results tokens handed out before stay valid).

use chrono::{DateTime, Utc};

use crate::grant::Grant;
use crate::model::{RealmSettings, Session};

/// A realm with its number (results tokens are bound to it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedRealm {
    pub id: u32,
    pub name: String,
    pub settings: RealmSettings,
    pub created_at: DateTime<Utc>,
}

/// A session with the SHA-256 its token is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedSession {
    pub session: Session,
    pub token_hash: [u8; 32],
    /// A session of the embedded store's first layout: its token (32 random bytes) carries no
    /// sid, and is found by its hash (the SHA-256 of the token text).
    pub found_by_hash: bool,
}

/// A grant with the SHA-256 of its token (none for a consent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedGrant {
    pub grant: Grant,
    pub token_hash: Option<[u8; 32]>,
}
