//! The back-channel logout outbox, shared by the delivery workers of every server.
//!
//! Each client has its own queue (its pending rows, by due time). A worker's look at the queues
//! takes each queue's head with `FOR UPDATE SKIP LOCKED`, passing over rows another worker is
//! looking at this moment and rows another store has claimed, and claims what it answers (its
//! store's id and a lease on the database's clock) before committing. So two servers never
//! attempt one delivery at once; recording the attempt releases the claim, and the claim of a
//! server that died mid-attempt runs out with its lease.

use chrono::{DateTime, Utc};
use sessions::delivery::{
    AttemptResult, Delivery, DeliveryCounts, DeliveryPage, DeliveryStatus, NewDelivery,
};
use sessions::stats::{DeliveryOutcome, Metric};
use sessions::store::shared::retried_delivery_entry;
use sessions::store::{DueCursor, MAX_LISTED_DELIVERIES};
use sessions::SessionError;
use uuid::Uuid;

use super::counters::{self, Deltas, Kind};
use super::db::{db_run, db_write, Tx, R};
use super::rows::{self, status_number, DELIVERY};
use super::{audit, PostgresStore};

/// How long a claim keeps a delivery from other servers' workers: well beyond one attempt.
pub(crate) const CLAIM_LEASE_SECS: f64 = 120.0;

/// The queue a cursor names: (realm, client id).
fn decode_cursor(c: &DueCursor) -> Option<(String, String)> {
    let text = std::str::from_utf8(c.as_bytes()).ok()?;
    let (realm, client) = text.split_once('\0')?;
    Some((realm.to_owned(), client.to_owned()))
}

fn encode_cursor(queue: &(String, String)) -> DueCursor {
    DueCursor::from_bytes(format!("{}\0{}", queue.0, queue.1).into_bytes())
}

/// The first queue with pending deliveries after `after` (from the start without one).
async fn next_queue(tx: &Tx<'_>, after: Option<&(String, String)>) -> R<Option<(String, String)>> {
    let row = match after {
        None => {
            tx.query_opt(
                "SELECT realm, client_id FROM deliveries WHERE status = 0
                  ORDER BY realm, client_id LIMIT 1",
                &[],
            )
            .await?
        }
        Some((realm, client)) => {
            tx.query_opt(
                "SELECT realm, client_id FROM deliveries
                  WHERE status = 0 AND (realm, client_id) > ($1, $2)
                  ORDER BY realm, client_id LIMIT 1",
                &[realm, client],
            )
            .await?
        }
    };
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

/// Loads a delivery of a realm, locked until the transaction ends.
async fn lock(tx: &Tx<'_>, realm: &str, id: u64) -> R<Delivery> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT {DELIVERY} FROM deliveries d WHERE d.realm = $1 AND d.id = $2 FOR UPDATE"
            ),
            &[&realm, &(id as i64)],
        )
        .await?
        .ok_or(SessionError::DeliveryNotFound(id))?;
    rows::delivery(&row)
}

/// Writes a delivery's new state, with its status count, and releases any claim on it when
/// `release`; with `attempt_at`, the change is an attempt made then, counted in the activity
/// stats by its outcome.
async fn update(
    tx: &Tx<'_>,
    old: &Delivery,
    new: &Delivery,
    release: bool,
    attempt_at: Option<DateTime<Utc>>,
) -> R<()> {
    let mut deltas = Deltas::default();
    if let Some(at) = attempt_at {
        let outcome = DeliveryOutcome::after_attempt(new.status);
        deltas.stat(&new.realm, at, Metric::Delivery(outcome), 1);
    }
    if old.status != new.status {
        deltas.delivery(&new.realm, old.status, -1);
        deltas.delivery(&new.realm, new.status, 1);
    }
    tx.execute(
        "UPDATE deliveries SET status = $3, attempts = $4, window_attempts = $5,
                retry_window_start = $6, next_attempt_at = $7, last_attempt_at = $8,
                delivered_at = $9, last_error = $10, last_jti = $11,
                claimed_by = CASE WHEN $12 THEN NULL ELSE claimed_by END,
                claimed_until = CASE WHEN $12 THEN NULL ELSE claimed_until END
          WHERE realm = $1 AND id = $2",
        &[
            &new.realm,
            &(new.id as i64),
            &status_number(new.status),
            &(new.attempts as i32),
            &(new.window_attempts as i32),
            &new.retry_window_start,
            &new.next_attempt_at,
            &new.last_attempt_at,
            &new.delivered_at,
            &new.last_error,
            &new.last_jti,
            &release,
        ],
    )
    .await?;
    deltas.apply(tx).await
}

