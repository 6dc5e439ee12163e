//! What a server holds in memory from a store other servers share (API keys, signing keys,
//! Shared Signals streams) is
//! read again now and then, so that a change made through another server counts here too.

use std::time::Duration;

use crate::SessionService;

/// How often a server of a shared store reads the shared in-memory data again.
pub const SHARED_RELOAD_EVERY: Duration = Duration::from_secs(5);

impl SessionService {
    /// Reads the API keys, signing keys and streams again (a server of a shared store calls this every
    /// [`SHARED_RELOAD_EVERY`]). A read that fails is logged, not returned: what was loaded
    /// before still counts.
    pub async fn reload_shared(&self) {
        if let Err(e) = self.keys.reload().await {
            tracing::warn!("reading the API keys again failed: {e}");
        }
        if let Err(e) = self.backchannel.keys.reload().await {
            tracing::warn!("reading the signing keys again failed: {e}");
        }
        if let Err(e) = self.backchannel.streams.reload().await {
            tracing::warn!("reading the Shared Signals streams again failed: {e}");
        }
    }
}
