//! The back-channel logout outbox: deliveries are written in the same transaction that ends their
//! session, so a revocation that was acknowledged always has its notifications queued.
//!
//! Trees:
//! - `outbox`: realm id + delivery id → [`Delivery`] (JSON)
//! - `outbox_index`: `D` + next-attempt time + realm id + id + client id → () for pending
//!   deliveries (what the worker scans; the client id lets it pass over a busy client's entries
//!   without reading them); `S` + realm id + status + id → () (listing by status); `C` + realm id + status
//!   → exact count.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::keys::{self, RealmId};
use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::{Result, SessionError};

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<SessionError>>;

const DUE: u8 = b'D';
const STATUS: u8 = b'S';
const COUNT: u8 = b'C';

/// Key of a delivery record.
pub fn delivery_key(realm: RealmId, id: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&keys::realm_prefix(realm));
    k[4..].copy_from_slice(&id.to_be_bytes());
    k
}

/// What a due-index key names.
#[derive(Debug, PartialEq, Eq)]
pub struct DueEntry<'a> {
    pub realm: RealmId,
    pub id: u64,
    pub client_id: &'a [u8],
}

/// Parses a due-index key.
pub fn split_due_key(k: &[u8]) -> DueEntry<'_> {
    DueEntry {
        realm: RealmId::from_be_bytes(k[9..13].try_into().expect("4 bytes")),
        id: u64::from_be_bytes(k[13..21].try_into().expect("8 bytes")),
        client_id: &k[21..],
    }
}

fn status_byte(s: DeliveryStatus) -> u8 {
    match s {
        DeliveryStatus::Pending => 1,
        DeliveryStatus::Delivered => 2,
        DeliveryStatus::Failed => 3,
    }
}

/// Key of a due-index entry.
fn due_key(ms: i64, realm: RealmId, id: u64, client_id: &str) -> Vec<u8> {
    [
        &[DUE][..],
        &keys::time_bytes(ms),
        &delivery_key(realm, id),
        client_id.as_bytes(),
    ]
    .concat()
}

/// The due-index range of deliveries whose next attempt is at or before `now_ms`.
pub fn due_range(now_ms: i64) -> (Vec<u8>, Vec<u8>) {
    (
        vec![DUE],
        [&[DUE][..], &keys::time_bytes(now_ms + 1)].concat(),
    )
}

/// Prefix of a realm's status-index entries for one status.
pub fn status_prefix(realm: RealmId, status: DeliveryStatus) -> Vec<u8> {
    [
        &[STATUS][..],
        &keys::realm_prefix(realm),
        &[status_byte(status)],
    ]
    .concat()
}

/// Key of a status-index entry.
fn status_key(realm: RealmId, status: DeliveryStatus, id: u64) -> Vec<u8> {
    [&status_prefix(realm, status)[..], &id.to_be_bytes()].concat()
}

/// Key of a realm's counter of deliveries in one status.
pub fn count_key(realm: RealmId, status: DeliveryStatus) -> Vec<u8> {
    [
        &[COUNT][..],
        &keys::realm_prefix(realm),
        &[status_byte(status)],
    ]
    .concat()
}

pub fn encode(d: &Delivery) -> Vec<u8> {
    serde_json::to_vec(d).expect("a delivery always serializes")
}

pub fn decode(v: &[u8]) -> Result<Delivery> {
    serde_json::from_slice(v)
        .map_err(|e| SessionError::Storage(format!("corrupt delivery record: {e}")))
}

/// The index entries a delivery in this state has.
fn index_keys(realm: RealmId, d: &Delivery) -> Vec<Vec<u8>> {
    let mut out = vec![status_key(realm, d.status, d.id)];
    if let (DeliveryStatus::Pending, Some(at)) = (d.status, d.next_attempt_at) {
        out.push(due_key(at.timestamp_millis(), realm, d.id, &d.client_id));
    }
    out
}

/// The outbox trees as seen inside one transaction.
pub struct OutboxTx<'a> {
    pub outbox: &'a TransactionalTree,
    pub index: &'a TransactionalTree,
}

impl OutboxTx<'_> {
    /// A fresh delivery id.
    pub fn next_id(&self) -> TxResult<u64> {
        Ok(self.outbox.generate_id()?)
    }

    /// Queues a new delivery.
    pub fn insert(&self, realm: RealmId, d: &Delivery) -> TxResult<()> {
        self.outbox
            .insert(&delivery_key(realm, d.id)[..], encode(d))?;
        for k in index_keys(realm, d) {
            self.index.insert(k, &[])?;
        }
        self.bump(realm, d.status, 1)
    }

    pub fn load(&self, realm: RealmId, id: u64) -> TxResult<Option<Delivery>> {
        match self.outbox.get(&delivery_key(realm, id)[..])? {
            Some(v) => Ok(Some(
                decode(&v).map_err(ConflictableTransactionError::Abort)?,
            )),
            None => Ok(None),
        }
    }

    /// Replaces a delivery's record and moves its index entries and counters along.
    pub fn update(&self, realm: RealmId, old: &Delivery, new: &Delivery) -> TxResult<()> {
        self.outbox
            .insert(&delivery_key(realm, new.id)[..], encode(new))?;
        for k in index_keys(realm, old) {
            self.index.remove(k)?;
        }
        for k in index_keys(realm, new) {
            self.index.insert(k, &[])?;
        }
        if old.status != new.status {
            self.bump(realm, old.status, -1)?;
            self.bump(realm, new.status, 1)?;
        }
        Ok(())
    }

    /// Removes a delivery with its index entries, adjusting the counters.
    pub fn delete(&self, realm: RealmId, d: &Delivery) -> TxResult<()> {
        if self
            .outbox
            .remove(&delivery_key(realm, d.id)[..])?
            .is_none()
        {
            return Ok(());
        }
        for k in index_keys(realm, d) {
            self.index.remove(k)?;
        }
        self.bump(realm, d.status, -1)
    }

    fn bump(&self, realm: RealmId, status: DeliveryStatus, delta: i64) -> TxResult<()> {
        let key = count_key(realm, status);
        let n = keys::add_to_counter(self.index.get(&key)?.as_deref(), delta);
        self.index.insert(key, &n.to_be_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_back_and_due_range_is_inclusive() {
        let k = due_key(1000, 5, 77, "crm");
        let entry = DueEntry {
            realm: 5,
            id: 77,
            client_id: b"crm",
        };
        assert_eq!(split_due_key(&k), entry);
        let (start, end) = due_range(1000);
        assert!(k >= start && k < end);
        assert!(due_key(1001, 5, 77, "crm") >= end);
    }
}
