//! Activity counters ([`sessions::stats`]) on PostgreSQL: rows of `stats`, one per realm, span,
//! bucket, metric and stripe, and the changes appended by [`super::counters::Deltas`] in the
//! transaction of the event until they are folded into them (both read together through
//! `stats_totals`); read as a range of buckets, pruned by age.

use chrono::{DateTime, Utc};
use sessions::stats::{self, Metric, Span, StatsBucket, StatsRow};

use super::db::{db_run, db_write};
use super::PostgresStore;

impl PostgresStore {
    pub(crate) async fn stats_impl(
        &self,
        realm: &str,
        span: Span,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> sessions::Result<Vec<StatsBucket>> {
        let first = DateTime::from_timestamp(span.bucket_of(from), 0).unwrap_or_default();
        let last = DateTime::from_timestamp(span.bucket_of(to), 0).unwrap_or_default();
        let rows = db_run!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let found = tx
                .query(
                    "SELECT bucket, metric, sum(count)::int8 FROM stats_totals
                      WHERE realm = $1 AND span = $2 AND bucket BETWEEN $3 AND $4
                      GROUP BY bucket, metric",
                    &[&realm.name, &i16::from(span.code()), &first, &last],
                )
                .await?;
            let mut rows = Vec::with_capacity(found.len());
            for r in &found {
                let bucket: DateTime<Utc> = r.try_get(0)?;
                let metric: &str = r.try_get(1)?;
                // A name this build does not know (written by a newer one) is left out.
                if let Some(metric) = Metric::from_name(metric) {
                    rows.push(StatsRow {
                        span,
                        bucket: bucket.timestamp(),
                        metric,
                        count: r.try_get(2)?,
                    });
                }
            }
            Ok(rows)
        })
        .await?;
        Ok(stats::assemble(span, from, to, rows))
    }

    pub(crate) async fn prune_stats_impl(&self, now: DateTime<Utc>) -> sessions::Result<usize> {
        let mut pruned = 0;
        for span in Span::ALL {
            let oldest = DateTime::from_timestamp(span.oldest_kept(now), 0).unwrap_or_default();
            pruned += db_write!(self.db, async |tx| {
                // Changes still to fold may be in the old buckets.
                super::counters::fold(tx, true).await?;
                tx.execute(
                    "DELETE FROM stats WHERE span = $1 AND bucket < $2",
                    &[&i16::from(span.code()), &oldest],
                )
                .await
            })
            .await? as usize;
        }
        Ok(pruned)
    }
}
