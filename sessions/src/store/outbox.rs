//! The back-channel logout outbox: deliveries are written in the same transaction that ends their
//! session, so a revocation that was acknowledged always has its notifications queued.
//!
//! Trees:
//! - `outbox`: realm id + delivery id → [`Delivery`] (JSON)
//! - `outbox_index`: `Q` + realm id + client id (length-prefixed) + next-attempt time + id → ()
//!   for pending deliveries: one queue per client, so the worker takes the earliest due entries
//!   of each client and a busy client's backlog never hides the others'; `S` + realm id + status
//!   + id → () (listing by status); `C` + realm id + status → exact count.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::keys::{self, RealmId};
use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::{Result, SessionError};

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<SessionError>>;

const QUEUE: u8 = b'Q';
const STATUS: u8 = b'S';
const COUNT: u8 = b'C';
/// The due index of earlier versions: `D` + time + realm id + id + client id.
const LEGACY_DUE: u8 = b'D';

/// Key of a delivery record.
pub fn delivery_key(realm: RealmId, id: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&keys::realm_prefix(realm));
    k[4..].copy_from_slice(&id.to_be_bytes());
    k
}

/// Prefix of one client's queue of pending deliveries.
pub fn queue_prefix(realm: RealmId, client_id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + client_id.len() + 16);
    k.push(QUEUE);
    k.extend_from_slice(&keys::realm_prefix(realm));
    k.push(client_id.len() as u8);
    k.extend_from_slice(client_id);
    k
}

/// Key of a queue entry.
fn queue_key(realm: RealmId, client_id: &str, ms: i64, id: u64) -> Vec<u8> {
    let mut k = queue_prefix(realm, client_id.as_bytes());
    k.extend_from_slice(&keys::time_bytes(ms));
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// What a queue entry names.
#[derive(Debug, PartialEq, Eq)]
pub struct QueueEntry<'a> {
    pub realm: RealmId,
    pub client_id: &'a [u8],
    pub due_ms: i64,
    pub id: u64,
}

impl QueueEntry<'_> {
    /// Parses a queue-entry key; `None` for any other key.
    pub fn parse(k: &[u8]) -> Option<QueueEntry<'_>> {
        let (&kind, rest) = k.split_first()?;
        let len = usize::from(*rest.get(4)?);
        if kind != QUEUE || rest.len() != 5 + len + 16 {
            return None;
        }
        let (time, id) = rest[5 + len..].split_at(8);
        Some(QueueEntry {
            realm: RealmId::from_be_bytes(rest[..4].try_into().ok()?),
            client_id: &rest[5..5 + len],
            due_ms: keys::time_from_bytes(time),
            id: u64::from_be_bytes(id.try_into().ok()?),
        })
    }
}

/// The first key of the whole queue index.
pub fn queues_start() -> Vec<u8> {
    vec![QUEUE]
}

/// A key after every entry of the queue with this prefix and before the next queue's entries.
pub fn after_queue(prefix: &[u8]) -> Vec<u8> {
    [prefix, &[0xFF; 17]].concat()
}

/// The range of a queue's entries due at or before `now_ms`.
pub fn due_in_queue(prefix: &[u8], now_ms: i64) -> (Vec<u8>, Vec<u8>) {
    (
        prefix.to_vec(),
        [prefix, &keys::time_bytes(now_ms.saturating_add(1))].concat(),
    )
}

/// Rewrites due-index entries of earlier versions as queue entries; answers how many. One atomic
/// batch, so an interrupted upgrade is simply done again at the next start.
pub fn upgrade_due_index(index: &sled::Tree) -> Result<usize> {
    let mut batch = sled::Batch::default();
    let mut n = 0;
    for item in index.scan_prefix([LEGACY_DUE]) {
        let (k, _) = item?;
        if k.len() < 21 {
            return Err(SessionError::Storage("bad legacy due-index key".into()));
        }
        let ms = keys::time_from_bytes(&k[1..9]);
        let realm = RealmId::from_be_bytes(k[9..13].try_into().expect("4 bytes"));
        let id = u64::from_be_bytes(k[13..21].try_into().expect("8 bytes"));
        let client = String::from_utf8_lossy(&k[21..]);
        batch.insert(queue_key(realm, &client, ms, id), &[]);
        batch.remove(k);
        n += 1;
    }
    if n > 0 {
        index.apply_batch(batch)?;
    }
    Ok(n)
}

fn status_byte(s: DeliveryStatus) -> u8 {
    match s {
        DeliveryStatus::Pending => 1,
        DeliveryStatus::Delivered => 2,
        DeliveryStatus::Failed => 3,
    }
}

/// What an `outbox_index` key is.
#[derive(Debug, PartialEq, Eq)]
pub enum IndexKey {
    /// A queue or status entry of one delivery.
    Entry { realm: RealmId, id: u64 },
    /// A realm's counter of deliveries in one status.
    Count {
        realm: RealmId,
        status: DeliveryStatus,
    },
}

