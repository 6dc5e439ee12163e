//! Changes across servers: which realms' sessions came or went, announced to every server on the
//! database with `NOTIFY` and heard with `LISTEN`, feeding each store's
//! [`ChangeFeed`](sessions::store::ChangeFeed).
//!
//! Each store holds one dedicated connection (not from the pool) that listens on [`CHANNEL`] and
//! sends this store's announcements. A write that created or ended sessions marks its realm once
//! it committed; the connection sends `pg_notify` for the marked realms at most every
//! [`ANNOUNCE_EVERY`], so a burst of writes costs one notification per realm, and no write's
//! commit waits for the notification queue's lock (PostgreSQL serialises the commits of
//! transactions that notify). Every server hears every announcement, its own included. The
//! connection is made again after it is lost; then the feed says everything may have changed, as
//! changes made meanwhile went unheard. An announcement lost with its server (a crash between the
//! commit and the notification) is made up for by the live views' slow fallback read.
//!
//! The same connection hears which sessions changed ([`validated::CHANNEL`], announced in the
//! changing transactions themselves) and evicts them from the store's validation cache, which
//! answers only while the connection listens ([`validated`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use sessions::store::ChangeFeed;
use sessions::SessionError;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use super::db::describe;
use super::validated::{self, ValidationCache};
use super::Background;

/// The notification channel; the payload is the realm's name.
pub(crate) const CHANNEL: &str = "sessions_changed";
/// The least time between two announcements of one store: changes within it go out together.
const ANNOUNCE_EVERY: Duration = Duration::from_millis(100);
/// How long to wait before making the connection again after losing it (or failing to).
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// How often the listening connection proves it still reaches the database, and how long an
/// answer may take: a host that vanished without closing the connection (a machine gone, a
/// network cut) is noticed within about two seconds, and the validation cache stops answering
/// from memory meanwhile rather than miss the ends announced on a new primary.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT_WITHIN: Duration = Duration::from_secs(1);

/// Realms whose sessions changed through this store and are still to be announced.
#[derive(Default)]
pub(crate) struct Announcements {
    pending: Mutex<HashSet<String>>,
    wake: tokio::sync::Notify,
}

impl Announcements {
    /// Marks `realm` for the next announcement (a write that changed its sessions committed).
    pub(crate) fn realm_changed(&self, realm: &str) {
        let mut pending = self.lock();
        if !pending.contains(realm) {
            pending.insert(realm.to_owned());
        }
        drop(pending);
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<String> {
        self.lock().drain().collect()
    }

    fn put_back(&self, realms: Vec<String>) {
        self.lock().extend(realms);
        self.wake.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The listening connection: its client, and the task that reads its notifications into the feed
/// (it ends when the connection does, or is stopped when this is dropped).
struct Listening {
    client: Client,
    reader: JoinHandle<()>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The application name the listening connection shows in `pg_stat_activity`: the pool's, with
/// `: changes` after it.
fn listener_application_name(config: &Config) -> String {
    format!(
        "{}: changes",
        config.get_application_name().unwrap_or("sessions")
    )
}

/// Opens the listening connection now (failing if that fails: the database was reachable a
/// moment ago), then keeps it in a task on the caller's runtime, announcing and listening, until
/// the answer is dropped.
pub(crate) async fn start(
    mut config: Config,
    feed: Arc<ChangeFeed>,
    announcements: Arc<Announcements>,
    validations: Arc<ValidationCache>,
) -> sessions::Result<Background> {
    config.application_name(listener_application_name(&config));
    let ears = Ears { feed, validations };
    let listening = listen(config.clone(), ears.clone())
        .await
        .map_err(|e| SessionError::Storage(format!("listening for changes: {}", describe(&e))))?;
    let task = tokio::spawn(keep(listening, config, ears, announcements));
    Ok(Background(task.abort_handle()))
}

/// Who hears the notifications: the change feed (realms) and the validation cache (sessions).
#[derive(Clone)]
struct Ears {
    feed: Arc<ChangeFeed>,
    validations: Arc<ValidationCache>,
}

/// Connects and listens on [`CHANNEL`] and [`validated::CHANNEL`]; every notification is
/// published to `ears`. The validation cache answers from when both are listened to until the
/// connection is lost.
async fn listen(config: Config, ears: Ears) -> Result<Listening, tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let heard = ears.clone();
    let reader = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) if n.channel() == CHANNEL => {
                    heard.feed.realm_changed(n.payload())
                }
                Ok(AsyncMessage::Notification(n)) if n.channel() == validated::CHANNEL => {
                    heard.validations.heard(n.payload())
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(
                        "the connection listening for changes ended: {}",
                        describe(&e)
                    );
                    break;
                }
            }
        }
        heard.validations.deaf();
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {}", validated::CHANNEL))
        .await?;
    ears.validations.listening();
    Ok(Listening { client, reader })
}

/// Announces and listens on `listening` until it is lost, then connects again (and tells the feed
/// that everything may have changed), until stopped.
async fn keep(
    mut listening: Listening,
    config: Config,
    ears: Ears,
    announcements: Arc<Announcements>,
) {
    loop {
        tokio::select! {
            _ = &mut listening.reader => {}
            _ = announce(&listening.client, &announcements) => {}
            _ = heartbeat(&listening.client) => {}
        }
        drop(listening);
        ears.validations.deaf();
        tracing::warn!("lost the PostgreSQL connection that hears of changes; connecting again");
        listening = loop {
            tokio::time::sleep(RECONNECT_AFTER).await;
            match listen(config.clone(), ears.clone()).await {
                Ok(l) => break l,
                Err(e) => tracing::warn!("listening for changes again: {}", describe(&e)),
            }
        };
        tracing::info!("listening for changes again");
        ears.feed.everything_changed();
    }
}

/// Returns when the connection no longer answers a trivial query within [`HEARTBEAT_WITHIN`].
async fn heartbeat(client: &Client) {
    loop {
        tokio::time::sleep(HEARTBEAT_EVERY).await;
        match tokio::time::timeout(HEARTBEAT_WITHIN, client.simple_query("")).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(
                    "the listening connection failed a heartbeat: {}",
                    describe(&e)
                );
                return;
            }
            Err(_) => {
                tracing::warn!("the listening connection did not answer a heartbeat in time");
                return;
            }
        }
    }
}

/// Sends the pending announcements as they come, at most every [`ANNOUNCE_EVERY`]; returns when
/// sending fails (the realms stay pending for the next connection).
async fn announce(client: &Client, announcements: &Announcements) {
    loop {
        announcements.wake.notified().await;
        let realms = announcements.take();
        if realms.is_empty() {
            continue;
        }
        let sent = client
            .execute(
                "SELECT pg_notify($1, realm) FROM unnest($2::text[]) AS realm",
                &[&CHANNEL, &realms],
            )
            .await;
        if let Err(e) = sent {
            tracing::warn!("announcing changes failed: {}", describe(&e));
            announcements.put_back(realms);
            return;
        }
        tokio::time::sleep(ANNOUNCE_EVERY).await;
    }
}
