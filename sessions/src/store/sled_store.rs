//! The embedded backend: one sled `Db`, a tree per entity and per index.
//!
//! Trees:
//! - `sessions`: realm id + sid → [`StoredSession`]
//! - `tokens`: SHA-256 of the secret token → realm id + sid
//! - `by_created`, `by_last_access`, `by_expiry`: realm id + time + sid → ()
//! - `by_attr`: realm id + kind + value + created time + sid → () (subject, client, name prefix)
//! - `counts`: realm id (+ kind + value) → exact number of sessions, as a big-endian u64
//! - `realms`: name → realm record (JSON); `meta`: the results-token key; `audit`: id → entry
//! - `clients`: realm id + client id → registration (JSON)
//! - the grant trees (see [`super::grants`]) and the back-channel outbox (see [`super::outbox`])
//!
//! A session and all its index entries and counters change in one transaction. Ending a session
//! also removes its revoked grants and queues its logout notifications in that transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::grants::{self, GrantId, GrantTx, StoredGrant};
use super::group_commit::GroupCommit;
use super::keys::{self, AttrKind, RealmId, Sid};
use super::outbox::{self, OutboxTx};
use super::record::{parse_sid, sid_to_string, IndexEntry, StoredSession};
use super::results_token::ResultsTokenCodec;
use super::{ChangeFeed, DueCursor, SessionStore};
use crate::delivery::{AttemptResult, Delivery, DeliveryCounts, DeliveryPage, DeliveryStatus};
use crate::error::{Result, SessionError};
use crate::grant::{Grant, GrantKind, GrantOwner, NewGrant};
use crate::model::{
    AuditEntry, Client, ClientRegistration, CreatedSession, NewSession, QueryResult, QuotaPolicy,
    Realm, RealmSettings, RealmSettingsUpdate, RemoveAllSessions, RemoveOutcome, RemoveSessions,
    Session, SessionQuery, SortKey,
};
use crate::validate;

/// Most sessions one removal request may select by sid.
pub const MAX_SELECTED_SIDS: usize = 1000;
/// Longest secret token looked up; anything longer cannot be one of ours.
pub const MAX_TOKEN_LEN: usize = 128;
/// Tries at making room under an `evict_oldest` quota before giving up.
pub(super) const MAX_EVICTION_ATTEMPTS: usize = 8;
/// Most grants one listing answers.
pub const MAX_LISTED_GRANTS: usize = 1000;
/// Largest page of deliveries.
pub const MAX_LISTED_DELIVERIES: usize = 500;
/// Sessions removed per batch by a realm-wide removal.
pub const REMOVE_ALL_BATCH: usize = 1000;
/// Grants deleted per transaction when many go at once.
pub const GRANT_DELETE_BATCH: usize = 256;

/// A realm as the store keeps it in memory.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(super) struct RealmEntry {
    pub id: RealmId,
    pub name: String,
    pub settings: RealmSettings,
    pub created_ms: i64,
}

/// All trees of the store.
pub(super) struct Trees {
    pub sessions: Tree,
    pub tokens: Tree,
    pub by_created: Tree,
    pub by_last_access: Tree,
    pub by_expiry: Tree,
    pub by_attr: Tree,
    pub counts: Tree,
    realms: Tree,
    clients: Tree,
    meta: Tree,
    audit: Tree,
    pub grants: Tree,
    pub grant_tokens: Tree,
    pub grant_index: Tree,
    pub outbox: Tree,
    pub outbox_index: Tree,
}

impl Trees {
    /// The sort index of an order.
    pub fn sorted(&self, sort: SortKey) -> &Tree {
        match sort {
            SortKey::Created => &self.by_created,
            SortKey::LastAccess => &self.by_last_access,
            SortKey::Expires => &self.by_expiry,
        }
    }
}

/// The session trees as seen inside one transaction.
struct Tx<'a> {
    sessions: &'a TransactionalTree,
    tokens: &'a TransactionalTree,
    by_created: &'a TransactionalTree,
    by_last_access: &'a TransactionalTree,
    by_expiry: &'a TransactionalTree,
    by_attr: &'a TransactionalTree,
    counts: &'a TransactionalTree,
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<SessionError>>;

impl Tx<'_> {
    fn sorted(&self, sort: SortKey) -> &TransactionalTree {
        match sort {
            SortKey::Created => self.by_created,
            SortKey::LastAccess => self.by_last_access,
            SortKey::Expires => self.by_expiry,
        }
    }

    fn bump(&self, counter: &[u8], delta: i64) -> TxResult<()> {
        let current = self.counts.get(counter)?;
        let n = keys::add_to_counter(current.as_deref(), delta);
        if n == 0 {
            self.counts.remove(counter)?;
        } else {
            self.counts.insert(counter, &n.to_be_bytes())?;
        }
        Ok(())
    }

    fn add_entry(&self, e: &IndexEntry, delta: i64) -> TxResult<()> {
        match e {
            IndexEntry::Sorted(sort, key) if delta > 0 => {
                drop(self.sorted(*sort).insert(&key[..], &[])?)
            }
            IndexEntry::Sorted(sort, key) => drop(self.sorted(*sort).remove(&key[..])?),
            IndexEntry::Attr { key, counter } => {
                if delta > 0 {
                    self.by_attr.insert(&key[..], &[])?;
                } else {
                    self.by_attr.remove(&key[..])?;
                }
                self.bump(counter, delta)?;
            }
        }
        Ok(())
    }

    /// Stores a new session with all its index entries and counters.
    fn insert(&self, realm: RealmId, s: &StoredSession) -> TxResult<()> {
        let key = keys::session_key(realm, &s.sid);
        self.sessions.insert(&key[..], s.encode())?;
        self.tokens.insert(&s.token_hash[..], &key[..])?;
        for e in s.index_entries(realm) {
            self.add_entry(&e, 1)?;
        }
        self.bump(&keys::realm_count_key(realm), 1)
    }

    /// Deletes a session with all its index entries and counters: the exact inverse of `insert`.
    fn delete(&self, realm: RealmId, s: &StoredSession) -> TxResult<()> {
        self.sessions
            .remove(&keys::session_key(realm, &s.sid)[..])?;
        self.tokens.remove(&s.token_hash[..])?;
        for e in s.index_entries(realm) {
            self.add_entry(&e, -1)?;
        }
        self.bump(&keys::realm_count_key(realm), -1)
    }

    /// Replaces a session's record, changing only the index entries that differ.
    fn update(&self, realm: RealmId, old: &StoredSession, new: &StoredSession) -> TxResult<()> {
        self.sessions
            .insert(&keys::session_key(realm, &new.sid)[..], new.encode())?;
        let (before, after) = (old.index_entries(realm), new.index_entries(realm));
        for e in before.difference(&after) {
            self.add_entry(e, -1)?;
        }
        for e in after.difference(&before) {
            self.add_entry(e, 1)?;
        }
        Ok(())
    }

    fn load(&self, realm: RealmId, sid: &Sid) -> TxResult<Option<StoredSession>> {
        match self.sessions.get(&keys::session_key(realm, sid)[..])? {
            Some(v) => Ok(Some(
                StoredSession::decode(&v).map_err(ConflictableTransactionError::Abort)?,
            )),
            None => Ok(None),
        }
    }
}

/// The sled-backed session store, previous layout (v1: one tree per entity and index). Not what
/// the product runs ([`super::SledStore`] is v2, which upgrades a v1 directory on open); kept
/// for its conformance run, the upgrade fixture and the upgrade's decoders.
pub struct SledStoreV1 {
    db: sled::Db,
    pub(super) trees: Trees,
    realms: ArcSwap<HashMap<String, Arc<RealmEntry>>>,
    /// Serialises realm creation and updates.
    realm_writes: Mutex<()>,
    pub(super) results_tokens: ResultsTokenCodec,
    commit: GroupCommit,
    /// Where creates and removals say which realm changed.
    changes: ChangeFeed,
}

