//! What a server holds in memory from a store other servers share (API keys, signing keys) is
//! read again now and then, so that a change made through another server counts here too.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sessions::store::SessionStore;

/// How often a server reads shared in-memory data again.
pub const SHARED_RELOAD_EVERY: Duration = Duration::from_secs(5);

/// When shared data held in memory is due to be read again.
pub(crate) struct ReloadClock {
    last: Mutex<Instant>,
}

impl ReloadClock {
    pub(crate) fn new() -> Self {
        Self {
            last: Mutex::new(Instant::now()),
        }
    }

    /// Whether to read again now: never for a store no other server shares, else when the last
    /// read is [`SHARED_RELOAD_EVERY`] old. One caller is told so; the others go on with what is
    /// loaded meanwhile.
    pub(crate) fn due(&self, store: &dyn SessionStore) -> bool {
        if !store.blocks_on_network() {
            return false;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.elapsed() >= SHARED_RELOAD_EVERY;
        if due {
            *last = Instant::now();
        }
        due
    }

    /// Records a read just made.
    pub(crate) fn read_now(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

/// Reads shared data again if it is due, logging (not failing) when that fails: what was loaded
/// before still counts.
pub(crate) fn refresh(
    clock: &ReloadClock,
    store: &dyn SessionStore,
    what: &str,
    reload: impl FnOnce() -> sessions::Result<()>,
) {
    if clock.due(store) {
        if let Err(e) = crate::inline_call(store, reload) {
            tracing::warn!("reading the {what} again failed: {e}");
        }
    }
}
