//! Validations answered from memory: each server keeps the sessions it validated lately, so a
//! validation of a session seen before costs no round trip to the database.
//!
//! Coherence. Every change to a session that a validation answers with (ending it, its clients,
//! its properties) is announced in the transaction that makes it (`NOTIFY` on [`CHANNEL`], which
//! PostgreSQL delivers when the transaction commits, to every server listening, this one
//! included), and evicts the session here as soon as the transaction is over ([`Tx`]'s changed
//! sessions). So the server that ended a session refuses it from the moment the end is answered,
//! and every other server once the notification reaches it (the time of a round trip). While the
//! listening connection is down nothing is answered from memory and what was kept is dropped
//! (notifications may have been missed meanwhile). A read that overlapped an eviction is not kept
//! (the eviction [epoch](ValidationCache::epoch) moved). A kept session is answered only while
//! its own record says it is valid (a session an expiry sweep removes has expired by what was
//! kept too, so sweeps announce nothing), and only within [`KEEP_FOR`] of being read; its realm's
//! settings are the ones last read with a validation of that realm, at most [`REALM_FOR`] ago, as
//! elsewhere in the store (a settings change through another server takes effect within it).
//!
//! A session changed by hand in the database, behind the store's back, is answered as kept until
//! [`KEEP_FOR`] passes; operators who edit rows restart the servers or wait that long.
//!
//! [`Tx`]: super::db::Tx

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::rows::{RealmRow, StoredSession};

/// The notification channel; the payload is ended or changed sessions' ids, in their simple
/// (32 hexadecimal digits) form, separated by spaces.
pub(crate) const CHANNEL: &str = "sessions_invalidated";
/// Most session ids in one notification (PostgreSQL's payloads are under 8,000 bytes).
pub(crate) const SIDS_PER_NOTIFICATION: usize = 200;
/// How long a kept session is answered without reading it again, at most.
pub(crate) const KEEP_FOR: Duration = Duration::from_secs(60);
/// How long a realm's settings read with a validation are used for validations answered from
/// memory.
const REALM_FOR: Duration = Duration::from_secs(1);
/// Sessions kept, unless the store's configuration says otherwise.
pub const DEFAULT_VALIDATION_CACHE: usize = 100_000;

/// A session kept, and the realm it was read in.
struct Kept {
    realm: String,
    session: StoredSession,
}

/// The sessions this server validated lately; see the module's documentation.
pub(crate) struct ValidationCache {
    /// `None`: the cache is switched off (a capacity of 0).
    sessions: Option<moka::sync::Cache<Uuid, Arc<Kept>>>,
    /// Realms as last read with a validation, and when.
    realms: Mutex<HashMap<String, (Arc<RealmRow>, Instant)>>,
    /// Moves on every eviction; a read keeps its session only if it did not move meanwhile.
    epoch: AtomicU64,
    /// Held shared while keeping a session, exclusively while evicting: an eviction is either
    /// seen by a keeper's epoch check or evicts what it kept.
    evicting: RwLock<()>,
    /// Whether the connection that hears notifications is listening.
    listening: AtomicBool,
    /// Validations answered from memory, for tests and metrics.
    answered: AtomicU64,
}