impl IndexKey {
    /// Parses an `outbox_index` key; `None` for a key of no known layout.
    pub fn parse(k: &[u8]) -> Option<IndexKey> {
        if let Some(e) = QueueEntry::parse(k) {
            return Some(IndexKey::Entry {
                realm: e.realm,
                id: e.id,
            });
        }
        let realm = RealmId::from_be_bytes(k.get(1..5)?.try_into().ok()?);
        let status = DeliveryStatus::ALL
            .into_iter()
            .find(|s| k.get(5) == Some(&status_byte(*s)))?;
        match (k[0], k.len()) {
            (STATUS, 14) => Some(IndexKey::Entry {
                realm,
                id: u64::from_be_bytes(k[6..].try_into().ok()?),
            }),
            (COUNT, 6) => Some(IndexKey::Count { realm, status }),
            _ => None,
        }
    }
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
pub fn index_keys(realm: RealmId, d: &Delivery) -> Vec<Vec<u8>> {
    let mut out = vec![status_key(realm, d.status, d.id)];
    if let (DeliveryStatus::Pending, Some(at)) = (d.status, d.next_attempt_at) {
        out.push(queue_key(realm, &d.client_id, at.timestamp_millis(), d.id));
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
    fn queue_keys_parse_back_and_due_range_is_inclusive() {
        let k = queue_key(5, "crm", 1000, 77);
        let entry = QueueEntry {
            realm: 5,
            client_id: b"crm",
            due_ms: 1000,
            id: 77,
        };
        assert_eq!(QueueEntry::parse(&k), Some(entry));
        assert_eq!(
            QueueEntry::parse(&status_key(5, DeliveryStatus::Pending, 77)),
            None
        );
        let prefix = queue_prefix(5, b"crm");
        let (start, end) = due_in_queue(&prefix, 1000);
        assert!(k >= start && k < end);
        assert!(queue_key(5, "crm", 1001, 0) >= end);
        let last = queue_key(5, "crm", i64::MAX, u64::MAX);
        assert!(last < after_queue(&prefix));
        assert!(after_queue(&prefix) < queue_key(5, "crm2", i64::MIN, 0));
        assert!(after_queue(&prefix) < queue_key(5, "crn", i64::MIN, 0));
    }

    #[test]
    fn index_keys_parse_back_to_what_they_name() {
        let d = Delivery {
            id: 77,
            client_id: "crm".into(),
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(chrono::DateTime::from_timestamp_millis(1000).unwrap()),
            ..serde_json::from_str(SAMPLE_DELIVERY).unwrap()
        };
        let keys = index_keys(5, &d);
        assert_eq!(keys.len(), 2, "status and queue entries");
        for k in &keys {
            assert_eq!(
                IndexKey::parse(k),
                Some(IndexKey::Entry { realm: 5, id: 77 })
            );
        }
        assert_eq!(
            IndexKey::parse(&count_key(5, DeliveryStatus::Failed)),
            Some(IndexKey::Count {
                realm: 5,
                status: DeliveryStatus::Failed
            })
        );
        assert_eq!(IndexKey::parse(b"X1234567"), None);
        assert_eq!(IndexKey::parse(&[STATUS, 0, 0, 0, 5, 9]), None);
    }

    /// A delivery as stored, for tests to vary.
    const SAMPLE_DELIVERY: &str = r#"{"id":1,"realm":"r","client_id":"c","uri":"http://127.0.0.1:9/",
        "subject_id":"s","sid":"x","reason":"logout","status":"delivered","attempts":0,
        "window_attempts":0,"created_at":"2026-01-01T00:00:00Z",
        "retry_window_start":"2026-01-01T00:00:00Z","next_attempt_at":null,
        "last_attempt_at":null,"delivered_at":null,"last_error":null,"last_jti":null}"#;

    #[test]
    fn legacy_due_entries_are_upgraded_to_queue_entries() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let index = db.open_tree("outbox_index").unwrap();
        let legacy = [
            &[LEGACY_DUE][..],
            &keys::time_bytes(1000),
            &5u32.to_be_bytes(),
            &77u64.to_be_bytes(),
            b"crm",
        ]
        .concat();
        index.insert(legacy, &[]).unwrap();
        index
            .insert(count_key(5, DeliveryStatus::Pending), &[])
            .unwrap();
        assert_eq!(upgrade_due_index(&index).unwrap(), 1);
        assert_eq!(upgrade_due_index(&index).unwrap(), 0, "done once");
        assert!(index.contains_key(queue_key(5, "crm", 1000, 77)).unwrap());
        assert_eq!(index.len(), 2, "the counter is left alone");
    }
}
