//! The back-channel logout outbox: one record per delivery (realm, `o`, id), an entry by status
//! (realm, `s`, status, id) for listing, and, while pending, an entry in its client's queue
//! (realm 0, `Q`, realm, client, due time, id) that the delivery workers walk queue by queue.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::super::keys::RealmId;
use super::super::outbox;
use super::super::record::{sid_to_string, StoredSession};
use super::super::rules::{retried_delivery_entry, MAX_LISTED_DELIVERIES};
use super::super::DueCursor;
use super::commit::Batch;
use super::counters::Deltas;
use super::layout::{Counter, DeliveryKey, DeliveryStatusKey, QueueKey};
use super::realms::RealmEntry;
use super::SledStoreV2;
use crate::delivery::{
    AttemptResult, Delivery, DeliveryCounts, DeliveryPage, DeliveryStatus, NewDelivery,
};
use crate::error::{Result, SessionError};
use crate::stats::{DeliveryOutcome, Metric};

impl SledStoreV2 {
    fn load_delivery(&self, realm: RealmId, id: u64) -> Result<Option<Delivery>> {
        match self.tree.get(DeliveryKey { realm, id }.encode())? {
            Some(v) => Ok(Some(outbox::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Replaces a delivery under its lock with what `change` makes of it; with `attempt_at`, the
    /// change is an attempt made then, counted in the activity stats by its outcome.
    fn modify_delivery(
        &self,
        realm: RealmId,
        id: u64,
        attempt_at: Option<DateTime<Utc>>,
        change: impl Fn(&Delivery) -> Result<Delivery>,
    ) -> Result<Delivery> {
        let _lock = self.deliveries.lock(&DeliveryKey { realm, id }.encode());
        let old = self
            .load_delivery(realm, id)?
            .ok_or(SessionError::DeliveryNotFound(id))?;
        let new = change(&old)?;
        let mut batch = Batch::default();
        let mut deltas = Deltas::default();
        for k in delivery_index(realm, &old) {
            batch.remove(k);
        }
        put_delivery_record(&mut batch, realm, &new);
        if old.status != new.status {
            deltas.counter(Counter::Deliveries(old.status).key(realm), -1);
            deltas.counter(Counter::Deliveries(new.status).key(realm), 1);
        }
        if let Some(at) = attempt_at {
            let outcome = DeliveryOutcome::after_attempt(new.status);
            deltas.stat(realm, at, Metric::Delivery(outcome), 1);
        }
        self.write(batch, &deltas)?;
        Ok(new)
    }

    pub(super) fn due_deliveries_impl(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        per_client: usize,
        cursor: &mut DueCursor,
        skip: &crate::store::SkipDelivery<'_>,
    ) -> Result<Vec<Delivery>> {
        let mut out = Vec::new();
        if limit == 0 || per_client == 0 {
            return Ok(out);
        }
        let names: HashMap<RealmId, Arc<RealmEntry>> = self
            .realms
            .load()
            .values()
            .map(|r| (r.id, r.clone()))
            .collect();
        let now_ms = now.timestamp_millis();
        let start = QueueKey::prefix().to_vec();
        let last_turn = std::mem::take(&mut cursor.0);
        let mut wrapped = last_turn.is_empty();
        let mut next = if wrapped {
            start.clone()
        } else {
            QueueKey::after_queue(&last_turn)
        };
        loop {
            let first = self.tree.range(next.as_slice()..).keys().next();
            let first = first.transpose()?;
            let queue = first.as_deref().and_then(QueueKey::decode);
            let Some(queue) = queue else {
                if wrapped {
                    break;
                }
                wrapped = true;
                next = start.clone();
                continue;
            };
            let prefix = QueueKey::queue_prefix(queue.realm, queue.client_id);
            if wrapped && !last_turn.is_empty() && prefix > last_turn {
                break;
            }
            next = QueueKey::after_queue(&prefix);
            if queue.due_ms > now_ms {
                continue;
            }
            let Some(realm) = names.get(&queue.realm) else {
                continue;
            };
            let client = queue.client_id.to_owned();
            for k in self
                .tree
                .range(QueueKey::due_in_queue(&prefix, now_ms))
                .keys()
                .take(per_client)
            {
                let k = k?;
                let Some(entry) = QueueKey::decode(&k) else {
                    continue;
                };
                if skip(&realm.name, &client, entry.id) {
                    continue;
                }
                let Some(d) = self.load_delivery(entry.realm, entry.id)? else {
                    continue;
                };
                if d.status == DeliveryStatus::Pending
                    && d.next_attempt_at.is_some_and(|t| t <= now)
                {
                    out.push(d);
                    if out.len() >= limit {
                        cursor.0 = prefix;
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    pub(super) fn queue_delivery_impl(
        &self,
        new: &NewDelivery,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        let realm = self.realm(&new.realm)?;
        let delivery = Delivery::pending(self.next_id()?, new.clone(), now);
        let mut batch = Batch::default();
        let mut deltas = Deltas::default();
        put_delivery(&mut batch, &mut deltas, realm.id, &delivery);
        self.write(batch, &deltas)?;
        self.wait_durable()?;
        Ok(delivery)
    }

    pub(super) fn pending_deliveries_impl(
        &self,
        realm: &str,
        client_id: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let realm = self.realm(realm)?;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for k in self
            .tree
            .scan_prefix(QueueKey::queue_prefix(realm.id, client_id))
            .keys()
        {
            let k = k?;
            let Some(entry) = QueueKey::decode(&k) else {
                continue;
            };
            match self.load_delivery(realm.id, entry.id)? {
                Some(d) if d.status == DeliveryStatus::Pending => out.push(d),
                _ => continue,
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    pub(super) fn get_delivery_impl(&self, realm: &str, id: u64) -> Result<Delivery> {
        let realm = self.realm(realm)?;
        self.load_delivery(realm.id, id)?
            .ok_or(SessionError::DeliveryNotFound(id))
    }

    pub(super) fn record_attempt_impl(
        &self,
        attempted: &Delivery,
        jti: &str,
        result: &AttemptResult,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        let realm = self.realm(&attempted.realm)?;
        self.modify_delivery(realm.id, attempted.id, Some(now), |old| {
            Ok(old.after_attempt(attempted, jti, result, now))
        })
    }

    pub(super) fn retry_delivery_impl(
        &self,
        realm: &str,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        let realm = self.realm(realm)?;
        let delivery = self.modify_delivery(realm.id, id, None, |old| old.requeued(now))?;
        self.audit(&retried_delivery_entry(&realm.name, id, actor, now))?;
        self.wait_durable()?;
        Ok(delivery)
    }

    pub(super) fn purge_delivered_impl(
        &self,
        cutoff: DateTime<Utc>,
        batch: usize,
    ) -> Result<usize> {
        let mut purged = 0;
        let realms = self.realms.load();
        for realm in realms.values() {
            let prefix = DeliveryStatusKey::prefix(realm.id, DeliveryStatus::Delivered);
            let mut old = Vec::new();
            for k in self.tree.scan_prefix(prefix).keys() {
                let Some(DeliveryStatusKey { id, .. }) = DeliveryStatusKey::decode(&k?) else {
                    continue;
                };
                let Some(d) = self.load_delivery(realm.id, id)? else {
                    continue;
                };
                if d.created_at >= cutoff || purged + old.len() >= batch {
                    break;
                }
                old.push(id);
            }
            let key = |id| DeliveryKey {
                realm: realm.id,
                id,
            };
            let _locks = self
                .deliveries
                .lock_all(old.iter().map(|id| key(*id).encode()));
            let mut b = Batch::default();
            let mut deltas = Deltas::default();
            for id in &old {
                if let Some(d) = self.load_delivery(realm.id, *id)? {
                    if d.status == DeliveryStatus::Delivered {
                        b.remove(&key(*id).encode());
                        for k in delivery_index(realm.id, &d) {
                            b.remove(k);
                        }
                        deltas.counter(Counter::Deliveries(d.status).key(realm.id), -1);
                    }
                }
            }
            self.write(b, &deltas)?;
            purged += old.len();
            if purged >= batch {
                break;
            }
        }
        Ok(purged)
    }

    pub(super) fn list_deliveries_impl(
        &self,
        realm: &str,
        status: Option<DeliveryStatus>,
        before: Option<u64>,
        count: usize,
    ) -> Result<DeliveryPage> {
        let realm = self.realm(realm)?;
        let count = count.clamp(1, MAX_LISTED_DELIVERIES);
        let end = before.unwrap_or(u64::MAX);
        let mut deliveries = Vec::with_capacity(count + 1);
        match status {
            Some(status) => {
                let start = DeliveryStatusKey::prefix(realm.id, status);
                let end_key = DeliveryStatusKey {
                    realm: realm.id,
                    status,
                    id: end,
                }
                .encode();
                for k in self.tree.range(&start[..]..&end_key[..]).keys().rev() {
                    let Some(DeliveryStatusKey { id, .. }) = DeliveryStatusKey::decode(&k?) else {
                        continue;
                    };
                    if let Some(d) = self.load_delivery(realm.id, id)? {
                        deliveries.push(d);
                    }
                    if deliveries.len() > count {
                        break;
                    }
                }
            }
            None => {
                let start = DeliveryKey {
                    realm: realm.id,
                    id: 0,
                };
                let end_key = DeliveryKey {
                    realm: realm.id,
                    id: end,
                };
                for item in self
                    .tree
                    .range(start.encode()..end_key.encode())
                    .values()
                    .rev()
                    .take(count + 1)
                {
                    deliveries.push(outbox::decode(&item?)?);
                }
            }
        }
        let next_before = (deliveries.len() > count).then(|| {
            deliveries.truncate(count);
            deliveries.last().map(|d| d.id)
        });
        let counter = |s| self.counter(&Counter::Deliveries(s).key(realm.id));
        Ok(DeliveryPage {
            deliveries,
            counts: DeliveryCounts {
                pending: counter(DeliveryStatus::Pending),
                delivered: counter(DeliveryStatus::Delivered),
                failed: counter(DeliveryStatus::Failed),
            },
            next_before: next_before.flatten(),
        })
    }
}

/// A new pending delivery of a logout notification about `session` to one client.
pub(super) fn new_delivery(
    id: u64,
    realm: &RealmEntry,
    session: &StoredSession,
    client_id: &str,
    uri: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Delivery {
    Delivery::pending(
        id,
        NewDelivery {
            realm: realm.name.clone(),
            client_id: client_id.to_owned(),
            uri: uri.to_owned(),
            subject_id: session.subject_id.clone(),
            sid: sid_to_string(&session.sid),
            reason: reason.to_owned(),
        },
        now,
    )
}

/// The index entries a delivery in its state has.
pub(super) fn delivery_index(realm: RealmId, d: &Delivery) -> Vec<Vec<u8>> {
    let status = DeliveryStatusKey {
        realm,
        status: d.status,
        id: d.id,
    };
    let mut out = vec![status.encode().to_vec()];
    if let (DeliveryStatus::Pending, Some(at)) = (d.status, d.next_attempt_at) {
        let queued = QueueKey {
            realm,
            client_id: &d.client_id,
            due_ms: at.timestamp_millis(),
            id: d.id,
        };
        out.push(queued.encode());
    }
    out
}

fn put_delivery_record(batch: &mut Batch, realm: RealmId, d: &Delivery) {
    batch.insert(&DeliveryKey { realm, id: d.id }.encode(), outbox::encode(d));
    for k in delivery_index(realm, d) {
        batch.insert(k, &[][..]);
    }
}

/// Queues a new delivery in a batch.
pub(super) fn put_delivery(batch: &mut Batch, deltas: &mut Deltas, realm: RealmId, d: &Delivery) {
    put_delivery_record(batch, realm, d);
    deltas.counter(Counter::Deliveries(d.status).key(realm), 1);
}
