//! Keys of the back-channel logout outbox: delivery records (`o`), their status index (`s`), and
//! the per-client queues of pending deliveries (`Q`, realm 0).

use crate::delivery::DeliveryStatus;

use super::RealmId;
use super::{fixed, growable, prefix, time_bytes, Fields, Tag, GLOBAL, HEAD_LEN};

/// The byte a delivery status is stored as (in status keys and delivery counter keys).
pub fn status_code(s: DeliveryStatus) -> u8 {
    match s {
        DeliveryStatus::Pending => 1,
        DeliveryStatus::Delivered => 2,
        DeliveryStatus::Failed => 3,
    }
}

/// Inverse of [`status_code`].
pub(super) fn status_from_code(code: u8) -> Option<DeliveryStatus> {
    [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ]
    .into_iter()
    .find(|s| status_code(*s) == code)
}

/// A delivery record's key: realm, `o`, delivery id. A realm's deliveries are in id order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub realm: RealmId,
    pub id: u64,
}

impl DeliveryKey {
    pub const LEN: usize = HEAD_LEN + 8;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[&prefix(self.realm, Tag::Delivery), &self.id.to_be_bytes()])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let (realm, mut f) = Fields::of(key, Tag::Delivery)?;
        let id = f.u64()?;
        f.end()?;
        Some(DeliveryKey { realm, id })
    }

    /// Prefix of every delivery record of a realm.
    pub fn prefix(realm: RealmId) -> [u8; HEAD_LEN] {
        prefix(realm, Tag::Delivery)
    }
}

/// A delivery's status entry: realm, `s`, status (one byte, [`status_code`]), delivery id. One
/// status's entries are in id order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeliveryStatusKey {
    pub realm: RealmId,
    pub status: DeliveryStatus,
    pub id: u64,
}

impl DeliveryStatusKey {
    pub const LEN: usize = HEAD_LEN + 1 + 8;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[
            &Self::prefix(self.realm, self.status),
            &self.id.to_be_bytes(),
        ])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let (realm, mut f) = Fields::of(key, Tag::DeliveryStatus)?;
        let status = status_from_code(f.byte()?)?;
        let id = f.u64()?;
        f.end()?;
        Some(DeliveryStatusKey { realm, status, id })
    }

    /// Prefix of a realm's entries of one status.
    pub fn prefix(realm: RealmId, status: DeliveryStatus) -> [u8; HEAD_LEN + 1] {
        fixed(&[&prefix(realm, Tag::DeliveryStatus), &[status_code(status)]])
    }
}

/// A pending delivery's entry in its client's queue: realm 0, `Q`, realm, client id (its length,
/// one byte, and bytes), next-attempt time, delivery id. One queue per client, in due order, so
/// the worker takes the earliest due entries of each client and a busy client's backlog never
/// hides the others'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueueKey<'a> {
    pub realm: RealmId,
    /// At most 255 bytes (identifiers are).
    pub client_id: &'a str,
    pub due_ms: i64,
    pub id: u64,
}

impl<'a> QueueKey<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut k = Self::with_room(self.realm, self.client_id, 16);
        k.extend_from_slice(&time_bytes(self.due_ms));
        k.extend_from_slice(&self.id.to_be_bytes());
        k
    }

    pub fn decode(key: &'a [u8]) -> Option<Self> {
        let mut f = Fields::global(key, Tag::Queue)?;
        let realm = f.u32()?;
        let client_id = f.short_str()?;
        let due_ms = f.time()?;
        let id = f.u64()?;
        f.end()?;
        Some(QueueKey {
            realm,
            client_id,
            due_ms,
            id,
        })
    }

    /// Prefix of every queue.
    pub fn prefix() -> [u8; HEAD_LEN] {
        prefix(GLOBAL, Tag::Queue)
    }

    /// Prefix of one client's queue.
    pub fn queue_prefix(realm: RealmId, client_id: &str) -> Vec<u8> {
        Self::with_room(realm, client_id, 0)
    }

    /// A key after every entry of the queue with this prefix and before the next queue's
    /// entries.
    pub fn after_queue(queue_prefix: &[u8]) -> Vec<u8> {
        [queue_prefix, &[0xFF; 17]].concat()
    }

    /// The range of a queue's entries due at or before `now_ms`.
    pub fn due_in_queue(queue_prefix: &[u8], now_ms: i64) -> std::ops::Range<Vec<u8>> {
        let end = [queue_prefix, &time_bytes(now_ms.saturating_add(1))].concat();
        queue_prefix.to_vec()..end
    }

    fn with_room(realm: RealmId, client_id: &str, more: usize) -> Vec<u8> {
        let mut k = growable(GLOBAL, Tag::Queue, 4 + 1 + client_id.len() + more);
        k.extend_from_slice(&realm.to_be_bytes());
        k.push(client_id.len() as u8);
        k.extend_from_slice(client_id.as_bytes());
        k
    }
}

