//! How a grant record is stored (both sled layouts use this encoding; the v2 layout's keys and
//! index entries for it are in `v2::layout`).

use serde::{Deserialize, Serialize};

use super::keys::Sid;
use super::record::{from_ms, sid_to_string};
use crate::error::{Result, SessionError};
use crate::grant::{Grant, GrantKind};

/// Bytes of a grant id.
pub type GrantId = [u8; 16];

/// Version byte in front of every stored grant.
const RECORD_VERSION: u8 = 1;

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
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
    }
}
