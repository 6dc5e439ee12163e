//! Activity counters ([`crate::stats`]): in-memory counters of their own kind
//! ([`counters::STATS`]), journaled and checkpointed like the others; read as a range of
//! buckets, pruned by age.

use chrono::{DateTime, Utc};

use super::commit::Batch;
use super::counters::{self, Deltas};
use super::SledStoreV2;
use crate::error::Result;
use crate::stats::{self, Metric, Span, StatsBucket};

impl SledStoreV2 {
    pub(super) fn stats_impl(
        &self,
        realm: &str,
        span: Span,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatsBucket>> {
        let realm = self.realm(realm)?;
        let (first, last) = (span.bucket_of(from), span.bucket_of(to));
        let low = counters::stats_key(realm.id, span, first, Metric::SignIns);
        let high = counters::stats_key(realm.id, span, last.saturating_add(1), Metric::SignIns);
        let rows = self
            .counters
            .series(&low[..low.len() - 1], &high[..high.len() - 1])
            .into_iter()
            .filter_map(|(k, n)| counters::parse_stats_key(&k, n).map(|(_, row)| row));
        Ok(stats::assemble(span, from, to, rows))
    }

    pub(super) fn prune_stats_impl(&self, now: DateTime<Utc>) -> Result<usize> {
        let mut deltas = Deltas::default();
        let mut pruned = 0;
        for (k, n) in self.counters.series(&[], &[0xff; 5]) {
            if let Some((_, row)) = counters::parse_stats_key(&k, n) {
                if row.bucket < row.span.oldest_kept(now) {
                    deltas.counter(k, -n);
                    pruned += 1;
                }
            }
        }
        if pruned > 0 {
            self.write(Batch::default(), &deltas)?;
        }
        Ok(pruned)
    }
}
