//! Exact counts without `COUNT(*)`: rows of `counters`, changed in the transaction that changes
//! what they count. A count is spread over [`STRIPES`] rows (each transaction adds to one picked
//! at random), so writers of one realm do not all queue on one row lock; it is the sum of its
//! stripes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sessions::stats::{Metric, Span};
use sessions::store::shared::{words, MAX_PREFIX_CHARS};
use sessions::DeliveryStatus;

use super::db::{Tx, R};

/// Rows each count is spread over.
pub(crate) const STRIPES: i16 = 64;

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
    }

    /// A delivery added (`sign` 1) to or removed (-1) from a status.
    pub(crate) fn delivery(&mut self, realm: &str, status: DeliveryStatus, sign: i64) {
        self.add(realm, Kind::Deliveries, status.as_str(), sign);
    }

    /// Adds the changes to the counters and the activity counters, one statement each (sent
    /// together), to one stripe picked at random.
    pub(crate) async fn apply(self, tx: &Tx<'_>) -> R<()> {
        let stripe = (uuid::Uuid::new_v4().as_u128() % STRIPES as u128) as i16;
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
        let counters = async {
            if !realms.is_empty() {
                tx.execute(
                    "INSERT INTO counters (realm, kind, key, stripe, count)
                     SELECT r, k, key, $5, n
                       FROM unnest($1::text[], $2::int2[], $3::text[], $4::int8[]) AS d(r, k, key, n)
                     ON CONFLICT (realm, kind, key, stripe)
                     DO UPDATE SET count = counters.count + excluded.count",
                    &[&realms, &kinds, &keys, &deltas, &stripe],
                )
                .await?;
            }
            Ok::<_, super::db::Error>(())
        };
        let stats = async {
            if !s_realms.is_empty() {
                tx.execute(
                    "INSERT INTO stats (realm, span, bucket, metric, stripe, count)
                     SELECT r, s, b, m, $6, n
                       FROM unnest($1::text[], $2::int2[], $3::timestamptz[], $4::text[],
                                   $5::int8[]) AS d(r, s, b, m, n)
                     ON CONFLICT (realm, span, bucket, metric, stripe)
                     DO UPDATE SET count = stats.count + excluded.count",
                    &[&s_realms, &spans, &buckets, &metrics, &s_deltas, &stripe],
                )
                .await?;
            }
            Ok(())
        };
        futures::try_join!(counters, stats)?;
        Ok(())
    }
}

/// The count of one counter.
pub(crate) async fn count(tx: &Tx<'_>, realm: &str, kind: Kind, key: &str) -> R<u64> {
    let row = tx
        .query_one(
            "SELECT coalesce(sum(count), 0)::int8 FROM counters
              WHERE realm = $1 AND kind = $2 AND key = $3",
            &[&realm, &(kind as i16), &key],
        )
        .await?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}
