//! The background task that removes expired sessions and grants, delivered logout
//! notifications past their retention, and activity counters older than those kept, in batches.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use sessions::store::SessionStore;

/// Records removed per batch.
const BATCH: usize = 1000;
/// Between full batches the task rests as long as the batch took (within these bounds), so a
/// large backlog takes at most about half of one core and validations keep their latency; a
/// backlog drains at about half the speed it could.
const MIN_REST: Duration = Duration::from_millis(1);
const MAX_REST: Duration = Duration::from_millis(100);

/// Runs forever: every `every`, removes what expired (batch by batch, until a batch comes back
/// short), then delivered notifications queued more than `keep_delivered` ago, then activity
/// counters of buckets no longer kept ([`sessions::stats`]).
pub async fn run(store: Arc<dyn SessionStore>, every: Duration, keep_delivered: Duration) {
    let keep = TimeDelta::from_std(keep_delivered).unwrap_or(TimeDelta::MAX);
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        drain(&store, "expired sessions and grants", |s| {
            s.reap_expired(Utc::now(), BATCH)
        })
        .await
        .inspect(|n| service::metrics::record_reaped(*n))
        .ok();
        drain(&store, "delivered logout notifications", move |s| {
            s.purge_delivered(Utc::now() - keep, BATCH)
        })
        .await
        .ok();
        drain(&store, "old activity counters", |s| {
            s.prune_stats(Utc::now())
        })
        .await
        .ok();
    }
}

/// Runs `step` on a blocking thread until it removes fewer than a batch, resting between
/// batches; answers the total.
async fn drain(
    store: &Arc<dyn SessionStore>,
    what: &'static str,
    step: impl Fn(&dyn SessionStore) -> sessions::Result<usize> + Send + Sync + Copy + 'static,
) -> Result<usize, ()> {
    let mut total = 0;
    loop {
        let s = store.clone();
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || step(s.as_ref())).await {
            Ok(Ok(n)) => {
                total += n;
                if n < BATCH {
                    if total > 0 {
                        tracing::debug!(removed = total, "removed {what}");
                    }
                    return Ok(total);
                }
                tokio::time::sleep(started.elapsed().clamp(MIN_REST, MAX_REST)).await;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "removing {what} failed");
                return Err(());
            }
            Err(e) => {
                tracing::error!(error = %e, "removing {what}: task failed");
                return Err(());
            }
        }
    }
}
