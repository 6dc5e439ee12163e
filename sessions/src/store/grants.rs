//! How grants are stored: the record, its key layouts, and the transactional steps that add and
//! remove one with all its index entries.
//!
//! Trees:
//! - `grants`: realm id + grant id → [`StoredGrant`]
//! - `grant_tokens`: SHA-256 of the token → realm id + grant id
//! - `grant_index`: realm id + [`IndexKind`] + owner + grant id → (), by subject, by session and
//!   by expiry time
//!
//! Each session's grant generation (how many grants were ever issued under it; it never goes
//! down, so an addition cannot be hidden by a concurrent removal) lives in `counts` under
//! [`session_grants_counter`]; ending a session reads it so a grant added while the session's
//! grants were being listed is never missed.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::keys::{self, RealmId, Sid};
use super::record::{from_ms, sid_to_string};
use crate::error::{Result, SessionError};
use crate::grant::{Grant, GrantKind};

/// Bytes of a grant id.
pub type GrantId = [u8; 16];

/// Version byte in front of every stored grant.
const RECORD_VERSION: u8 = 1;

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<SessionError>>;

/// What a `grant_index` entry indexes.
#[derive(Clone, Copy)]
#[repr(u8)]
enum IndexKind {
    Subject = 1,
    Session = 2,
    Expiry = 3,
}

/// A grant as stored: times in milliseconds, the token only as its SHA-256.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StoredGrant {
    pub id: GrantId,
    pub kind: GrantKind,
    pub subject_id: String,
    pub sid: Option<Sid>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub token_hash: Option<[u8; 32]>,
}

impl StoredGrant {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        out.extend(postcard::to_allocvec(self).expect("a grant always serializes"));
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((&RECORD_VERSION, rest)) => postcard::from_bytes(rest)
                .map_err(|e| SessionError::Storage(format!("corrupt grant record: {e}"))),
            _ => Err(SessionError::Storage("unknown grant record version".into())),
        }
    }

    pub fn to_grant(&self, realm: &str) -> Grant {
        Grant {
            grant_id: sid_to_string(&self.id),
            realm: realm.to_owned(),
            kind: self.kind,
            subject_id: self.subject_id.clone(),
            sid: self.sid.as_ref().map(sid_to_string),
            client_id: self.client_id.clone(),
            scopes: self.scopes.clone(),
            created_at: from_ms(self.created_ms),
            expires_at: from_ms(self.expires_ms),
        }
    }

    /// Every `grant_index` key of this grant.
    pub fn index_keys(&self, realm: RealmId) -> Vec<Vec<u8>> {
        let mut out = vec![
            [&subject_prefix(realm, &self.subject_id)[..], &self.id].concat(),
            [
                &index_prefix(realm, IndexKind::Expiry)[..],
                &keys::time_bytes(self.expires_ms),
                &self.id,
            ]
            .concat(),
        ];
        if let Some(sid) = &self.sid {
            out.push([&session_prefix(realm, sid)[..], &self.id].concat());
        }
        out
    }
}

/// Key of a grant record.
pub fn grant_key(realm: RealmId, id: &GrantId) -> [u8; 20] {
    keys::session_key(realm, id)
}

fn index_prefix(realm: RealmId, kind: IndexKind) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[..4].copy_from_slice(&keys::realm_prefix(realm));
    k[4] = kind as u8;
    k
}

/// Prefix of a subject's `grant_index` entries.
pub fn subject_prefix(realm: RealmId, subject: &str) -> Vec<u8> {
    let mut k = index_prefix(realm, IndexKind::Subject).to_vec();
    k.push(subject.len() as u8);
    k.extend_from_slice(subject.as_bytes());
    k
}

/// Prefix of a session's `grant_index` entries.
pub fn session_prefix(realm: RealmId, sid: &Sid) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[..5].copy_from_slice(&index_prefix(realm, IndexKind::Session));
    k[5..].copy_from_slice(sid);
    k
}