impl SledStoreV1 {
    /// Opens (or creates) the store in a directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::with_config(sled::Config::new().path(path))
    }

    /// A store in a temporary directory that is deleted when dropped, for tests.
    pub fn temporary() -> Result<Self> {
        Self::with_config(sled::Config::new().temporary(true))
    }

    fn with_config(config: sled::Config) -> Result<Self> {
        let db = config.open()?;
        let trees = Trees {
            sessions: db.open_tree("sessions")?,
            tokens: db.open_tree("tokens")?,
            by_created: db.open_tree("by_created")?,
            by_last_access: db.open_tree("by_last_access")?,
            by_expiry: db.open_tree("by_expiry")?,
            by_attr: db.open_tree("by_attr")?,
            counts: db.open_tree("counts")?,
            realms: db.open_tree("realms")?,
            clients: db.open_tree("clients")?,
            meta: db.open_tree("meta")?,
            audit: db.open_tree("audit")?,
            grants: db.open_tree("grants")?,
            grant_tokens: db.open_tree("grant_tokens")?,
            grant_index: db.open_tree("grant_index")?,
            outbox: db.open_tree("outbox")?,
            outbox_index: db.open_tree("outbox_index")?,
        };
        let upgraded = outbox::upgrade_due_index(&trees.outbox_index)?;
        if upgraded > 0 {
            tracing::info!(upgraded, "outbox due index rewritten as per-client queues");
        }
        let key = match trees.meta.get("results_token_key")? {
            Some(k) if k.len() == 32 => k.as_ref().try_into().expect("32 bytes"),
            _ => {
                let k: [u8; 32] = random_bytes()?;
                trees.meta.insert("results_token_key", &k[..])?;
                db.flush()?;
                k
            }
        };
        let mut realms = HashMap::new();
        for item in trees.realms.iter() {
            let (_, v) = item?;
            let entry: RealmEntry = serde_json::from_slice(&v)
                .map_err(|e| SessionError::Storage(format!("corrupt realm record: {e}")))?;
            realms.insert(entry.name.clone(), Arc::new(entry));
        }
        Ok(Self {
            db,
            trees,
            realms: ArcSwap::from_pointee(realms),
            realm_writes: Mutex::new(()),
            results_tokens: ResultsTokenCodec::new(key),
            commit: GroupCommit::default(),
            changes: ChangeFeed::default(),
        })
    }

    /// Blocks until everything written so far is on disk, sharing the flush with concurrent
    /// callers.
    pub fn wait_durable(&self) -> Result<()> {
        self.commit
            .wait_durable(|| self.db.flush().map(drop).map_err(SessionError::from))
    }

    /// Opens a tree of the same database for a companion store (API keys, admin accounts), so
    /// its writes share this store's durability.
    pub fn companion_tree(&self, name: &str) -> Result<Tree> {
        Ok(self.db.open_tree(format!("companion_{name}"))?)
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }

    /// The name of every realm, by id.
    pub(super) fn realm_names(&self) -> HashMap<RealmId, String> {
        self.realms
            .load()
            .values()
            .map(|r| (r.id, r.name.clone()))
            .collect()
    }

    pub(super) fn realm(&self, name: &str) -> Result<Arc<RealmEntry>> {
        self.realms
            .load()
            .get(name)
            .cloned()
            .ok_or_else(|| SessionError::RealmNotFound(name.to_owned()))
    }

    /// Runs `f` in one transaction over the session trees.
    fn transact<T>(&self, f: impl Fn(&Tx) -> TxResult<T>) -> Result<T> {
        let t = &self.trees;
        (
            &t.sessions,
            &t.tokens,
            &t.by_created,
            &t.by_last_access,
            &t.by_expiry,
            &t.by_attr,
            &t.counts,
        )
            .transaction(
                |(sessions, tokens, by_created, by_last_access, by_expiry, by_attr, counts)| {
                    f(&Tx {
                        sessions,
                        tokens,
                        by_created,
                        by_last_access,
                        by_expiry,
                        by_attr,
                        counts,
                    })
                },
            )
            .map_err(tx_error)
    }

    /// Runs `f` in one transaction over the session, grant and outbox trees: what ending a
    /// session touches.
    fn transact_all<T>(&self, f: impl Fn(&Tx, &GrantTx, &OutboxTx) -> TxResult<T>) -> Result<T> {
        let t = &self.trees;
        (
            &t.sessions,
            &t.tokens,
            &t.by_created,
            &t.by_last_access,
            &t.by_expiry,
            &t.by_attr,
            &t.counts,
            &t.grants,
            &t.grant_tokens,
            &t.grant_index,
            &t.outbox,
            &t.outbox_index,
        )
            .transaction(
                |(
                    sessions,
                    tokens,
                    by_created,
                    by_last_access,
                    by_expiry,
                    by_attr,
                    counts,
                    grants,
                    grant_tokens,
                    grant_index,
                    outbox,
                    outbox_index,
                )| {
                    let tx = Tx {
                        sessions,
                        tokens,
                        by_created,
                        by_last_access,
                        by_expiry,
                        by_attr,
                        counts,
                    };
                    let gtx = GrantTx {
                        grants,
                        tokens: grant_tokens,
                        index: grant_index,
                        counts,
                    };
                    let otx = OutboxTx {
                        outbox,
                        index: outbox_index,
                    };
                    f(&tx, &gtx, &otx)
                },
            )
            .map_err(tx_error)
    }

    /// Runs `f` in one transaction over the grant trees, the counters and the session records.
    fn transact_grants<T>(
        &self,
        f: impl Fn(&TransactionalTree, &GrantTx) -> TxResult<T>,
    ) -> Result<T> {
        let t = &self.trees;
        (
            &t.sessions,
            &t.counts,
            &t.grants,
            &t.grant_tokens,
            &t.grant_index,
        )
            .transaction(|(sessions, counts, grants, tokens, index)| {
                f(
                    sessions,
                    &GrantTx {
                        grants,
                        tokens,
                        index,
                        counts,
                    },
                )
            })
            .map_err(tx_error)
    }

    pub(super) fn counter(&self, key: &[u8]) -> Result<u64> {
        Ok(keys::counter_value(self.trees.counts.get(key)?.as_deref()))
    }

    pub(super) fn load(&self, realm: RealmId, sid: &Sid) -> Result<Option<StoredSession>> {
        match self.trees.sessions.get(keys::session_key(realm, sid))? {
            Some(v) => Ok(Some(StoredSession::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// The session a secret token belongs to, if it is in this realm and valid at `now_ms`.
    fn resolve_token(
        &self,
        realm: &RealmEntry,
        token: &str,
        now_ms: i64,
    ) -> Result<Option<StoredSession>> {
        Ok(self
            .token_session(realm, token)?
            .filter(|s| s.is_valid_at(now_ms)))
    }

    /// The session a secret token belongs to, if it is in this realm, valid or not: an expired
    /// session stays stored until the reaper ends it.
    fn token_session(&self, realm: &RealmEntry, token: &str) -> Result<Option<StoredSession>> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let Some(key) = self.trees.tokens.get(hash)? else {
            return Ok(None);
        };
        if key.len() != 20 || key[..4] != realm.id.to_be_bytes() {
            return Ok(None);
        }
        let sid: Sid = key[4..].try_into().expect("16 bytes");
        self.load(realm.id, &sid)
    }

    /// The grant a token belongs to, if it is in this realm, expired or not.
    fn token_grant(&self, realm: &RealmEntry, token: &str) -> Result<Option<StoredGrant>> {
        if token.is_empty() || token.len() > validate::MAX_GRANT_TOKEN_LEN {
            return Ok(None);
        }
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let Some(key) = self.trees.grant_tokens.get(hash)? else {
            return Ok(None);
        };
        if key.len() != 20 || key[..4] != realm.id.to_be_bytes() {
            return Ok(None);
        }
        match self.trees.grants.get(&key)? {
            Some(v) => Ok(Some(StoredGrant::decode(&v)?)),
            None => Ok(None),
        }
    }

    fn client_view(
        &self,
        realm: RealmId,
        client_id: &str,
        r: ClientRegistration,
    ) -> Result<Client> {
        Ok(Client {
            client_id: client_id.to_owned(),
            name: r.name,
            backchannel_logout_uri: r.backchannel_logout_uri,
            backchannel_logout_session_required: r.backchannel_logout_session_required,
            session_count: self.counter(&keys::attr_prefix(
                realm,
                AttrKind::Client,
                client_id.as_bytes(),
            ))?,
        })
    }

    fn realm_view(&self, e: &RealmEntry) -> Result<Realm> {
        Ok(Realm {
            name: e.name.clone(),
            settings: e.settings.clone(),
            created_at: super::record::from_ms(e.created_ms),
            session_count: self.counter(&keys::realm_count_key(e.id))?,
        })
    }

    /// Appends an entry to the audit log (made durable by the caller's commit).
    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        let id = self.db.generate_id()?;
        let value = serde_json::to_vec(entry).map_err(|e| SessionError::Storage(e.to_string()))?;
        self.trees.audit.insert(id.to_be_bytes(), value)?;
        Ok(())
    }

    /// The oldest session of a subject, if any.
    fn oldest_of_subject(&self, realm: RealmId, subject: &str) -> Result<Option<Sid>> {
        let prefix = keys::attr_prefix(realm, AttrKind::Subject, subject.as_bytes());
        match self.trees.by_attr.scan_prefix(&prefix).next() {
            Some(item) => Ok(Some(keys::split_time_sid(&item?.0).1)),
            None => Ok(None),
        }
    }

    /// Applies `change` to a stored session in one transaction and answers the new version.
    fn modify(
        &self,
        realm: RealmId,
        sid: &Sid,
        change: impl Fn(&StoredSession) -> Result<Option<StoredSession>>,
    ) -> Result<Option<StoredSession>> {
        self.transact(|tx| {
            let Some(old) = tx.load(realm, sid)? else {
                return Ok(None);
            };
            match change(&old).map_err(ConflictableTransactionError::Abort)? {
                Some(new) => {
                    tx.update(realm, &old, &new)?;
                    Ok(Some(new))
                }
                None => Ok(Some(old)),
            }
        })
    }

    /// Stores a new session within its subject's quota, ending the subject's oldest sessions
    /// under `evict_oldest` (then `evicted` is set, also when it fails later).
    fn insert_within_quota(
        &self,
        realm: &RealmEntry,
        session: &StoredSession,
        evicted: &mut bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let quota = realm.settings.max_sessions_per_subject.map(u64::from);
        let subject = &session.subject_id;
        let subject_counter = keys::attr_prefix(realm.id, AttrKind::Subject, subject.as_bytes());
        // Evicting makes room unless concurrent creations keep taking it; give up after a few tries.
        for attempt in 0.. {
            let inserted = self.transact(|tx| {
                if let Some(max) = quota {
                    if keys::counter_value(tx.counts.get(&subject_counter)?.as_deref()) >= max {
                        return Ok(false);
                    }
                }
                tx.insert(realm.id, session)?;
                Ok(true)
            })?;
            if inserted {
                break;
            }
            match realm.settings.quota_policy {
                QuotaPolicy::Deny => return Err(SessionError::QuotaExceeded(subject.clone())),
                QuotaPolicy::EvictOldest if attempt >= MAX_EVICTION_ATTEMPTS => {
                    return Err(SessionError::QuotaExceeded(subject.clone()))
                }
                QuotaPolicy::EvictOldest => {
                    let oldest = match self.oldest_of_subject(realm.id, subject)? {
                        Some(sid) => self.load(realm.id, &sid)?,
                        None => None,
                    };
                    if let Some(s) = oldest {
                        let flags = Flags::everything("evicted");
                        let mut outcome = RemoveOutcome::default();
                        let ended = self.end_sessions(realm, &[s], &flags, &mut outcome, now);
                        *evicted |= outcome.sessions_removed > 0;
                        ended?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the given sessions: the one path every removal, logout, sign-out, eviction and expiry
    /// takes. Per session, one transaction removes the record, the revoked grants, and queues the
    /// logout notifications, so either all of it happened or none of it did.
    fn end_sessions(
        &self,
        realm: &RealmEntry,
        targets: &[StoredSession],
        flags: &Flags,
        outcome: &mut RemoveOutcome,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let uris = if flags.notify {
            self.backchannel_uris(realm.id)?
        } else {
            HashMap::new()
        };
        let mut clients = HashSet::new();
        let mut consents_seen = HashSet::new();
        for s in targets {
            clients.extend(s.client_ids.iter().filter(|c| flags.in_scope(c)).cloned());
            // The clients to notify: those joined (as the transaction sees the session) within
            // scope that have a back-channel URI.
            let notify = |session: &StoredSession| -> Vec<(String, String)> {
                session
                    .client_ids
                    .iter()
                    .filter(|c| flags.in_scope(c))
                    .filter_map(|c| uris.get(c).map(|u| (c.clone(), u.clone())))
                    .collect()
            };
            // A subject's consents are revoked once per request, with its first session.
            let consents = if flags.revoke_consents && consents_seen.insert(s.subject_id.clone()) {
                self.consents_of(realm.id, &s.subject_id, flags)?
            } else {
                Vec::new()
            };
            for attempt in 0.. {
                let (seen, tokens) = if flags.revoke_tokens {
                    self.session_tokens(realm.id, &s.sid, flags)?
                } else {
                    (0, Vec::new())
                };
                if outcome.dry_run {
                    outcome.sessions_removed += u64::from(flags.remove_server_side_session);
                    outcome.tokens_revoked += tokens.len() as u64;
                    outcome.consents_revoked += consents.len() as u64;
                    outcome.clients_notified += notify(s).len() as u64;
                    break;
                }
                let step = self.transact_all(|tx, gtx, otx| {
                    let Some(current) = tx.load(realm.id, &s.sid)? else {
                        return Ok(EndStep::Gone);
                    };
                    if flags.expired_at.is_some_and(|at| current.is_valid_at(at)) {
                        return Ok(EndStep::Gone);
                    }
                    if flags.revoke_tokens && gtx.session_generation(realm.id, &s.sid)? != seen {
                        return Ok(EndStep::Rescan);
                    }
                    let mut done = RemoveOutcome::default();
                    if flags.remove_server_side_session {
                        tx.delete(realm.id, &current)?;
                        gtx.forget_session(realm.id, &current.sid)?;
                        done.sessions_removed = 1;
                    }
                    for id in &tokens {
                        done.tokens_revoked += u64::from(gtx.delete(realm.id, id)?);
                    }
                    for id in &consents {
                        done.consents_revoked += u64::from(gtx.delete(realm.id, id)?);
                    }
                    for (client_id, uri) in &notify(&current) {
                        let delivery = new_delivery(
                            otx.next_id()?,
                            realm,
                            &current,
                            client_id,
                            uri,
                            flags.reason,
                            now,
                        );
                        otx.insert(realm.id, &delivery)?;
                        done.clients_notified += 1;
                    }
                    Ok(EndStep::Ended(done))
                })?;
                match step {
                    EndStep::Rescan if attempt >= MAX_EVICTION_ATTEMPTS => {
                        return Err(SessionError::Conflict(
                            "grants of a session kept changing while it was being ended; try again"
                                .into(),
                        ))
                    }
                    EndStep::Rescan => continue,
                    EndStep::Gone => {
                        // Already ended elsewhere: the subject's next session takes its consents.
                        if !consents.is_empty() {
                            consents_seen.remove(&s.subject_id);
                        }
                        break;
                    }
                    EndStep::Ended(done) => {
                        if done.sessions_removed > 0 {
                            self.changes.realm_changed(&realm.name);
                        }
                        outcome.sessions_removed += done.sessions_removed;
                        outcome.tokens_revoked += done.tokens_revoked;
                        outcome.consents_revoked += done.consents_revoked;
                        outcome.clients_notified += done.clients_notified;
                        break;
                    }
                }
            }
        }
        outcome.clients_affected += clients.len() as u64;
        Ok(())
    }

    /// Back-channel logout URI of every client of the realm that has one.
    fn backchannel_uris(&self, realm: RealmId) -> Result<HashMap<String, String>> {
        let prefix = keys::realm_prefix(realm);
        let mut out = HashMap::new();
        for item in self.trees.clients.scan_prefix(prefix) {
            let (k, v) = item?;
            if let Some(uri) = decode_registration(&v)?.backchannel_logout_uri {
                out.insert(
                    String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                    uri,
                );
            }
        }
        Ok(out)
    }

    /// The grants whose `grant_index` keys start with `prefix`.
    fn grants_under(&self, realm: RealmId, prefix: &[u8]) -> Result<Vec<StoredGrant>> {
        let mut out = Vec::new();
        for item in self.trees.grant_index.scan_prefix(prefix) {
            let id = grants::id_of_index_key(&item?.0);
            if let Some(v) = self.trees.grants.get(grants::grant_key(realm, &id))? {
                out.push(StoredGrant::decode(&v)?);
            }
        }
        Ok(out)
    }

    /// The session's token grants within the flags' client scope, with the session's grant
    /// generation read before listing them (the transaction re-checks it).
    fn session_tokens(
        &self,
        realm: RealmId,
        sid: &Sid,
        flags: &Flags,
    ) -> Result<(u64, Vec<GrantId>)> {
        let seen = self.counter(&grants::session_grants_counter(realm, sid))?;
        let ids = self
            .grants_under(realm, &grants::session_prefix(realm, sid))?
            .into_iter()
            .filter(|g| g.kind.is_token() && flags.in_scope(&g.client_id))
            .map(|g| g.id)
            .collect();
        Ok((seen, ids))
    }

    /// The subject's consents within the flags' client scope.
    fn consents_of(&self, realm: RealmId, subject: &str, flags: &Flags) -> Result<Vec<GrantId>> {
        Ok(self
            .grants_under(realm, &grants::subject_prefix(realm, subject))?
            .into_iter()
            .filter(|g| g.kind == GrantKind::Consent && flags.in_scope(&g.client_id))
            .map(|g| g.id)
            .collect())
    }

    /// Removes up to `batch` grants that expired before `now_ms`; answers how many.
    fn reap_expired_grants(&self, realm: RealmId, now_ms: i64, batch: usize) -> Result<usize> {
        let (start, end) = grants::expired_range(realm, now_ms);
        let ids: Vec<GrantId> = self
            .trees
            .grant_index
            .range(start..end)
            .take(batch)
            .map(|item| item.map(|(k, _)| grants::id_of_index_key(&k)))
            .collect::<std::result::Result<_, _>>()?;
        let mut removed = 0;
        self.delete_grants(realm, &ids, &mut removed)?;
        Ok(removed as usize)
    }

    /// Deletes grants, [`GRANT_DELETE_BATCH`] per transaction, adding to `deleted` as each batch
    /// commits (so a failure part way still counts what was done). Grants already gone are
    /// passed over.
    fn delete_grants(&self, realm: RealmId, ids: &[GrantId], deleted: &mut u64) -> Result<()> {
        for batch in ids.chunks(GRANT_DELETE_BATCH) {
            *deleted += self.transact_grants(|sessions, gtx| {
                let mut n = 0;
                for id in batch {
                    n += u64::from(delete_grant(sessions, gtx, realm, id)?);
                }
                Ok(n)
            })?;
        }
        Ok(())
    }

    /// Deletes (or, for a dry run, counts) the subject's grants that `select` picks, walking its
    /// grant index a batch at a time; adds them to `revoked` as each batch is done.
    fn revoke_subject_grants_where(
        &self,
        realm: RealmId,
        subject: &str,
        dry_run: bool,
        revoked: &mut u64,
        select: impl Fn(&StoredGrant) -> bool,
    ) -> Result<()> {
        let prefix = grants::subject_prefix(realm, subject);
        let mut after: Option<sled::IVec> = None;
        loop {
            let lower = match &after {
                Some(k) => Bound::Excluded(k.clone()),
                None => Bound::Included(sled::IVec::from(&prefix[..])),
            };
            let mut batch = Vec::with_capacity(GRANT_DELETE_BATCH);
            for item in self.trees.grant_index.range((lower, Bound::Unbounded)) {
                let (k, _) = item?;
                if !k.starts_with(&prefix) {
                    break;
                }
                let id = grants::id_of_index_key(&k);
                after = Some(k);
                if let Some(v) = self.trees.grants.get(grants::grant_key(realm, &id))? {
                    if select(&StoredGrant::decode(&v)?) {
                        batch.push(id);
                    }
                }
                if batch.len() == GRANT_DELETE_BATCH {
                    break;
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            if dry_run {
                *revoked += batch.len() as u64;
            } else {
                self.delete_grants(realm, &batch, revoked)?;
            }
        }
    }

    /// Records a removal in the audit log and waits until it is on disk, also when `ended` says
    /// it stopped part way (what ended before the error stays ended, so it is recorded and made
    /// durable before the error is answered). A dry run leaves no trace.
    fn finish_removal(
        &self,
        outcome: &RemoveOutcome,
        mut entry: AuditEntry,
        ended: Result<()>,
    ) -> Result<()> {
        if outcome.dry_run {
            return ended;
        }
        let done = format!(
            "records removed: {}, tokens revoked: {}, consents revoked: {}, logouts queued: {}",
            outcome.sessions_removed,
            outcome.tokens_revoked,
            outcome.consents_revoked,
            outcome.clients_notified
        );
        entry.outcome = match &ended {
            Ok(()) => format!(
                "ended: {}, {done}, not found: {}",
                outcome.removed.len().max(outcome.sessions_removed as usize),
                outcome.not_found.len()
            ),
            Err(e) => format!("stopped part way: {e}; before that, {done}"),
        };
        self.audit(&entry)?;
        self.wait_durable()?;
        ended
    }

    /// Ends every session of the realm, in batches along the creation index.
    fn end_realm(
        &self,
        realm: &RealmEntry,
        flags: &Flags,
        outcome: &mut RemoveOutcome,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let prefix = keys::realm_prefix(realm.id);
        let mut after: Option<sled::IVec> = None;
        loop {
            let lower = match &after {
                Some(k) => Bound::Excluded(k.clone()),
                None => Bound::Included(sled::IVec::from(&prefix[..])),
            };
            let range = self.trees.by_created.range((lower, Bound::Unbounded));
            let mut batch = Vec::with_capacity(REMOVE_ALL_BATCH);
            for item in range {
                let (k, _) = item?;
                if !k.starts_with(&prefix) {
                    break;
                }
                let (_, sid) = keys::split_time_sid(&k);
                after = Some(k);
                if let Some(s) = self.load(realm.id, &sid)? {
                    batch.push(s);
                }
                if batch.len() == REMOVE_ALL_BATCH {
                    break;
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            self.end_sessions(realm, &batch, flags, outcome, now)?;
        }
    }
}

/// Deletes a grant inside a transaction; true if it was still stored.
fn delete_grant(
    sessions: &TransactionalTree,
    gtx: &GrantTx,
    realm: RealmId,
    id: &GrantId,
) -> TxResult<bool> {
    let Some(g) = gtx.load(realm, id)? else {
        return Ok(false);
    };
    gtx.delete(realm, id)?;
    // Stores written before grant generations existed can hold the counter of a session that is
    // gone; its grants take it along.
    if let Some(sid) = &g.sid {
        if sessions.get(keys::session_key(realm, sid))?.is_none() {
            gtx.forget_session(realm, sid)?;
        }
    }
    Ok(true)
}

/// A failed transaction as the store's error.
fn tx_error(e: TransactionError<SessionError>) -> SessionError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    }
}

/// What ending sessions does besides selecting them.
pub struct Flags {
    pub remove_server_side_session: bool,
    pub revoke_tokens: bool,
    pub revoke_consents: bool,
    pub notify: bool,
    /// Limits token and consent revocation and notifications to these clients.
    pub client_scope: Option<BTreeSet<String>>,
    /// Why the sessions end, as recorded in their deliveries.
    pub reason: &'static str,
    /// Only end sessions that are no longer valid at this time (the reaper's check).
    pub expired_at: Option<i64>,
}

impl Flags {
    /// Everything on, every client: a logout or an eviction.
    pub fn everything(reason: &'static str) -> Self {
        Flags {
            remove_server_side_session: true,
            revoke_tokens: true,
            revoke_consents: true,
            notify: true,
            client_scope: None,
            reason,
            expired_at: None,
        }
    }

    pub fn in_scope(&self, client_id: &str) -> bool {
        in_scope(&self.client_scope, client_id)
    }
}

/// How one session's ending transaction went.
enum EndStep {
    /// It ended; what it did.
    Ended(RemoveOutcome),
    /// It was already gone (or, for the reaper, valid again).
    Gone,
    /// A grant was added under it since its grants were listed: list them again.
    Rescan,
}

/// A new pending delivery of a logout notification about `session` to one client.
pub(super) fn new_delivery(
    id: u64,
    realm: &RealmEntry,
    session: &StoredSession,
    client_id: &str,
    uri: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Delivery {
    Delivery {
        id,
        realm: realm.name.clone(),
        client_id: client_id.to_owned(),
        uri: uri.to_owned(),
        subject_id: session.subject_id.clone(),
        sid: sid_to_string(&session.sid),
        reason: reason.to_owned(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        window_attempts: 0,
        created_at: now,
        retry_window_start: now,
        next_attempt_at: Some(now),
        last_attempt_at: None,
        delivered_at: None,
        last_error: None,
        last_jti: None,
    }
}

/// Key of a client registration: realm id, client id.
fn client_key(realm: RealmId, client_id: &str) -> Vec<u8> {
    [&keys::realm_prefix(realm)[..], client_id.as_bytes()].concat()
}

pub(super) fn decode_registration(v: &[u8]) -> Result<ClientRegistration> {
    serde_json::from_slice(v)
        .map_err(|e| SessionError::Storage(format!("corrupt client record: {e}")))
}

/// An audit entry for an action on something in a realm; the caller sets its outcome.
pub(super) fn audit_entry(
    realm: &RealmEntry,
    action: &str,
    target: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry {
        at: now,
        actor: actor.to_owned(),
        realm: Some(realm.name.clone()),
        action: action.to_owned(),
        target: target.to_owned(),
        reason: None,
        outcome: String::new(),
    }
}

/// An audit entry for a removal; its outcome is filled in when the removal is done.
pub(super) fn removal_entry(
    realm: &RealmEntry,
    action: &str,
    target: String,
    reason: &Option<String>,
    actor: &str,
    now: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry {
        reason: reason.clone(),
        ..audit_entry(realm, action, &target, actor, now)
    }
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b)
        .map_err(|e| SessionError::Storage(format!("no randomness: {e}")))?;
    Ok(b)
}

pub fn check_reason(reason: Option<&str>) -> Result<()> {
    if reason.is_some_and(|r| r.len() > 1000) {
        return Err(SessionError::invalid("reason is longer than 1000 bytes"));
    }
    Ok(())
}

/// The clients a request limits itself to (`None`: every client); each named exactly.
pub fn client_scope(ids: Option<&[String]>) -> Result<Option<BTreeSet<String>>> {
    let Some(ids) = ids else { return Ok(None) };
    for c in ids {
        validate::not_blank("client_ids entry", c)?;
        validate::identifier("client_ids entry", c)?;
    }
    Ok(Some(ids.iter().cloned().collect()))
}

/// Whether a client is within a client scope.
pub fn in_scope(scope: &Option<BTreeSet<String>>, client_id: &str) -> bool {
    scope.as_ref().is_none_or(|s| s.contains(client_id))
}

impl SessionStore for SledStoreV1 {
    fn put_realm(
        &self,
        name: &str,
        update: &RealmSettingsUpdate,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Realm> {
        validate::realm_name(name)?;
        let _guard = self
            .realm_writes
            .lock()
            .map_err(|_| SessionError::Storage("realm lock poisoned".into()))?;
        let existing = self.realms.load().get(name).cloned();
        let entry = match &existing {
            Some(e) => RealmEntry {
                settings: update.apply_to(&e.settings),
                ..(**e).clone()
            },
            None => RealmEntry {
                id: u32::try_from(self.db.generate_id()? + 1)
                    .map_err(|_| SessionError::Storage("realm ids exhausted".into()))?,
                name: name.to_owned(),
                settings: update.apply_to(&RealmSettings::default()),
                created_ms: now.timestamp_millis(),
            },
        };
        validate::realm_settings(&entry.settings)?;
        let value = serde_json::to_vec(&entry).map_err(|e| SessionError::Storage(e.to_string()))?;
        self.trees.realms.insert(name, value)?;
        self.audit(&AuditEntry {
            at: now,
            actor: actor.to_owned(),
            realm: Some(name.to_owned()),
            action: if existing.is_some() {
                "update_realm"
            } else {
                "create_realm"
            }
            .into(),
            target: name.to_owned(),
            reason: None,
            outcome: "ok".into(),
        })?;
        self.wait_durable()?;
        let mut map = HashMap::clone(&self.realms.load());
        map.insert(name.to_owned(), Arc::new(entry.clone()));
        self.realms.store(Arc::new(map));
        self.realm_view(&entry)
    }

    fn get_realm(&self, name: &str) -> Result<Realm> {
        self.realm_view(&*self.realm(name)?)
    }

    fn list_realms(&self) -> Result<Vec<Realm>> {
        let realms = self.realms.load();
        let mut out = realms
            .values()
            .map(|e| self.realm_view(e))
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn put_client(
        &self,
        realm: &str,
        client_id: &str,
        registration: &ClientRegistration,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Client> {
        let realm = self.realm(realm)?;
        validate::client_registration(client_id, registration)?;
        let value =
            serde_json::to_vec(registration).map_err(|e| SessionError::Storage(e.to_string()))?;
        let existed = self
            .trees
            .clients
            .insert(client_key(realm.id, client_id), value)?
            .is_some();
        let action = if existed {
            "update_client"
        } else {
            "create_client"
        };
        let entry = AuditEntry {
            outcome: "ok".into(),
            ..audit_entry(&realm, action, client_id, actor, now)
        };
        self.audit(&entry)?;
        self.wait_durable()?;
        self.client_view(realm.id, client_id, registration.clone())
    }

    fn get_client(&self, realm: &str, client_id: &str) -> Result<Client> {
        let realm = self.realm(realm)?;
        let not_found = || SessionError::ClientNotFound(client_id.to_owned());
        let value = self
            .trees
            .clients
            .get(client_key(realm.id, client_id))?
            .ok_or_else(not_found)?;
        self.client_view(realm.id, client_id, decode_registration(&value)?)
    }

    fn list_clients(&self, realm: &str) -> Result<Vec<Client>> {
        let realm = self.realm(realm)?;
        let prefix = keys::realm_prefix(realm.id);
        self.trees
            .clients
            .scan_prefix(prefix)
            .map(|item| {
                let (k, v) = item?;
                let client_id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                self.client_view(realm.id, &client_id, decode_registration(&v)?)
            })
            .collect()
    }

    fn delete_client(
        &self,
        realm: &str,
        client_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let realm = self.realm(realm)?;
        let existed = self
            .trees
            .clients
            .remove(client_key(realm.id, client_id))?
            .is_some();
        if existed {
            let entry = AuditEntry {
                outcome: "ok".into(),
                ..audit_entry(&realm, "delete_client", client_id, actor, now)
            };
            self.audit(&entry)?;
            self.wait_durable()?;
        }
        Ok(existed)
    }

    fn create_session(
        &self,
        realm: &str,
        new: &NewSession,
        now: DateTime<Utc>,
    ) -> Result<CreatedSession> {
        let realm = self.realm(realm)?;
        validate::new_session(new)?;
        let settings = &realm.settings;
        let now_ms = now.timestamp_millis();
        let mut client_ids: Vec<String> = Vec::with_capacity(new.client_ids.len());
        for c in &new.client_ids {
            if !client_ids.contains(c) {
                client_ids.push(c.clone());
            }
        }
        let token_bytes: [u8; 32] = random_bytes()?;
        let token = URL_SAFE_NO_PAD.encode(token_bytes);
        let session = StoredSession {
            sid: *uuid::Builder::from_random_bytes(random_bytes()?)
                .into_uuid()
                .as_bytes(),
            subject_id: new.subject_id.clone(),
            display_name: new.display_name.clone().filter(|n| !n.trim().is_empty()),
            created_ms: now_ms,
            last_access_ms: now_ms,
            idle_expires_ms: now_ms.saturating_add(settings.idle_timeout_secs as i64 * 1000),
            expires_ms: now_ms.saturating_add(settings.absolute_lifetime_secs as i64 * 1000),
            client_ids,
            properties: new.properties.clone(),
            ip: new.ip.clone(),
            user_agent: new.user_agent.clone(),
            token_hash: Sha256::digest(token.as_bytes()).into(),
        };
        let mut evicted = false;
        let inserted = self.insert_within_quota(&realm, &session, &mut evicted, now);
        if evicted {
            // An eviction is a revocation: on disk, with its notifications, before any answer.
            self.wait_durable()?;
        }
        inserted?;
        self.changes.realm_changed(&realm.name);
        Ok(CreatedSession {
            session: session.to_session(&realm.name),
            token,
        })
    }

    fn validate(
        &self,
        realm: &str,
        token: &str,
        refresh: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>> {
        let realm = self.realm(realm)?;
        let now_ms = now.timestamp_millis();
        let Some(s) = self.resolve_token(&realm, token, now_ms)? else {
            return Ok(None);
        };
        let interval_ms = realm.settings.latest_access_update_interval_secs as i64 * 1000;
        if !refresh || now_ms - s.last_access_ms < interval_ms {
            return Ok(Some(s.to_session(&realm.name)));
        }
        let idle_ms = realm.settings.idle_timeout_secs as i64 * 1000;
        let refreshed = self.modify(realm.id, &s.sid, |old| {
            if !old.is_valid_at(now_ms) || now_ms - old.last_access_ms < interval_ms {
                return Ok(None);
            }
            Ok(Some(StoredSession {
                last_access_ms: now_ms,
                idle_expires_ms: now_ms.saturating_add(idle_ms),
                ..old.clone()
            }))
        })?;
        Ok(refreshed
            .filter(|s| s.is_valid_at(now_ms))
            .map(|s| s.to_session(&realm.name)))
    }

    fn logout(&self, realm: &str, token: &str, now: DateTime<Utc>) -> Result<bool> {
        let realm = self.realm(realm)?;
        // An expired session the reaper has not ended yet still has grants and clients to end.
        let Some(s) = self.token_session(&realm, token)? else {
            return Ok(false);
        };
        let mut outcome = RemoveOutcome::default();
        self.end_sessions(
            &realm,
            &[s],
            &Flags::everything("logout"),
            &mut outcome,
            now,
        )?;
        self.wait_durable()?;
        Ok(outcome.sessions_removed > 0)
    }

    fn add_client(&self, realm: &str, sid: &str, client_id: &str) -> Result<Session> {
        let realm = self.realm(realm)?;
        validate::identifier("client_id", client_id)?;
        let not_found = || SessionError::SessionNotFound(sid.to_owned());
        let sid_bytes = parse_sid(sid).ok_or_else(not_found)?;
        let updated = self.modify(realm.id, &sid_bytes, |old| {
            if old.client_ids.iter().any(|c| c == client_id) {
                return Ok(None);
            }
            if old.client_ids.len() >= 64 {
                return Err(SessionError::invalid(
                    "a session may name at most 64 client_ids",
                ));
            }
            let mut new = old.clone();
            new.client_ids.push(client_id.to_owned());
            Ok(Some(new))
        })?;
        updated
            .map(|s| s.to_session(&realm.name))
            .ok_or_else(not_found)
    }

    fn get_session(&self, realm: &str, sid: &str) -> Result<Session> {
        let realm = self.realm(realm)?;
        parse_sid(sid)
            .map(|b| self.load(realm.id, &b))
            .transpose()?
            .flatten()
            .map(|s| s.to_session(&realm.name))
            .ok_or_else(|| SessionError::SessionNotFound(sid.to_owned()))
    }

    fn get_properties(
        &self,
        realm: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>> {
        let realm = self.realm(realm)?;
        let s = self
            .resolve_token(&realm, token, now.timestamp_millis())?
            .ok_or_else(|| SessionError::SessionNotFound("(token)".into()))?;
        let allowed = &realm.settings.property_whitelist;
        Ok(s.properties
            .into_iter()
            .filter(|(k, _)| allowed.contains(k))
            .collect())
    }

    fn set_properties(
        &self,
        realm: &str,
        token: &str,
        properties: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>> {
        let realm = self.realm(realm)?;
        let allowed = &realm.settings.property_whitelist;
        for (k, v) in properties {
            validate::identifier("property name", k)?;
            validate::text("property value", v)?;
            if !allowed.contains(k) {
                return Err(SessionError::PropertyNotAllowed(k.clone()));
            }
        }
        let now_ms = now.timestamp_millis();
        let not_found = || SessionError::SessionNotFound("(token)".into());
        let s = self
            .resolve_token(&realm, token, now_ms)?
            .ok_or_else(not_found)?;
        let updated = self.modify(realm.id, &s.sid, |old| {
            let mut new = old.clone();
            for (k, v) in properties {
                if v.is_empty() {
                    new.properties.remove(k);
                } else {
                    new.properties.insert(k.clone(), v.clone());
                }
            }
            if new.properties.len() > 64 {
                return Err(SessionError::invalid(
                    "a session may carry at most 64 properties",
                ));
            }
            Ok(Some(new))
        })?;
        let s = updated.ok_or_else(not_found)?;
        Ok(s.properties
            .into_iter()
            .filter(|(k, _)| allowed.contains(k))
            .collect())
    }

    fn query(&self, realm: &str, query: &SessionQuery) -> Result<QueryResult> {
        let realm = self.realm(realm)?;
        self.run_query(&realm, query)
    }

    fn remove(
        &self,
        realm: &str,
        request: &RemoveSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<RemoveOutcome> {
        let realm = self.realm(realm)?;
        check_reason(request.reason.as_deref())?;
        if request.ip.is_some()
            || request.created_after.is_some()
            || request.created_before.is_some()
        {
            return Err(SessionError::invalid(
                "the ip, created_after and created_before filters need storage layout 2 or later",
            ));
        }
        // Ids are exact: a blank one would otherwise select nothing or, as a filter, everything.
        for (field, value) in [("subject_id", &request.subject_id), ("sid", &request.sid)] {
            if let Some(v) = value {
                validate::not_blank(field, v)?;
            }
        }
        for sid in &request.sids {
            validate::not_blank("sids entry", sid)?;
            validate::text("sids entry", sid)?;
        }
        let has_filter = request.subject_id.is_some() || request.sid.is_some();
        if request.sids.is_empty() && !has_filter {
            return Err(SessionError::invalid(
                "name the sessions to remove with sids, subject_id or sid; to end every session of the realm use logout-all",
            ));
        }
        if !request.sids.is_empty() && has_filter {
            return Err(SessionError::invalid(
                "give either sids or a subject_id/sid filter, not both",
            ));
        }
        if request.sids.len() > MAX_SELECTED_SIDS {
            return Err(SessionError::invalid(format!(
                "at most {MAX_SELECTED_SIDS} sids per request"
            )));
        }
        let flags = Flags {
            remove_server_side_session: request.remove_server_side_session,
            revoke_tokens: request.revoke_tokens,
            revoke_consents: request.revoke_consents,
            notify: request.send_backchannel_logout,
            client_scope: client_scope(request.client_ids.as_deref())?,
            reason: "revoked",
            expired_at: None,
        };
        let mut outcome = RemoveOutcome {
            dry_run: request.dry_run,
            ..Default::default()
        };
        let mut targets = Vec::new();
        if !request.sids.is_empty() {
            // A session named twice (in any case) counts once, as does the same unknown text.
            let mut seen_sids = HashSet::new();
            let mut seen_unknown = HashSet::new();
            for sid in &request.sids {
                let first = match parse_sid(sid) {
                    Some(b) => seen_sids.insert(b).then_some(Some(b)),
                    None => seen_unknown.insert(sid.as_str()).then_some(None),
                };
                let Some(parsed) = first else { continue };
                match parsed
                    .map(|b| self.load(realm.id, &b))
                    .transpose()?
                    .flatten()
                {
                    Some(s) => targets.push(s),
                    None => outcome.not_found.push(sid.clone()),
                }
            }
        } else {
            let filter = SessionQuery {
                subject_id: request.subject_id.clone(),
                sid: request.sid.clone(),
                ..Default::default()
            };
            validate::query_filters(&filter)?;
            targets = self.matching_sessions(&realm, &filter)?;
        }
        outcome.removed = targets.iter().map(|s| sid_to_string(&s.sid)).collect();
        let ended = self
            .end_sessions(&realm, &targets, &flags, &mut outcome, now)
            .and_then(|()| match (&request.subject_id, &request.sid) {
                // A subject's tokens issued under no session (offline refresh tokens) belong to
                // none of its sessions; a removal of the subject takes them too.
                (Some(subject), None) if flags.revoke_tokens => self.revoke_subject_grants_where(
                    realm.id,
                    subject,
                    outcome.dry_run,
                    &mut outcome.tokens_revoked,
                    |g| g.sid.is_none() && g.kind.is_token() && flags.in_scope(&g.client_id),
                ),
                _ => Ok(()),
            });
        let target = if request.sids.is_empty() {
            format!(
                "subject_id={} sid={}",
                request.subject_id.as_deref().unwrap_or("*"),
                request.sid.as_deref().unwrap_or("*")
            )
        } else {
            format!("{} selected sessions", request.sids.len())
        };
        let entry = removal_entry(
            &realm,
            "remove_sessions",
            target,
            &request.reason,
            actor,
            now,
        );
        self.finish_removal(&outcome, entry, ended)?;
        Ok(outcome)
    }

    fn remove_all(
        &self,
        realm: &str,
        request: &RemoveAllSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<RemoveOutcome> {
        let realm = self.realm(realm)?;
        check_reason(request.reason.as_deref())?;
        let flags = Flags {
            remove_server_side_session: request.remove_server_side_session,
            revoke_tokens: request.revoke_tokens,
            revoke_consents: request.revoke_consents,
            notify: request.send_backchannel_logout,
            client_scope: None,
            reason: "realm_sign_out",
            expired_at: None,
        };
        let mut outcome = RemoveOutcome {
            dry_run: request.dry_run,
            ..Default::default()
        };
        let ended = self.end_realm(&realm, &flags, &mut outcome, now);
        let entry = removal_entry(
            &realm,
            "remove_all_sessions",
            realm.name.clone(),
            &request.reason,
            actor,
            now,
        );
        self.finish_removal(&outcome, entry, ended)?;
        Ok(outcome)
    }

    fn reap_expired(&self, now: DateTime<Utc>, batch: usize) -> Result<usize> {
        let now_ms = now.timestamp_millis();
        let mut removed = 0;
        let realms = self.realms.load();
        for realm in realms.values() {
            let start = keys::realm_prefix(realm.id);
            let end = keys::sort_key(realm.id, now_ms, &[0xff; 16]);
            let mut expired = Vec::new();
            for item in self
                .trees
                .by_expiry
                .range(&start[..]..&end[..])
                .take(batch - removed)
            {
                let (_, sid) = keys::split_time_sid(&item?.0);
                expired.extend(self.load(realm.id, &sid)?);
            }
            // The session's tokens go with it; consents belong to the subject and stay.
            let flags = Flags {
                remove_server_side_session: true,
                revoke_tokens: true,
                revoke_consents: false,
                notify: realm.settings.backchannel_logout_on_expiry,
                client_scope: None,
                reason: "expired",
                expired_at: Some(now_ms),
            };
            let mut outcome = RemoveOutcome::default();
            self.end_sessions(realm, &expired, &flags, &mut outcome, now)?;
            removed += outcome.sessions_removed as usize;
            removed += self.reap_expired_grants(realm.id, now_ms, batch - removed)?;
            if removed >= batch {
                break;
            }
        }
        Ok(removed)
    }

    fn durable_flushes(&self) -> u64 {
        self.commit.flush_count()
    }

    fn changes(&self) -> &ChangeFeed {
        &self.changes
    }

    fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.audit(entry)?;
        self.wait_durable()
    }

    fn audit_log(&self, before: Option<u64>, count: usize) -> Result<Vec<(u64, AuditEntry)>> {
        let end = before.unwrap_or(u64::MAX);
        self.trees
            .audit
            .range(..end.to_be_bytes())
            .rev()
            .take(count)
            .map(|item| {
                let (k, v) = item?;
                let id = u64::from_be_bytes(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| SessionError::Storage("bad audit key".into()))?,
                );
                let entry = serde_json::from_slice(&v)
                    .map_err(|e| SessionError::Storage(format!("corrupt audit entry: {e}")))?;
                Ok((id, entry))
            })
            .collect()
    }

    fn create_grant(&self, realm: &str, new: &NewGrant, now: DateTime<Utc>) -> Result<Grant> {
        let realm = self.realm(realm)?;
        validate::new_grant(new, now)?;
        let max_lifetime_ms = realm.settings.max_grant_lifetime_secs as i64 * 1000;
        let latest_expiry_ms = now.timestamp_millis().saturating_add(max_lifetime_ms);
        let sid = match &new.sid {
            Some(s) => Some(parse_sid(s).ok_or_else(|| SessionError::SessionNotFound(s.clone()))?),
            None => None,
        };
        let grant = StoredGrant {
            id: *uuid::Builder::from_random_bytes(random_bytes()?)
                .into_uuid()
                .as_bytes(),
            kind: new.kind,
            subject_id: new.subject_id.clone(),
            sid,
            client_id: new.client_id.clone(),
            scopes: new.scopes.clone(),
            created_ms: now.timestamp_millis(),
            expires_ms: new.expires_at.timestamp_millis().min(latest_expiry_ms),
            token_hash: new
                .token
                .as_ref()
                .map(|t| Sha256::digest(t.as_bytes()).into()),
        };
        self.transact_grants(|sessions, gtx| {
            if let Some(sid) = &grant.sid {
                let abort = |e| Err(ConflictableTransactionError::Abort(e));
                let Some(v) = sessions.get(&keys::session_key(realm.id, sid)[..])? else {
                    return abort(SessionError::SessionNotFound(sid_to_string(sid)));
                };
                let session =
                    StoredSession::decode(&v).map_err(ConflictableTransactionError::Abort)?;
                if session.subject_id != grant.subject_id {
                    return abort(SessionError::invalid(
                        "the session named by sid belongs to another subject",
                    ));
                }
            }
            if let Some(h) = &grant.token_hash {
                if gtx.tokens.get(&h[..])?.is_some() {
                    return Err(ConflictableTransactionError::Abort(SessionError::Conflict(
                        "this token is already recorded".into(),
                    )));
                }
            }
            gtx.insert(realm.id, &grant)
        })?;
        Ok(grant.to_grant(&realm.name))
    }

    fn introspect(&self, realm: &str, token: &str, now: DateTime<Utc>) -> Result<Option<Grant>> {
        let realm = self.realm(realm)?;
        let now_ms = now.timestamp_millis();
        Ok(self
            .token_grant(&realm, token)?
            .filter(|g| g.expires_ms > now_ms)
            .map(|g| g.to_grant(&realm.name)))
    }

    fn revoke_token(
        &self,
        realm: &str,
        token: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Grant>> {
        let realm = self.realm(realm)?;
        let now_ms = now.timestamp_millis();
        let Some(found) = self.token_grant(&realm, token)? else {
            return Ok(None);
        };
        let revoked =
            self.transact_grants(|sessions, gtx| match gtx.load(realm.id, &found.id)? {
                Some(g) if g.expires_ms > now_ms => delete_grant(sessions, gtx, realm.id, &g.id),
                // Expired (the reaper's), or revoked meanwhile.
                _ => Ok(false),
            })?;
        if !revoked {
            return Ok(None);
        }
        let grant = found.to_grant(&realm.name);
        let entry = AuditEntry {
            outcome: format!(
                "revoked {} of subject {} for client {}",
                grant.kind.as_str(),
                grant.subject_id,
                grant.client_id
            ),
            ..audit_entry(&realm, "revoke_token", &grant.grant_id, actor, now)
        };
        self.audit(&entry)?;
        self.wait_durable()?;
        Ok(Some(grant))
    }

    fn revoke_subject_grants(
        &self,
        realm: &str,
        subject_id: &str,
        client_ids: Option<&[String]>,
        reason: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let realm = self.realm(realm)?;
        validate::not_blank("subject_id", subject_id)?;
        validate::identifier("subject_id", subject_id)?;
        check_reason(reason)?;
        let scope = client_scope(client_ids)?;
        let mut revoked = 0;
        let done =
            self.revoke_subject_grants_where(realm.id, subject_id, false, &mut revoked, |g| {
                in_scope(&scope, &g.client_id)
            });
        let within = match &scope {
            Some(clients) => format!(
                " (clients {})",
                clients.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            None => String::new(),
        };
        let entry = AuditEntry {
            reason: reason.map(str::to_owned),
            outcome: match &done {
                Ok(()) => format!("grants revoked: {revoked}{within}"),
                Err(e) => {
                    format!("stopped part way: {e}; before that, grants revoked: {revoked}{within}")
                }
            },
            ..audit_entry(&realm, "revoke_subject_grants", subject_id, actor, now)
        };
        self.audit(&entry)?;
        self.wait_durable()?;
        done.map(|()| revoked)
    }

    fn list_grants(
        &self,
        realm: &str,
        owner: &GrantOwner,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>> {
        let realm = self.realm(realm)?;
        let prefix = match owner {
            GrantOwner::Subject(subject) => {
                validate::identifier("subject_id", subject)?;
                grants::subject_prefix(realm.id, subject)
            }
            GrantOwner::Session(sid) => {
                let sid =
                    parse_sid(sid).ok_or_else(|| SessionError::SessionNotFound(sid.clone()))?;
                grants::session_prefix(realm.id, &sid).to_vec()
            }
        };
        let now_ms = now.timestamp_millis();
        Ok(self
            .grants_under(realm.id, &prefix)?
            .into_iter()
            .filter(|g| g.expires_ms > now_ms)
            .take(MAX_LISTED_GRANTS)
            .map(|g| g.to_grant(&realm.name))
            .collect())
    }

    fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        per_client: usize,
        cursor: &mut DueCursor,
        skip: &dyn Fn(&str, &str, u64) -> bool,
    ) -> Result<Vec<Delivery>> {
        let mut out = Vec::new();
        if limit == 0 || per_client == 0 {
            return Ok(out);
        }
        let names: HashMap<RealmId, Arc<RealmEntry>> = self
            .realms
            .load()
            .values()
            .map(|r| (r.id, r.clone()))
            .collect();
        let now_ms = now.timestamp_millis();
        // The queues after the cursor's, then from the first up to and including the cursor's.
        let last_turn = std::mem::take(&mut cursor.0);
        let mut wrapped = last_turn.is_empty();
        let mut next = if wrapped {
            outbox::queues_start()
        } else {
            outbox::after_queue(&last_turn)
        };
        loop {
            let first = self.trees.outbox_index.range(next.as_slice()..).next();
            let first = first.transpose()?.map(|(k, _)| k);
            let Some(queue) = first.as_deref().and_then(outbox::QueueEntry::parse) else {
                if wrapped {
                    break;
                }
                wrapped = true;
                next = outbox::queues_start();
                continue;
            };
            let prefix = outbox::queue_prefix(queue.realm, queue.client_id);
            if wrapped && !last_turn.is_empty() && prefix > last_turn {
                break;
            }
            next = outbox::after_queue(&prefix);
            // A queue's first entry is its earliest: a queue waiting out a backoff costs one seek.
            if queue.due_ms > now_ms {
                continue;
            }
            let Some(realm) = names.get(&queue.realm) else {
                continue;
            };
            let client = String::from_utf8_lossy(queue.client_id);
            let (start, end) = outbox::due_in_queue(&prefix, now_ms);
            for item in self.trees.outbox_index.range(start..end).take(per_client) {
                let (k, _) = item?;
                let Some(entry) = outbox::QueueEntry::parse(&k) else {
                    continue;
                };
                if skip(&realm.name, &client, entry.id) {
                    continue;
                }
                let key = outbox::delivery_key(entry.realm, entry.id);
                let Some(v) = self.trees.outbox.get(key)? else {
                    continue;
                };
                // The entry may have been read just before an attempt's result replaced it.
                let d = outbox::decode(&v)?;
                if d.status == DeliveryStatus::Pending
                    && d.next_attempt_at.is_some_and(|t| t <= now)
                {
                    out.push(d);
                    if out.len() >= limit {
                        cursor.0 = prefix;
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    fn record_attempt(
        &self,
        attempted: &Delivery,
        jti: &str,
        result: &AttemptResult,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        let realm = self.realm(&attempted.realm)?;
        let id = attempted.id;
        self.transact_all(|_, _, otx| {
            let Some(old) = otx.load(realm.id, id)? else {
                return Err(ConflictableTransactionError::Abort(
                    SessionError::DeliveryNotFound(id),
                ));
            };
            // "Retry now" during the attempt opened a new window: the attempt belonged to the old
            // one, so a failure keeps the delivery due as "retry now" asked.
            let requeued = old.retry_window_start != attempted.retry_window_start;
            let mut new = Delivery {
                attempts: old.attempts + 1,
                window_attempts: old.window_attempts + u32::from(!requeued),
                last_attempt_at: Some(now),
                last_jti: Some(jti.to_owned()),
                ..old.clone()
            };
            match result {
                AttemptResult::Delivered => {
                    new.status = DeliveryStatus::Delivered;
                    new.delivered_at = Some(now);
                    new.next_attempt_at = None;
                    new.last_error = None;
                }
                AttemptResult::Retry { error, .. } | AttemptResult::GiveUp { error }
                    if requeued =>
                {
                    new.last_error = Some(error.clone());
                }
                AttemptResult::Retry { at, error } => {
                    new.status = DeliveryStatus::Pending;
                    new.next_attempt_at = Some(*at);
                    new.last_error = Some(error.clone());
                }
                AttemptResult::GiveUp { error } => {
                    new.status = DeliveryStatus::Failed;
                    new.next_attempt_at = None;
                    new.last_error = Some(error.clone());
                }
            }
            otx.update(realm.id, &old, &new)?;
            Ok(new)
        })
    }

    fn retry_delivery(
        &self,
        realm: &str,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        let realm = self.realm(realm)?;
        let delivery = self.transact_all(|_, _, otx| {
            let abort = |e| Err(ConflictableTransactionError::Abort(e));
            let Some(old) = otx.load(realm.id, id)? else {
                return abort(SessionError::DeliveryNotFound(id));
            };
            if old.status == DeliveryStatus::Delivered {
                return abort(SessionError::Conflict(format!(
                    "delivery {id} was already delivered"
                )));
            }
            let new = Delivery {
                status: DeliveryStatus::Pending,
                next_attempt_at: Some(now),
                retry_window_start: now,
                window_attempts: 0,
                ..old.clone()
            };
            otx.update(realm.id, &old, &new)?;
            Ok(new)
        })?;
        let entry = AuditEntry {
            outcome: "queued".into(),
            ..audit_entry(&realm, "retry_delivery", &id.to_string(), actor, now)
        };
        self.audit(&entry)?;
        self.wait_durable()?;
        Ok(delivery)
    }

    fn purge_delivered(&self, cutoff: DateTime<Utc>, batch: usize) -> Result<usize> {
        let mut purged = 0;
        let realms = self.realms.load();
        for realm in realms.values() {
            let prefix = outbox::status_prefix(realm.id, DeliveryStatus::Delivered);
            // Ids grow with queueing time, so the oldest delivered ones come first.
            let mut old = Vec::new();
            for item in self.trees.outbox_index.scan_prefix(&prefix) {
                let (k, _) = item?;
                let id = u64::from_be_bytes(k[k.len() - 8..].try_into().expect("8 bytes"));
                let Some(v) = self.trees.outbox.get(outbox::delivery_key(realm.id, id))? else {
                    continue;
                };
                let d = outbox::decode(&v)?;
                if d.created_at >= cutoff || purged + old.len() >= batch {
                    break;
                }
                old.push(d);
            }
            for d in &old {
                self.transact_all(|_, _, otx| match otx.load(realm.id, d.id)? {
                    Some(cur) if cur.status == DeliveryStatus::Delivered => {
                        otx.delete(realm.id, &cur)
                    }
                    _ => Ok(()),
                })?;
            }
            purged += old.len();
            if purged >= batch {
                break;
            }
        }
        Ok(purged)
    }

    fn list_deliveries(
        &self,
        realm: &str,
        status: Option<DeliveryStatus>,
        before: Option<u64>,
        count: usize,
    ) -> Result<DeliveryPage> {
        let realm = self.realm(realm)?;
        let count = count.clamp(1, MAX_LISTED_DELIVERIES);
        let end = before.unwrap_or(u64::MAX);
        let mut deliveries = Vec::with_capacity(count + 1);
        match status {
            Some(status) => {
                let prefix = outbox::status_prefix(realm.id, status);
                let end_key = [&prefix[..], &end.to_be_bytes()].concat();
                for item in self.trees.outbox_index.range(prefix.clone()..end_key).rev() {
                    let (k, _) = item?;
                    let id = u64::from_be_bytes(k[k.len() - 8..].try_into().expect("8 bytes"));
                    if let Some(v) = self.trees.outbox.get(outbox::delivery_key(realm.id, id))? {
                        deliveries.push(outbox::decode(&v)?);
                    }
                    if deliveries.len() > count {
                        break;
                    }
                }
            }
            None => {
                let start = outbox::delivery_key(realm.id, 0);
                let end_key = outbox::delivery_key(realm.id, end);
                for item in self
                    .trees
                    .outbox
                    .range(start..end_key)
                    .rev()
                    .take(count + 1)
                {
                    deliveries.push(outbox::decode(&item?.1)?);
                }
            }
        }
        let next_before = (deliveries.len() > count).then(|| {
            deliveries.truncate(count);
            deliveries.last().map(|d| d.id)
        });
        let counter = |s| -> Result<u64> {
            Ok(keys::counter_value(
                self.trees
                    .outbox_index
                    .get(outbox::count_key(realm.id, s))?
                    .as_deref(),
            ))
        };
        Ok(DeliveryPage {
            deliveries,
            counts: DeliveryCounts {
                pending: counter(DeliveryStatus::Pending)?,
                delivered: counter(DeliveryStatus::Delivered)?,
                failed: counter(DeliveryStatus::Failed)?,
            },
            next_before: next_before.flatten(),
        })
    }
}
