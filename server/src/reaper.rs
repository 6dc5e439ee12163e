//! The background task that removes expired sessions and grants, delivered logout
//! notifications and ended-session history past their retention, and activity counters older
//! than those kept, in batches.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use sessions::store::SessionStore;

/// Records removed per batch: about 15 ms of work at a time, so a validation never waits behind
/// a long stretch of it.
const BATCH: usize = 250;
/// Between full batches the task rests four times as long as the batch took (within these
/// bounds), so a large backlog takes about a fifth of one core and validations keep their
/// latency; expired sessions are refused by validation anyway, so nothing waits on the backlog
/// but disk space. With a rest twice the batch, validation p99 during a sweep of 100,000 was
/// three times its idle value on 2 cores; the sweep took 20 s.
const REST_FACTOR: u32 = 4;
const MIN_REST: Duration = Duration::from_millis(1);
const MAX_REST: Duration = Duration::from_millis(200);

/// How long what is over stays listed.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Delivered logout notifications, from when they were queued.
    pub delivered: Duration,
    /// Ended-session history entries, from when their session ended.
    pub ended: Duration,
}

/// Runs forever: every `every`, removes what expired (batch by batch, until a batch comes back
/// short), then delivered notifications and history entries past their retention, then activity
/// counters of buckets no longer kept ([`sessions::stats`]). The first pass is one interval after
/// start: a server restarted under load first fills its caches with what it validates, then
/// works off the backlog (expired sessions are refused by validation meanwhile).
pub async fn run(store: Arc<dyn SessionStore>, every: Duration, retention: Retention) {
    let keep = TimeDelta::from_std(retention.delivered).unwrap_or(TimeDelta::MAX);
    let keep_ended = TimeDelta::from_std(retention.ended).unwrap_or(TimeDelta::MAX);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticker.tick().await;
        drain("expired sessions and grants", || {
            store.reap_expired(Utc::now(), BATCH)
        })
        .await
        .inspect(|n| service::metrics::record_reaped(*n))
        .ok();
        drain("delivered logout notifications", || {
            store.purge_delivered(Utc::now() - keep, BATCH)
        })
        .await
        .ok();
        drain("ended-session history", || {
            store.prune_ended(Utc::now() - keep_ended, BATCH)
        })
        .await
        .ok();
        drain("old activity counters", || store.prune_stats(Utc::now()))
            .await
            .ok();
    }
}

/// Runs `step` until it removes fewer than a batch, resting between batches; answers the total.
async fn drain<F: std::future::Future<Output = sessions::Result<usize>>>(
    what: &'static str,
    step: impl Fn() -> F,
) -> Result<usize, ()> {
    let mut total = 0;
    loop {
        let started = std::time::Instant::now();
        match step().await {
            Ok(n) => {
                total += n;
                if n < BATCH {
                    if total > 0 {
                        tracing::debug!(removed = total, "removed {what}");
                    }
                    return Ok(total);
                }
                let rest = started.elapsed() * REST_FACTOR;
                tokio::time::sleep(rest.clamp(MIN_REST, MAX_REST)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "removing {what} failed");
                return Err(());
            }
        }
    }
}
