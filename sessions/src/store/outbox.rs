//! The back-channel logout outbox's record encoding and its per-client queue keys (`Q`, realm id,
//! length-prefixed client id, next-attempt time, id): one queue per client, so the worker takes
//! the earliest due entries of each client and a busy client's backlog never hides the others'.
//! The v2 layout keeps these keys under its global prefix (`v2::outbox`).

use super::keys::{self, RealmId};
use crate::delivery::Delivery;
use crate::error::{Result, SessionError};

const QUEUE: u8 = b'Q';

/// Prefix of one client's queue of pending deliveries.
pub fn queue_prefix(realm: RealmId, client_id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + client_id.len() + 16);
    k.push(QUEUE);
    k.extend_from_slice(&keys::realm_prefix(realm));
    k.push(client_id.len() as u8);
    k.extend_from_slice(client_id);
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

/// A delivery record as stored (JSON).
pub fn encode(d: &Delivery) -> Vec<u8> {
    serde_json::to_vec(d).expect("a delivery always serializes")
}

/// Reads a stored delivery record.
pub fn decode(v: &[u8]) -> Result<Delivery> {
    serde_json::from_slice(v)
        .map_err(|e| SessionError::Storage(format!("corrupt delivery record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key of a queue entry.
    fn queue_key(realm: RealmId, client_id: &str, ms: i64, id: u64) -> Vec<u8> {
        let mut k = queue_prefix(realm, client_id.as_bytes());
        k.extend_from_slice(&keys::time_bytes(ms));
        k.extend_from_slice(&id.to_be_bytes());
        k
    }

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
        assert_eq!(QueueEntry::parse(b"S\0\0\0\x05\x01"), None);
        let prefix = queue_prefix(5, b"crm");
        let (start, end) = due_in_queue(&prefix, 1000);
        assert!(k >= start && k < end);
        assert!(queue_key(5, "crm", 1001, 0) >= end);
        let last = queue_key(5, "crm", i64::MAX, u64::MAX);
        assert!(last < after_queue(&prefix));
        assert!(after_queue(&prefix) < queue_key(5, "crm2", i64::MIN, 0));
        assert!(after_queue(&prefix) < queue_key(5, "crn", i64::MIN, 0));
    }
}