impl ValidationCache {
    /// A cache of at most `capacity` sessions (0: none); it answers nothing until
    /// [`listening`](Self::listening).
    pub(crate) fn new(capacity: usize) -> ValidationCache {
        let sessions = (capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity as u64)
                .time_to_live(KEEP_FOR)
                .build()
        });
        ValidationCache {
            sessions,
            realms: Mutex::default(),
            epoch: AtomicU64::new(0),
            evicting: RwLock::new(()),
            listening: AtomicBool::new(false),
            answered: AtomicU64::new(0),
        }
    }

    /// The session `sid` of `realm` as kept, with its realm's settings, if both are fresh.
    pub(crate) fn get(&self, realm: &str, sid: &Uuid) -> Option<(Arc<RealmRow>, StoredSession)> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let kept = self.sessions.as_ref()?.get(sid)?;
        if kept.realm != realm {
            return None;
        }
        let realm = {
            let realms = self.realms.lock().unwrap_or_else(|e| e.into_inner());
            let (row, at) = realms.get(realm)?;
            if at.elapsed() >= REALM_FOR {
                return None;
            }
            row.clone()
        };
        self.answered.fetch_add(1, Ordering::Relaxed);
        Some((realm, kept.session.clone()))
    }

    /// The eviction epoch now: taken before a read whose session is then [kept](Self::keep).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps `realm` as just read, and `session` if read with it, unless an eviction happened
    /// since `epoch` (the read may predate it).
    pub(crate) fn keep(&self, epoch: u64, realm: &RealmRow, session: Option<&StoredSession>) {
        let Some(sessions) = &self.sessions else {
            return;
        };
        {
            let mut realms = self.realms.lock().unwrap_or_else(|e| e.into_inner());
            let stale = realms
                .get(&realm.name)
                .is_none_or(|(_, at)| at.elapsed() >= REALM_FOR / 2);
            if stale {
                realms.insert(
                    realm.name.clone(),
                    (Arc::new(realm.clone()), Instant::now()),
                );
            }
        }
        let Some(session) = session else {
            return;
        };
        let _shared = self.evicting.read().unwrap_or_else(|e| e.into_inner());
        if !self.listening.load(Ordering::Acquire) || self.epoch() != epoch {
            return;
        }
        sessions.insert(
            session.sid(),
            Arc::new(Kept {
                realm: realm.name.clone(),
                session: session.clone(),
            }),
        );
    }

    /// Evicts these sessions (they changed, here or elsewhere).
    pub(crate) fn forget(&self, sids: &[Uuid]) {
        let Some(sessions) = &self.sessions else {
            return;
        };
        if sids.is_empty() {
            return;
        }
        let _exclusive = self.evicting.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for sid in sids {
            sessions.invalidate(sid);
        }
    }

    /// Evicts the sessions a notification names (ids that do not parse are skipped).
    pub(crate) fn heard(&self, payload: &str) {
        let sids: Vec<Uuid> = payload
            .split(' ')
            .filter_map(|s| Uuid::try_parse(s).ok())
            .collect();
        self.forget(&sids);
    }

    /// The listening connection is (again) listening: from now on every change is heard, and
    /// what was kept before may have missed some, so it goes.
    pub(crate) fn listening(&self) {
        self.forget_everything();
        self.listening.store(true, Ordering::Release);
    }

    /// The listening connection is lost: answer nothing from memory until it listens again.
    pub(crate) fn deaf(&self) {
        self.listening.store(false, Ordering::Release);
        self.forget_everything();
    }

    fn forget_everything(&self) {
        let _exclusive = self.evicting.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(sessions) = &self.sessions {
            sessions.invalidate_all();
        }
    }

    /// Validations answered from memory so far.
    pub(crate) fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

/// The payloads announcing that these sessions changed: their ids in groups of
/// [`SIDS_PER_NOTIFICATION`].
pub(crate) fn payloads(sids: &[Uuid]) -> Vec<String> {
    sids.chunks(SIDS_PER_NOTIFICATION)
        .map(|group| {
            let mut payload = String::with_capacity(group.len() * 33);
            for (i, sid) in group.iter().enumerate() {
                if i > 0 {
                    payload.push(' ');
                }
                payload.push_str(sid.simple().encode_lower(&mut Uuid::encode_buffer()));
            }
            payload
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_stay_under_postgresql_limit_and_name_every_session() {
        let sids: Vec<Uuid> = (0..450).map(|_| Uuid::new_v4()).collect();
        let payloads = payloads(&sids);
        assert_eq!(payloads.len(), 3);
        assert!(payloads.iter().all(|p| p.len() < 8000));
        let heard: Vec<Uuid> = payloads
            .iter()
            .flat_map(|p| p.split(' ').map(|s| Uuid::try_parse(s).unwrap()))
            .collect();
        assert_eq!(heard, sids);
    }
}