/// The `grant_index` range of a realm's grants that expire before `before_ms`.
pub fn expired_range(realm: RealmId, before_ms: i64) -> (Vec<u8>, Vec<u8>) {
    let start = index_prefix(realm, IndexKind::Expiry).to_vec();
    let end = [&start[..], &keys::time_bytes(before_ms)].concat();
    (start, end)
}

/// The grant id at the end of any `grant_index` key.
pub fn id_of_index_key(key: &[u8]) -> GrantId {
    key[key.len() - 16..].try_into().expect("16 bytes")
}

/// Counter (in `counts`) of the grants ever issued under a session: its grant generation.
pub fn session_grants_counter(realm: RealmId, sid: &Sid) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[..4].copy_from_slice(&keys::realm_prefix(realm));
    // Session counters sit beside the attribute counters, under a kind of their own.
    k[4] = 0x20;
    k[5..].copy_from_slice(sid);
    k
}

/// The grant trees as seen inside one transaction, with the shared counters.
pub struct GrantTx<'a> {
    pub grants: &'a TransactionalTree,
    pub tokens: &'a TransactionalTree,
    pub index: &'a TransactionalTree,
    pub counts: &'a TransactionalTree,
}

impl GrantTx<'_> {
    pub fn insert(&self, realm: RealmId, g: &StoredGrant) -> TxResult<()> {
        let key = grant_key(realm, &g.id);
        self.grants.insert(&key[..], g.encode())?;
        if let Some(h) = &g.token_hash {
            self.tokens.insert(&h[..], &key[..])?;
        }
        for k in g.index_keys(realm) {
            self.index.insert(k, &[])?;
        }
        if let Some(sid) = &g.sid {
            let key = session_grants_counter(realm, sid);
            let n = keys::add_to_counter(self.counts.get(&key[..])?.as_deref(), 1);
            self.counts.insert(&key[..], &n.to_be_bytes())?;
        }
        Ok(())
    }

    /// Removes a grant if it is still stored; true if it was.
    pub fn delete(&self, realm: RealmId, id: &GrantId) -> TxResult<bool> {
        let Some(g) = self.load(realm, id)? else {
            return Ok(false);
        };
        self.grants.remove(&grant_key(realm, id)[..])?;
        if let Some(h) = &g.token_hash {
            self.tokens.remove(&h[..])?;
        }
        for k in g.index_keys(realm) {
            self.index.remove(k)?;
        }
        Ok(true)
    }

    pub fn load(&self, realm: RealmId, id: &GrantId) -> TxResult<Option<StoredGrant>> {
        match self.grants.get(&grant_key(realm, id)[..])? {
            Some(v) => Ok(Some(
                StoredGrant::decode(&v).map_err(ConflictableTransactionError::Abort)?,
            )),
            None => Ok(None),
        }
    }

    /// The session's grant generation: grants ever issued under it. Removing a grant leaves it
    /// as it is, so a changed value always means a grant was added.
    pub fn session_generation(&self, realm: RealmId, sid: &Sid) -> TxResult<u64> {
        let v = self.counts.get(&session_grants_counter(realm, sid)[..])?;
        Ok(keys::counter_value(v.as_deref()))
    }

    /// Drops the session's grant generation once its record is gone (no grant can be issued
    /// under a session that does not exist).
    pub fn forget_session(&self, realm: RealmId, sid: &Sid) -> TxResult<()> {
        self.counts
            .remove(&session_grants_counter(realm, sid)[..])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_index_keys_end_in_the_id() {
        let g = StoredGrant {
            id: [9; 16],
            kind: GrantKind::RefreshToken,
            subject_id: "alice".into(),
            sid: Some([3; 16]),
            client_id: "crm".into(),
            scopes: vec!["openid".into()],
            created_ms: 1,
            expires_ms: 2,
            token_hash: Some([1; 32]),
        };
        assert_eq!(StoredGrant::decode(&g.encode()).unwrap(), g);
        let keys = g.index_keys(7);
        assert_eq!(keys.len(), 3);
        for k in &keys {
            assert_eq!(id_of_index_key(k), g.id);
        }
        assert!(keys[0].starts_with(&subject_prefix(7, "alice")));
        assert!(keys[2].starts_with(&session_prefix(7, &[3; 16])));
    }
}
