//! The streams a server knows of: every [`StreamRecord`] of the store, held in memory for the
//! delivery worker (which passes over held streams on every look at the outbox) and the
//! receivers' requests, read again after each change here and, on a shared store, every
//! [`crate::SHARED_RELOAD_EVERY`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use sessions::signal::{
    stream_of_client, StreamDelivery, StreamRecord, StreamStatus, STREAMS_REALM,
};
use sessions::store::AccountStore;
use sessions::Result;

/// Shortest time between two verification events a receiver may ask for (SSF
/// `min_verification_interval`); sooner is refused with 429.
pub const MIN_VERIFICATION_INTERVAL: Duration = Duration::from_secs(5);

/// The streams of a store, cached.
pub struct SignalStreams {
    store: Arc<dyn AccountStore>,
    all: ArcSwap<Vec<StreamRecord>>,
    /// Held by every change of a stream, so that one key cannot make two.
    pub(super) writing: tokio::sync::Mutex<()>,
    /// When each stream last asked for a verification event (this server's view).
    verified: Mutex<HashMap<String, Instant>>,
}

impl SignalStreams {
    /// Reads the store's streams.
    pub async fn open(store: Arc<dyn AccountStore>) -> Result<Self> {
        let all = store.signal_streams().await?;
        Ok(Self {
            store,
            all: ArcSwap::from_pointee(all),
            writing: tokio::sync::Mutex::new(()),
            verified: Mutex::default(),
        })
    }

    /// Reads the store's streams again.
    pub async fn reload(&self) -> Result<()> {
        self.all.store(Arc::new(self.store.signal_streams().await?));
        Ok(())
    }

    /// Every stream, by id.
    pub fn all(&self) -> Arc<Vec<StreamRecord>> {
        self.all.load_full()
    }

    /// One stream by id.
    pub fn get(&self, id: &str) -> Option<StreamRecord> {
        self.all.load().iter().find(|s| s.id == id).cloned()
    }

    /// The stream of an API key, if it made one.
    pub fn of_key(&self, key_name: &str) -> Option<StreamRecord> {
        self.all
            .load()
            .iter()
            .find(|s| s.key_name == key_name)
            .cloned()
    }

    /// Stores a new or changed stream; durable when it returns.
    pub async fn put(&self, stream: &StreamRecord) -> Result<()> {
        self.store.put_signal_stream(stream).await?;
        self.reload().await
    }

    /// Deletes a stream; false if there was none.
    pub async fn delete(&self, id: &str) -> Result<bool> {
        let existed = self.store.delete_signal_stream(id).await?;
        self.reload().await?;
        Ok(existed)
    }

    /// Whether the delivery worker passes over a queued delivery of `client_id` in `realm`: one
    /// of a stream that is polled (the receiver fetches its events) or paused (its session
    /// events held until it is enabled; its own events, in [`STREAMS_REALM`], still go). What a
    /// stream may no longer send (it is disabled, or no longer covers the realm) is not held:
    /// the worker gives it up.
    pub fn holds(&self, realm: &str, client_id: &str) -> bool {
        let Some(id) = stream_of_client(client_id) else {
            return false;
        };
        self.all.load().iter().any(|s| {
            let own = realm == STREAMS_REALM;
            let sendable = s.covers(realm) && (s.status != StreamStatus::Disabled || own);
            s.id == id
                && sendable
                && (s.delivery == StreamDelivery::Poll
                    || (s.status == StreamStatus::Paused && !own))
        })
    }

    /// Records a verification request of a stream now; false if the last one was less than
    /// [`MIN_VERIFICATION_INTERVAL`] ago.
    pub fn verification_allowed(&self, id: &str) -> bool {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match verified.get(id) {
            Some(at) if now.duration_since(*at) < MIN_VERIFICATION_INTERVAL => false,
            _ => {
                verified.insert(id.to_owned(), now);
                true
            }
        }
    }
}
