//! Activity counters ([`crate::stats`]): in-memory counters of their own kind
//! ([`Counter::Stats`](super::layout::Counter::Stats)), journaled and checkpointed like the others; read as a range of
//! buckets, pruned by age.

use chrono::{DateTime, Utc};

use super::commit::Batch;
use super::counters::{self, Deltas};
use super::layout::CounterKey;
use super::SledStoreV2;
use crate::error::Result;
use crate::stats::{self, Span, StatsBucket};

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
        let low = CounterKey::stats_from(realm.id, span, first);
        let high = CounterKey::stats_from(realm.id, span, last.saturating_add(1));
        let rows = self
            .counters
            .series(&low, &high)
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