impl PostgresStore {
    pub(crate) async fn due_deliveries_impl(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        per_client: usize,
        cursor: &mut DueCursor,
        skip: &sessions::store::SkipDelivery<'_>,
    ) -> sessions::Result<Vec<Delivery>> {
        if limit == 0 || per_client == 0 {
            return Ok(Vec::new());
        }
        let last_turn = decode_cursor(cursor);
        let per_client = i64::try_from(per_client).unwrap_or(i64::MAX);
        let (due, stopped_in) = db_write!(self.db, async |tx| {
            let mut out = Vec::new();
            let mut wrapped = last_turn.is_none();
            let mut next = last_turn.clone();
            let stopped_in = loop {
                let Some(queue) = next_queue(tx, next.as_ref()).await? else {
                    if wrapped {
                        break None;
                    }
                    wrapped = true;
                    next = None;
                    continue;
                };
                if wrapped && last_turn.as_ref().is_some_and(|last| queue > *last) {
                    break None;
                }
                let head = tx
                    .query(
                        &format!(
                            "SELECT {DELIVERY} FROM deliveries d
                              WHERE d.realm = $1 AND d.client_id = $2 AND d.status = 0
                                AND d.next_attempt_at <= $3
                                AND (d.claimed_by IS NULL OR d.claimed_by = $4
                                     OR d.claimed_until <= clock_timestamp())
                              ORDER BY d.next_attempt_at, d.id LIMIT $5
                                FOR UPDATE SKIP LOCKED"
                        ),
                        &[&queue.0, &queue.1, &now, &self.claimer, &per_client],
                    )
                    .await?;
                let mut full = false;
                for row in &head {
                    let d = rows::delivery(row)?;
                    if skip(&d.realm, &d.client_id, d.id) {
                        continue;
                    }
                    out.push(d);
                    if out.len() >= limit {
                        full = true;
                        break;
                    }
                }
                if full {
                    break Some(queue);
                }
                next = Some(queue);
            };
            let (realms, ids): (Vec<String>, Vec<i64>) =
                out.iter().map(|d| (d.realm.clone(), d.id as i64)).unzip();
            if !ids.is_empty() {
                tx.execute(
                    "UPDATE deliveries d SET claimed_by = $3,
                            claimed_until = clock_timestamp() + make_interval(secs => $4)
                       FROM unnest($1::text[], $2::int8[]) AS c(realm, id)
                      WHERE d.realm = c.realm AND d.id = c.id",
                    &[&realms, &ids, &self.claimer, &CLAIM_LEASE_SECS],
                )
                .await?;
            }
            Ok((out, stopped_in))
        })
        .await?;
        *cursor = stopped_in
            .as_ref()
            .map_or_else(DueCursor::default, encode_cursor);
        Ok(due)
    }