#[cfg(test)]
mod tests {
    use super::super::strategy::{ident, realm, time};
    use super::*;
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = DeliveryStatus> {
        prop_oneof![
            Just(DeliveryStatus::Pending),
            Just(DeliveryStatus::Delivered),
            Just(DeliveryStatus::Failed)
        ]
    }

    #[test]
    fn queue_keys_parse_back_and_due_range_is_inclusive() {
        let at = |client_id, due_ms, id| QueueKey {
            realm: 5,
            client_id,
            due_ms,
            id,
        };
        let k = at("crm", 1000, 77).encode();
        assert_eq!(QueueKey::decode(&k), Some(at("crm", 1000, 77)));
        assert_eq!(QueueKey::decode(b"\0\0\0\0S\0\0\0\x05\x01"), None);
        let mut other_realm = k.clone();
        other_realm[3] = 1;
        assert_eq!(
            QueueKey::decode(&other_realm),
            None,
            "queues are in realm 0"
        );
        let prefix = QueueKey::queue_prefix(5, "crm");
        assert!(k.starts_with(&QueueKey::prefix()) && k.starts_with(&prefix));
        let due = QueueKey::due_in_queue(&prefix, 1000);
        assert!(due.contains(&k));
        assert!(at("crm", 1001, 0).encode() >= due.end);
        let last = at("crm", i64::MAX, u64::MAX).encode();
        assert!(last < QueueKey::after_queue(&prefix));
        assert!(QueueKey::after_queue(&prefix) < at("crm2", i64::MIN, 0).encode());
        assert!(QueueKey::after_queue(&prefix) < at("crn", i64::MIN, 0).encode());
    }

    proptest! {
        #[test]
        fn delivery_keys_round_trip_in_id_order(
            r in realm(), a in any::<u64>(), b in any::<u64>(),
        ) {
            let (x, y) = (DeliveryKey { realm: r, id: a }, DeliveryKey { realm: r, id: b });
            prop_assert_eq!(DeliveryKey::decode(&x.encode()), Some(x));
            prop_assert!(x.encode().starts_with(&DeliveryKey::prefix(r)));
            prop_assert_eq!(x.encode().cmp(&y.encode()), a.cmp(&b));
        }

        #[test]
        fn delivery_status_keys_round_trip_in_id_order_per_status(
            r in realm(), s in status(), a in any::<u64>(), b in any::<u64>(),
        ) {
            let x = DeliveryStatusKey { realm: r, status: s, id: a };
            let y = DeliveryStatusKey { id: b, ..x };
            prop_assert_eq!(DeliveryStatusKey::decode(&x.encode()), Some(x));
            prop_assert!(x.encode().starts_with(&DeliveryStatusKey::prefix(r, s)));
            prop_assert_eq!(x.encode().cmp(&y.encode()), a.cmp(&b));
            prop_assert_eq!(status_from_code(status_code(s)), Some(s));
        }

        #[test]
        fn queue_keys_round_trip_in_due_order_per_queue(
            r in realm(), c in ident(), t1 in time(), i1 in any::<u64>(), t2 in time(),
            i2 in any::<u64>(),
        ) {
            let x = QueueKey { realm: r, client_id: &c, due_ms: t1, id: i1 };
            let y = QueueKey { due_ms: t2, id: i2, ..x };
            let bytes = x.encode();
            prop_assert_eq!(QueueKey::decode(&bytes), Some(x));
            let prefix = QueueKey::queue_prefix(r, &c);
            prop_assert!(x.encode().starts_with(&prefix));
            prop_assert!(x.encode() < QueueKey::after_queue(&prefix));
            prop_assert_eq!(x.encode().cmp(&y.encode()), (t1, i1).cmp(&(t2, i2)));
            prop_assert_eq!(
                QueueKey::due_in_queue(&prefix, t2).contains(&x.encode()),
                t1 <= t2 && t1 < i64::MAX
            );
        }
    }
}
