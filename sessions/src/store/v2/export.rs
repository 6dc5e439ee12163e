//! Reading everything the v2 layout holds as plain values ([`crate::store::export`]), in key
//! order a batch at a time, each batch starting after the last item of the one before.

use std::ops::Bound;

use super::super::export::{ExportedGrant, ExportedRealm, ExportedSession};
use super::super::grants::StoredGrant;
use super::super::outbox;
use super::super::record::from_ms;
use super::layout::{self, AuditKey, ClientRegKey, DeliveryKey, GrantKey, MetaKey, SessionKey};
use super::{audit, realms, SledStoreV2};
use crate::delivery::Delivery;
use crate::error::{Result, SessionError};
use crate::model::{AuditEntry, ClientRegistration};

/// The keys under `prefix` after `after` (a full key), up to `limit` of them.
fn range_after(
    tree: &sled::Tree,
    prefix: &[u8],
    after: Option<Vec<u8>>,
    limit: usize,
) -> Result<Vec<(sled::IVec, sled::IVec)>> {
    let lower = match after {
        Some(k) => Bound::Excluded(k),
        None => Bound::Included(prefix.to_vec()),
    };
    let mut out = Vec::new();
    for item in tree.range::<Vec<u8>, _>((lower, Bound::Unbounded)) {
        let (k, v) = item?;
        if !k.starts_with(prefix) || out.len() == limit {
            break;
        }
        out.push((k, v));
    }
    Ok(out)
}

impl SledStoreV2 {
    /// Every realm, by name, with its number.
    pub fn export_realms(&self) -> Vec<ExportedRealm> {
        let mut out: Vec<ExportedRealm> = self
            .realms
            .load()
            .values()
            .map(|r| ExportedRealm {
                id: r.id,
                name: r.name.clone(),
                settings: r.settings.clone(),
                created_at: from_ms(r.created_ms),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The key results tokens are signed with.
    pub fn results_token_key(&self) -> Result<[u8; 32]> {
        match self.tree.get(MetaKey::ResultsTokenKey.encode())? {
            Some(k) if k.len() == 32 => Ok(k.as_ref().try_into().expect("32 bytes")),
            _ => Err(SessionError::Storage("results token key missing".into())),
        }
    }

    /// Every registered client of a realm, by id.
    pub fn export_clients(&self, realm: &str) -> Result<Vec<(String, ClientRegistration)>> {
        let realm = self.realm(realm)?;
        let prefix = ClientRegKey::prefix(realm.id);
        range_after(&self.tree, &prefix, None, usize::MAX)?
            .into_iter()
            .map(|(k, v)| {
                let id = realms::client_of(&k)?.to_owned();
                let reg = serde_json::from_slice(&v)
                    .map_err(|e| SessionError::Storage(format!("corrupt client record: {e}")))?;
                Ok((id, reg))
            })
            .collect()
    }

    /// Up to `limit` sessions of a realm in creation order, after the session `after` names
    /// (its creation time in ms and sid).
    pub fn export_sessions(
        &self,
        realm: &str,
        after: Option<(i64, [u8; 16])>,
        limit: usize,
    ) -> Result<Vec<ExportedSession>> {
        let realm = self.realm(realm)?;
        let prefix = SessionKey::prefix(realm.id);
        let after = after.map(|(created_ms, sid)| {
            let key = SessionKey {
                realm: realm.id,
                created_ms,
                sid,
            };
            key.encode().to_vec()
        });
        range_after(&self.tree, &prefix, after, limit)?
            .into_iter()
            .map(|(k, v)| {
                let SessionKey {
                    created_ms: created,
                    sid,
                    ..
                } = SessionKey::decode(&k)
                    .ok_or_else(|| SessionError::Storage("bad session record key".into()))?;
                let s = self.decode(created, &sid, &v)?;
                Ok(ExportedSession {
                    found_by_hash: layout::created_of_sid(&sid) != Some(created),
                    token_hash: s.token_hash,
                    session: s.to_session(&realm.name),
                })
            })
            .collect()
    }

    /// Up to `limit` grants of a realm in grant-id order, after the grant `after`.
    pub fn export_grants(
        &self,
        realm: &str,
        after: Option<[u8; 16]>,
        limit: usize,
    ) -> Result<Vec<ExportedGrant>> {
        let realm = self.realm(realm)?;
        let prefix = GrantKey::prefix(realm.id);
        let after = after.map(|id| {
            GrantKey {
                realm: realm.id,
                id,
            }
            .encode()
            .to_vec()
        });
        range_after(&self.tree, &prefix, after, limit)?
            .into_iter()
            .map(|(_, v)| {
                let g = StoredGrant::decode(&v)?;
                Ok(ExportedGrant {
                    token_hash: g.token_hash,
                    grant: g.to_grant(&realm.name),
                })
            })
            .collect()
    }

    /// Up to `limit` deliveries of a realm in id order, after the delivery `after`.
    pub fn export_deliveries(
        &self,
        realm: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let realm = self.realm(realm)?;
        let prefix = DeliveryKey::prefix(realm.id);
        let after = after.map(|id| {
            DeliveryKey {
                realm: realm.id,
                id,
            }
            .encode()
            .to_vec()
        });
        range_after(&self.tree, &prefix, after, limit)?
            .into_iter()
            .map(|(_, v)| outbox::decode(&v))
            .collect()
    }

    /// Up to `limit` audit entries, oldest first, after the entry `after`.
    pub fn export_audit(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, AuditEntry)>> {
        let prefix = AuditKey::prefix();
        let after = after.map(|id| AuditKey { id }.encode().to_vec());
        range_after(&self.tree, &prefix, after, limit)?
            .into_iter()
            .map(|(k, v)| audit::decode(&k, &v))
            .collect()
    }
}
