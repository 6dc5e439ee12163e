//! Exact counts without `COUNT(*)`. The transaction that changes what is counted appends one row
//! of `counter_deltas` holding all its count changes; a background step ([`fold`], every
//! [`FOLD_EVERY`] on each server, one server at a time) moves the appended deltas into the
//! `counters` rows, summed, in one transaction. A count is its `counters` rows plus the deltas not
//! yet folded (the view `counter_totals`), read in one statement, so it is exact at every moment;
//! and a create appends one heap row instead of updating a dozen hot counter rows (the top of
//! the create profile, with their row-lock waits). Activity counters (`stats`) go the same way, in
//! the same row. Rows written before the deltas were spread over stripes (64 rows per count); a
//! count sums them all.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sessions::stats::{Metric, Span};
use sessions::store::shared::{words, MAX_PREFIX_CHARS};
use sessions::DeliveryStatus;

use super::db::{Tx, R};

/// How often each server folds the appended count deltas into the counters.
pub(crate) const FOLD_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// How often the folding server vacuums the deltas' table (the folds leave it full of dead rows,
/// which every count would otherwise scan).
const VACUUM_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What a counter counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i16)]
pub(crate) enum Kind {
    /// Sessions of the realm (key '').
    Realm = 0,
    /// Sessions of a subject.
    Subject = 1,
    /// Sessions a client joined.
    Client = 2,
    /// Sessions with a display-name word starting with the key (up to [`MAX_PREFIX_CHARS`]
    /// characters, case-folded); each session once per prefix, however many of its words have it.
    NamePrefix = 3,
    /// Deliveries of a status (key: the status name).
    Deliveries = 4,
    /// Sessions of a device kind, browser and OS (key: [`device_key`]).
    Device = 5,
}

/// The counter key of a device: its [`sessions::Device::counted_code`] as the decimal of the
/// `integer` it is stored as (`sessions.device & -65536` in SQL).
pub(crate) fn device_key(counted_code: u32) -> String {
    (counted_code as i32).to_string()
}

/// Counter changes of one transaction, by (realm, kind, key), and activity counter changes
/// (table `stats`), by (realm, span code, bucket start, metric name).
#[derive(Default)]
pub(crate) struct Deltas {
    counters: BTreeMap<(String, Kind, String), i64>,
    stats: BTreeMap<(String, i16, DateTime<Utc>, &'static str), i64>,
}

/// What a session contributes to the counters.
pub(crate) struct Counted<'a> {
    pub subject_id: &'a str,
    pub client_ids: &'a [String],
    pub display_name: Option<&'a str>,
    /// `sessions.device`.
    pub device: Option<i32>,
}

/// The distinct case-folded prefixes (up to [`MAX_PREFIX_CHARS`] characters) of a name's words.
pub(crate) fn name_prefixes(name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for word in words(name) {
        let mut prefix = String::new();
        for c in word.chars().take(MAX_PREFIX_CHARS) {
            prefix.push(c);
            out.insert(prefix.clone());
        }
    }
    out
}

impl Deltas {
    pub(crate) fn add(&mut self, realm: &str, kind: Kind, key: &str, delta: i64) {
        *self
            .counters
            .entry((realm.to_owned(), kind, key.to_owned()))
            .or_default() += delta;
    }

    /// `n` events of `metric` at `at`, in the hourly and the daily bucket.
    pub(crate) fn stat(&mut self, realm: &str, at: DateTime<Utc>, metric: Metric, n: u64) {
        for span in Span::ALL {
            let bucket = DateTime::from_timestamp(span.bucket_of(at), 0).unwrap_or_default();
            *self
                .stats
                .entry((
                    realm.to_owned(),
                    i16::from(span.code()),
                    bucket,
                    metric.name(),
                ))
                .or_default() += n as i64;
        }
    }

    /// A session added (`sign` 1) or removed (-1).
    pub(crate) fn session(&mut self, realm: &str, s: &Counted<'_>, sign: i64) {
        self.add(realm, Kind::Realm, "", sign);
        self.add(realm, Kind::Subject, s.subject_id, sign);
        for c in s.client_ids {
            self.add(realm, Kind::Client, c, sign);
        }
        if let Some(name) = s.display_name {
            for p in name_prefixes(name) {
                self.add(realm, Kind::NamePrefix, &p, sign);
            }
        }
        if let Some(code) = s.device {
            let counted = sessions::Device::from_code(code as u32).counted_code();
            self.add(realm, Kind::Device, &device_key(counted), sign);
        }
    }

    /// A delivery added (`sign` 1) to or removed (-1) from a status.
    pub(crate) fn delivery(&mut self, realm: &str, status: DeliveryStatus, sign: i64) {
        self.add(realm, Kind::Deliveries, status.as_str(), sign);
    }

    /// Appends the count and activity counter changes as one row of deltas (none if nothing
    /// changed), for [`fold`] to add to the counters.
    pub(crate) async fn apply(self, tx: &Tx<'_>) -> R<()> {
        let (mut realms, mut kinds, mut keys, mut deltas) = (vec![], vec![], vec![], vec![]);
        for ((realm, kind, key), delta) in self.counters {
            if delta != 0 {
                realms.push(realm);
                kinds.push(kind as i16);
                keys.push(key);
                deltas.push(delta);
            }
        }
        let (mut s_realms, mut spans, mut buckets, mut metrics, mut s_deltas) =
            (vec![], vec![], vec![], vec![], vec![]);
        for ((realm, span, bucket, metric), delta) in self.stats {
            if delta != 0 {
                s_realms.push(realm);
                spans.push(span);
                buckets.push(bucket);
                metrics.push(metric);
                s_deltas.push(delta);
            }
        }
        if realms.is_empty() && s_realms.is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO counter_deltas (realms, kinds, keys, deltas, stat_realms, stat_spans,
                                         stat_buckets, stat_metrics, stat_deltas)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &realms, &kinds, &keys, &deltas, &s_realms, &spans, &buckets, &metrics, &s_deltas,
            ],
        )
        .await?;
        Ok(())
    }
}

