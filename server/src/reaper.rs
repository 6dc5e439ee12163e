//! The background task that removes expired sessions in batches.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sessions::store::SessionStore;

/// Sessions removed per batch; between batches the task yields so queries are not stalled.
const BATCH: usize = 1000;

/// Runs forever: every `every`, removes expired sessions until a batch comes back short.
pub async fn run(store: Arc<dyn SessionStore>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        loop {
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.reap_expired(Utc::now(), BATCH)).await {
                Ok(Ok(n)) => {
                    api::record_reaped(n);
                    if n > 0 {
                        tracing::debug!(removed = n, "reaped expired sessions");
                    }
                    if n < BATCH {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "reaper failed");
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "reaper task failed");
                    break;
                }
            }
        }
    }
}