    pub(crate) async fn record_attempt_impl(
        &self,
        attempted: &Delivery,
        jti: &str,
        result: &AttemptResult,
        now: DateTime<Utc>,
    ) -> sessions::Result<Delivery> {
        db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, &attempted.realm).await?;
            let old = lock(tx, &realm.name, attempted.id).await?;
            let new = old.after_attempt(attempted, jti, result, now);
            update(tx, &old, &new, true, Some(now)).await?;
            Ok(new)
        })
        .await
    }

    pub(crate) async fn retry_delivery_impl(
        &self,
        realm: &str,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> sessions::Result<Delivery> {
        db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let old = lock(tx, &realm.name, id).await?;
            let new = old.requeued(now)?;
            // A claim stays: an attempt in flight on another server still owns the delivery.
            update(tx, &old, &new, false, None).await?;
            let entry = retried_delivery_entry(&realm.name, id, actor, now);
            audit::insert(tx, &entry).await?;
            Ok(new)
        })
        .await
    }

    pub(crate) async fn purge_delivered_impl(
        &self,
        cutoff: DateTime<Utc>,
        batch: usize,
    ) -> sessions::Result<usize> {
        self.each_realm_up_to(batch, async |realm, left| {
            db_write!(self.db, async |tx| {
                let n = tx
                    .execute(
                        "WITH picked AS MATERIALIZED (
                            SELECT id FROM deliveries
                             WHERE realm = $1 AND status = 1 AND created_at < $2
                             ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
                         DELETE FROM deliveries d USING picked p
                          WHERE d.realm = $1 AND d.id = p.id",
                        &[&realm, &cutoff, &left],
                    )
                    .await?;
                let mut deltas = Deltas::default();
                deltas.delivery(&realm, DeliveryStatus::Delivered, -(n as i64));
                deltas.apply(tx).await?;
                Ok(n as usize)
            })
            .await
        })
        .await
    }

    pub(crate) async fn queue_delivery_impl(
        &self,
        new: &NewDelivery,
        now: DateTime<Utc>,
    ) -> sessions::Result<Delivery> {
        let sid = Uuid::parse_str(&new.sid)
            .map_err(|_| SessionError::invalid(format!("sid '{}' is not a UUID", new.sid)))?;
        db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, &new.realm).await?;
            let id: i64 = tx
                .query_one("SELECT nextval('delivery_ids')", &[])
                .await?
                .try_get(0)?;
            let delivery = Delivery::pending(id as u64, new.clone(), now);
            tx.execute(
                "INSERT INTO deliveries (realm, id, client_id, uri, subject_id, sid, reason, status,
                                         created_at, retry_window_start, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8, $8)",
                &[
                    &realm.name,
                    &id,
                    &delivery.client_id,
                    &delivery.uri,
                    &delivery.subject_id,
                    &sid,
                    &delivery.reason,
                    &now,
                ],
            )
            .await?;
            let mut deltas = Deltas::default();
            deltas.delivery(&realm.name, DeliveryStatus::Pending, 1);
            deltas.apply(tx).await?;
            Ok(delivery)
        })
        .await
    }

    pub(crate) async fn pending_deliveries_impl(
        &self,
        realm: &str,
        client_id: &str,
        limit: usize,
    ) -> sessions::Result<Vec<Delivery>> {
        let limit = limit.min(i64::MAX as usize) as i64;
        db_run!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            tx.query(
                &format!(
                    "SELECT {DELIVERY} FROM deliveries d
                      WHERE d.realm = $1 AND d.client_id = $2 AND d.status = 0
                      ORDER BY d.next_attempt_at, d.id LIMIT $3"
                ),
                &[&realm.name, &client_id, &limit],
            )
            .await?
            .iter()
            .map(rows::delivery)
            .collect()
        })
        .await
    }

    pub(crate) async fn get_delivery_impl(
        &self,
        realm: &str,
        id: u64,
    ) -> sessions::Result<Delivery> {
        let id = i64::try_from(id).map_err(|_| SessionError::DeliveryNotFound(id))?;
        db_run!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT {DELIVERY} FROM deliveries d WHERE d.realm = $1 AND d.id = $2"
                    ),
                    &[&realm.name, &id],
                )
                .await?
                .ok_or(SessionError::DeliveryNotFound(id as u64))?;
            rows::delivery(&row)
        })
        .await
    }

    pub(crate) async fn list_deliveries_impl(
        &self,
        realm: &str,
        status: Option<DeliveryStatus>,
        before: Option<u64>,
        count: usize,
    ) -> sessions::Result<DeliveryPage> {
        let count = count.clamp(1, MAX_LISTED_DELIVERIES);
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let limit = count as i64 + 1;
        db_run!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let found = match status {
                Some(status) => {
                    tx.query(
                        &format!(
                            "SELECT {DELIVERY} FROM deliveries d
                              WHERE d.realm = $1 AND d.status = $2 AND d.id < $3
                              ORDER BY d.id DESC LIMIT $4"
                        ),
                        &[&realm.name, &status_number(status), &before, &limit],
                    )
                    .await?
                }
                None => {
                    tx.query(
                        &format!(
                            "SELECT {DELIVERY} FROM deliveries d
                              WHERE d.realm = $1 AND d.id < $2 ORDER BY d.id DESC LIMIT $3"
                        ),
                        &[&realm.name, &before, &limit],
                    )
                    .await?
                }
            };
            let mut deliveries = found.iter().map(rows::delivery).collect::<R<Vec<_>>>()?;
            let next_before = (deliveries.len() > count).then(|| {
                deliveries.truncate(count);
                deliveries.last().map(|d| d.id)
            });
            let of =
                |s: DeliveryStatus| counters::count(tx, &realm.name, Kind::Deliveries, s.as_str());
            let (pending, delivered, failed) = futures::try_join!(
                of(DeliveryStatus::Pending),
                of(DeliveryStatus::Delivered),
                of(DeliveryStatus::Failed)
            )?;
            Ok(DeliveryPage {
                deliveries,
                counts: DeliveryCounts {
                    pending,
                    delivered,
                    failed,
                },
                next_before: next_before.flatten(),
            })
        })
        .await
    }
}