/// The count of one counter.
pub(crate) async fn count(tx: &Tx<'_>, realm: &str, kind: Kind, key: &str) -> R<u64> {
    let row = tx
        .query_one(
            "SELECT coalesce(sum(count), 0)::int8 FROM counter_totals
              WHERE realm = $1 AND kind = $2 AND key = $3",
            &[&realm, &(kind as i16), &key],
        )
        .await?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// The counts of several counters of one kind, by key (a key counted nowhere is absent).
pub(crate) async fn counts(
    tx: &Tx<'_>,
    realm: &str,
    kind: Kind,
    keys: &[String],
) -> R<std::collections::HashMap<String, u64>> {
    let rows = tx
        .query(
            "SELECT key, coalesce(sum(count), 0)::int8 FROM counter_totals
              WHERE realm = $1 AND kind = $2 AND key = ANY($3) GROUP BY key",
            &[&realm, &(kind as i16), &keys],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)?.max(0) as u64)))
        .collect()
}

/// Moves every count delta appended so far into the counters and the activity counters, summed,
/// in one transaction; answers how many delta rows it folded. Unless `wait`, it does nothing if
/// another server is folding (else it waits for that server to finish).
///
/// Exact at every moment: the deltas leave `counter_deltas` in the transaction that adds them to
/// `counters`, and a count reads both in one statement (one snapshot). Two servers folding at once
/// cannot count a delta twice (the advisory lock keeps them apart, and the `DELETE` of a row
/// another transaction already deleted returns nothing).
pub(crate) async fn fold(tx: &Tx<'_>, wait: bool) -> R<u64> {
    let key = super::lock_key("fold", "counters");
    if wait {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
            .await?;
    } else {
        let ours: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&key])
            .await?
            .try_get(0)?;
        if !ours {
            return Ok(0);
        }
    }
    let row = tx
        .query_one(
            "WITH folded AS (DELETE FROM counter_deltas RETURNING *),
                  summed AS (
                    SELECT u.realm, u.kind, u.key, sum(u.delta)::int8 AS n
                      FROM folded f, unnest(f.realms, f.kinds, f.keys, f.deltas)
                                     AS u(realm, kind, key, delta)
                     GROUP BY u.realm, u.kind, u.key),
                  added AS (
                    INSERT INTO counters (realm, kind, key, stripe, count)
                    SELECT realm, kind, key, 0, n FROM summed WHERE n <> 0
                    ON CONFLICT (realm, kind, key, stripe)
                    DO UPDATE SET count = counters.count + excluded.count),
                  stats_summed AS (
                    SELECT u.realm, u.span, u.bucket, u.metric, sum(u.delta)::int8 AS n
                      FROM folded f, unnest(f.stat_realms, f.stat_spans, f.stat_buckets,
                                            f.stat_metrics, f.stat_deltas)
                                     AS u(realm, span, bucket, metric, delta)
                     GROUP BY u.realm, u.span, u.bucket, u.metric),
                  stats_added AS (
                    INSERT INTO stats (realm, span, bucket, metric, stripe, count)
                    SELECT realm, span, bucket, metric, 0, n FROM stats_summed WHERE n <> 0
                    ON CONFLICT (realm, span, bucket, metric, stripe)
                    DO UPDATE SET count = stats.count + excluded.count)
             SELECT count(*)::int8 FROM folded",
            &[],
        )
        .await?;
    Ok(row.try_get::<_, i64>(0)?.max(0) as u64)
}

/// Vacuums the deltas' table (outside a transaction), skipping it if another server is.
pub(crate) async fn vacuum(tx: &Tx<'_>) -> R<()> {
    tx.batch("VACUUM (SKIP_LOCKED) counter_deltas").await
}

/// Starts folding the count deltas on the caller's runtime ([`keep_folding`]).
pub(crate) fn start_folding(db: std::sync::Arc<super::db::Db>) -> super::Background {
    super::Background(tokio::spawn(keep_folding(db)).abort_handle())
}

/// Folds the count deltas every [`FOLD_EVERY`] and vacuums their table every [`VACUUM_EVERY`]
/// after a fold, until stopped. A failed fold is tried again at the next turn: the deltas stay
/// where they are, and counts stay exact meanwhile.
async fn keep_folding(db: std::sync::Arc<super::db::Db>) {
    let mut vacuumed = std::time::Instant::now();
    let mut folded_since = 0u64;
    loop {
        tokio::time::sleep(FOLD_EVERY).await;
        match super::db::db_write!(*db, async |tx| fold(tx, false).await).await {
            Ok(n) => folded_since += n,
            Err(e) => tracing::warn!("folding the count deltas: {e}"),
        }
        if folded_since > 0 && vacuumed.elapsed() >= VACUUM_EVERY {
            if let Err(e) = super::db::db_run!(*db, async |tx| vacuum(tx).await).await {
                tracing::warn!("vacuuming the count deltas: {e}");
            }
            vacuumed = std::time::Instant::now();
            folded_since = 0;
        }
    }
}
