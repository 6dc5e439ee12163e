//! Which realms' sessions changed, as it happens: every backend publishes to its [`ChangeFeed`]
//! when sessions come or go (a create, a removal, a logout, an eviction, the reaper), so that a
//! live view re-reads a realm's count when it changed instead of polling it. The embedded store
//! publishes from its writes; the PostgreSQL backend from the notifications its database sends
//! every server, so a change made through one server reaches the feeds of all of them.
//!
//! Best effort by design: a subscriber that falls behind, or a backend that lost its way of
//! hearing about changes for a while, is told [`SessionsChanged::Everything`], and a live view
//! still reads its count now and then without being told.

use tokio::sync::broadcast;

/// Changes a subscriber may fall behind by before it is told that everything may have changed.
const BACKLOG: usize = 1024;

/// What changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionsChanged {
    /// Sessions of this realm came or went.
    Realm(String),
    /// Anything may have changed: changes were missed (a subscriber fell behind, a connection
    /// that hears about changes was lost and made again).
    Everything,
}

impl SessionsChanged {
    /// Whether this change may concern `realm`.
    pub fn concerns(&self, realm: &str) -> bool {
        match self {
            SessionsChanged::Realm(r) => r == realm,
            SessionsChanged::Everything => true,
        }
    }
}

/// Where a store publishes which realms' sessions changed; any number of subscribers.
pub struct ChangeFeed {
    sender: broadcast::Sender<SessionsChanged>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        ChangeFeed {
            sender: broadcast::channel(BACKLOG).0,
        }
    }
}

impl ChangeFeed {
    /// Sessions of `realm` came or went. Costs nothing while nobody listens.
    pub fn realm_changed(&self, realm: &str) {
        if self.sender.receiver_count() > 0 {
            // An error only says that the last subscriber went meanwhile.
            let _ = self.sender.send(SessionsChanged::Realm(realm.to_owned()));
        }
    }

    /// Anything may have changed (changes may have been missed).
    pub fn everything_changed(&self) {
        let _ = self.sender.send(SessionsChanged::Everything);
    }

    /// The changes published from now on.
    pub fn subscribe(&self) -> ChangeSubscription {
        ChangeSubscription {
            receiver: self.sender.subscribe(),
        }
    }
}

/// One subscriber's view of a [`ChangeFeed`].
pub struct ChangeSubscription {
    receiver: broadcast::Receiver<SessionsChanged>,
}

impl ChangeSubscription {
    /// The next change; [`SessionsChanged::Everything`] after falling behind; `None` once the
    /// store is gone.
    pub async fn next(&mut self) -> Option<SessionsChanged> {
        match self.receiver.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(SessionsChanged::Everything),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next change if one is waiting, without waiting; as [`next`](Self::next) otherwise.
    pub fn try_next(&mut self) -> Option<SessionsChanged> {
        match self.receiver.try_recv() {
            Ok(change) => Some(change),
            Err(broadcast::error::TryRecvError::Lagged(_)) => Some(SessionsChanged::Everything),
            Err(_) => None,
        }
    }
}
