//! The operations of [`SessionStore`] on the v2 layout: each one batch (or a few, for large
//! removals), built under the striped locks, applied with its counter journal entry.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::super::grants::StoredGrant;
use super::super::keys::{RealmId, Sid};
use super::super::outbox;
use super::super::record::{from_ms, parse_sid, sid_to_string, StoredSession};
use super::super::shared::{
    offline_tokens_subject, removal_flags, removal_outcome, removal_target, remove_all_flags,
    revoked_grants_outcome,
};
use super::super::sled_store::{
    audit_entry, check_reason, client_scope, decode_registration, in_scope, new_delivery,
    random_bytes, removal_entry, Flags, RealmEntry, GRANT_DELETE_BATCH, MAX_EVICTION_ATTEMPTS,
    MAX_LISTED_GRANTS, MAX_TOKEN_LEN, REMOVE_ALL_BATCH,
};
use super::super::{ChangeFeed, DueCursor, SessionStore};
use super::counts::{self, Deltas};
use super::{grant_entries, layout, same_hash, session_lock, sha256, Batch, SledStoreV2};
use crate::delivery::{AttemptResult, Delivery, DeliveryCounts, DeliveryPage, DeliveryStatus};
use crate::error::{Result, SessionError};
use crate::grant::{Grant, GrantKind, GrantOwner, NewGrant};
use crate::model::{
    AuditEntry, Client, ClientRegistration, CreatedSession, NewSession, QueryResult, QuotaPolicy,
    Realm, RealmSettings, RealmSettingsUpdate, RemoveAllSessions, RemoveOutcome, RemoveSessions,
    Session, SessionQuery,
};
use crate::stats::{self, DeliveryOutcome, EndReason, Metric, Span, StatsBucket};
use crate::validate;

/// Sessions ended per batch: sled applies a batch under a lock that keeps every reader out, so
/// a batch of 64 (about 5 ms) rather than hundreds keeps validations flowing during removals.
const END_BATCH: usize = 64;

/// Largest page of deliveries.
use super::super::sled_store::MAX_LISTED_DELIVERIES;

impl SledStoreV2 {
    fn client_view(&self, realm: RealmId, client_id: &str, r: ClientRegistration) -> Client {
        Client {
            client_id: client_id.to_owned(),
            name: r.name,
            backchannel_logout_uri: r.backchannel_logout_uri,
            backchannel_logout_session_required: r.backchannel_logout_session_required,
            session_count: self.counter(&counts::key(realm, counts::CLIENT, client_id.as_bytes())),
        }
    }

    fn realm_view(&self, e: &RealmEntry) -> Realm {
        Realm {
            name: e.name.clone(),
            settings: e.settings.clone(),
            created_at: from_ms(e.created_ms),
            session_count: self.counter(&counts::key(e.id, counts::TOTAL, &[])),
        }
    }

    /// Appends an entry to the audit log (made durable by the caller's commit).
    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        let id = self.next_id()?;
        let value = serde_json::to_vec(entry).map_err(|e| SessionError::Storage(e.to_string()))?;
        self.tree.insert(layout::audit_key(id), value)?;
        Ok(())
    }

    /// The session a secret token belongs to, if it is in this realm, valid or not.
    fn token_session(&self, realm: &RealmEntry, token: &str) -> Result<Option<StoredSession>> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        let Ok(raw) = URL_SAFE_NO_PAD.decode(token) else {
            return Ok(None);
        };
        match raw.len() {
            // sid ‖ secret: one point read.
            48 => {
                let sid: Sid = raw[..16].try_into().expect("16 bytes");
                let hash = sha256(&raw[16..]);
                Ok(self
                    .load(realm.id, &sid)?
                    .filter(|s| same_hash(&s.token_hash, &hash)))
            }
            // A token of the previous layout: 32 random bytes, found by its hash.
            32 => {
                let hash = sha256(token.as_bytes());
                let Some(v) = self.tree.get(layout::legacy_token_key(&hash))? else {
                    return Ok(None);
                };
                if v.len() != 28 || v[..4] != realm.id.to_be_bytes() {
                    return Ok(None);
                }
                let created = i64::from_be_bytes(v[4..12].try_into().expect("8"));
                let sid: Sid = v[12..].try_into().expect("16");
                Ok(self
                    .load_at(realm.id, created, &sid)?
                    .filter(|s| same_hash(&s.token_hash, &hash)))
            }
            _ => Ok(None),
        }
    }

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

    /// The grant a token belongs to, if it is in this realm, expired or not.
    fn token_grant(&self, realm: &RealmEntry, token: &str) -> Result<Option<StoredGrant>> {
        if token.is_empty() || token.len() > validate::MAX_GRANT_TOKEN_LEN {
            return Ok(None);
        }
        let Some(v) = self
            .tree
            .get(layout::grant_token_key(&sha256(token.as_bytes())))?
        else {
            return Ok(None);
        };
        if v.len() != 20 || v[..4] != realm.id.to_be_bytes() {
            return Ok(None);
        }
        self.load_grant(realm.id, &v[4..].try_into().expect("16"))
    }

    /// Applies `change` to a stored session under its lock, in one batch; answers the new
    /// version.
    fn modify(
        &self,
        realm: RealmId,
        sid: &Sid,
        change: impl Fn(&StoredSession) -> Result<Option<StoredSession>>,
    ) -> Result<Option<StoredSession>> {
        let _lock = self.sessions.lock(&session_lock(realm, sid));
        let Some(old) = self.load(realm, sid)? else {
            return Ok(None);
        };
        match change(&old)? {
            Some(new) => {
                let mut batch = Batch::default();
                let mut deltas = Deltas::default();
                self.replace_session(&mut batch, &mut deltas, realm, &old, &new)?;
                self.write(batch, &deltas)?;
                Ok(Some(new))
            }
            None => Ok(Some(old)),
        }
    }

    /// The oldest session of a subject, if any.
    fn oldest_of_subject(&self, realm: RealmId, subject: &str) -> Result<Option<StoredSession>> {
        let prefix = layout::attr_prefix(realm, layout::SUBJECT, subject.as_bytes());
        match self.tree.scan_prefix(&prefix).keys().next() {
            Some(k) => {
                let (created, sid) = layout::split_time_sid(&k?);
                self.load_at(realm, created, &sid)
            }
            None => Ok(None),
        }
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
        let mut batch = Batch::default();
        let mut deltas = Deltas::default();
        self.put_session(&mut batch, &mut deltas, realm.id, session)?;
        deltas.stat(realm.id, now, Metric::SignIns, 1);
        let Some(max) = realm.settings.max_sessions_per_subject.map(u64::from) else {
            return self.write(batch, &deltas);
        };
        let subject = &session.subject_id;
        let subject_key = counts::key(realm.id, counts::SUBJECT, subject.as_bytes());
        let _subject = self.subjects.lock(&subject_key);
        for attempt in 0.. {
            if self.counter(&subject_key) < max {
                return self.write(batch, &deltas);
            }
            match realm.settings.quota_policy {
                QuotaPolicy::Deny => return Err(SessionError::QuotaExceeded(subject.clone())),
                QuotaPolicy::EvictOldest if attempt >= MAX_EVICTION_ATTEMPTS => {
                    return Err(SessionError::QuotaExceeded(subject.clone()))
                }
                QuotaPolicy::EvictOldest => {
                    if let Some(s) = self.oldest_of_subject(realm.id, subject)? {
                        let flags = Flags::everything(EndReason::Evicted);
                        let mut outcome = RemoveOutcome::default();
                        let ended = self.end_sessions(realm, &[s], &flags, &mut outcome, now);
                        *evicted |= outcome.sessions_removed > 0;
                        ended?;
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// Ends the given sessions: the one path every removal, logout, sign-out, eviction and expiry
    /// takes. Up to [`END_BATCH`] sessions at a time, one batch removes the records with their
    /// index entries, the revoked grants, and queues the logout notifications, so for each
    /// session either all of it happened or none of it did.
    pub(super) fn end_sessions(
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
        let notify = |session: &StoredSession| -> Vec<(String, String)> {
            session
                .client_ids
                .iter()
                .filter(|c| flags.in_scope(c))
                .filter_map(|c| uris.get(c).map(|u| (c.clone(), u.clone())))
                .collect()
        };
        let mut clients = HashSet::new();
        let mut consents_seen = HashSet::new();
        for s in targets {
            clients.extend(s.client_ids.iter().filter(|c| flags.in_scope(c)).cloned());
        }
        if outcome.dry_run {
            for s in targets {
                outcome.sessions_removed += u64::from(flags.remove_server_side_session);
                if flags.revoke_tokens {
                    outcome.tokens_revoked +=
                        self.session_tokens(realm.id, &s.sid, flags)?.len() as u64;
                }
                if flags.revoke_consents && consents_seen.insert(s.subject_id.clone()) {
                    outcome.consents_revoked +=
                        self.consents_of(realm.id, &s.subject_id, flags)?.len() as u64;
                }
                outcome.clients_notified += notify(s).len() as u64;
            }
            outcome.clients_affected += clients.len() as u64;
            return Ok(());
        }
        for chunk in targets.chunks(END_BATCH) {
            let _sessions = self
                .sessions
                .lock_all(chunk.iter().map(|s| session_lock(realm.id, &s.sid)));
            // As the locks see them: gone ones (ended meanwhile) and, for the reaper, valid ones
            // (refreshed meanwhile) are passed over.
            let mut current = Vec::with_capacity(chunk.len());
            for s in chunk {
                let Some(cur) = self.load_at(realm.id, s.created_ms, &s.sid)? else {
                    continue;
                };
                if flags.expired_at.is_some_and(|at| cur.is_valid_at(at)) {
                    continue;
                }
                // No grant can be added under a session while its lock is held, so this list is
                // complete. A subject's consents go once per request, with its first session.
                let tokens = if flags.revoke_tokens {
                    self.session_tokens(realm.id, &cur.sid, flags)?
                } else {
                    Vec::new()
                };
                let consents =
                    if flags.revoke_consents && consents_seen.insert(cur.subject_id.clone()) {
                        self.consents_of(realm.id, &cur.subject_id, flags)?
                    } else {
                        Vec::new()
                    };
                current.push((cur, tokens, consents));
            }
            let _grants = self.grants.lock_all(
                current
                    .iter()
                    .flat_map(|(_, t, c)| t.iter().chain(c.iter()))
                    .copied(),
            );
            let mut batch = Batch::default();
            let mut deltas = Deltas::default();
            let mut done = RemoveOutcome::default();
            for (cur, tokens, consents) in &current {
                if flags.remove_server_side_session {
                    Self::delete_session(&mut batch, &mut deltas, realm.id, cur);
                    done.sessions_removed += 1;
                }
                for id in tokens {
                    if let Some(g) = self.load_grant(realm.id, id)? {
                        delete_grant(&mut batch, realm.id, &g);
                        done.tokens_revoked += 1;
                    }
                }
                for id in consents {
                    if let Some(g) = self.load_grant(realm.id, id)? {
                        delete_grant(&mut batch, realm.id, &g);
                        done.consents_revoked += 1;
                    }
                }
                for (client_id, uri) in &notify(cur) {
                    let delivery = new_delivery(
                        self.next_id()?,
                        realm,
                        cur,
                        client_id,
                        uri,
                        flags.reason.as_str(),
                        now,
                    );
                    put_delivery(&mut batch, &mut deltas, realm.id, &delivery);
                    done.clients_notified += 1;
                }
            }
            if done.sessions_removed > 0 {
                deltas.stat(
                    realm.id,
                    now,
                    Metric::Ended(flags.reason),
                    done.sessions_removed,
                );
            }
            self.write(batch, &deltas)?;
            if done.sessions_removed > 0 {
                self.changes.realm_changed(&realm.name);
            }
            outcome.sessions_removed += done.sessions_removed;
            outcome.tokens_revoked += done.tokens_revoked;
            outcome.consents_revoked += done.consents_revoked;
            outcome.clients_notified += done.clients_notified;
        }
        outcome.clients_affected += clients.len() as u64;
        Ok(())
    }

    /// Back-channel logout URI of every client of the realm that has one.
    fn backchannel_uris(&self, realm: RealmId) -> Result<HashMap<String, String>> {
        let prefix = layout::prefix(realm, layout::CLIENT_REG);
        let mut out = HashMap::new();
        for item in self.tree.scan_prefix(prefix) {
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

    /// The session's token grants within the flags' client scope.
    fn session_tokens(&self, realm: RealmId, sid: &Sid, flags: &Flags) -> Result<Vec<[u8; 16]>> {
        Ok(self
            .grants_under(realm, &layout::grant_session_prefix(realm, sid))?
            .into_iter()
            .filter(|g| g.kind.is_token() && flags.in_scope(&g.client_id))
            .map(|g| g.id)
            .collect())
    }

    /// The subject's consents within the flags' client scope.
    fn consents_of(&self, realm: RealmId, subject: &str, flags: &Flags) -> Result<Vec<[u8; 16]>> {
        Ok(self
            .grants_under(realm, &layout::grant_subject_prefix(realm, subject))?
            .into_iter()
            .filter(|g| g.kind == GrantKind::Consent && flags.in_scope(&g.client_id))
            .map(|g| g.id)
            .collect())
    }

    /// Deletes grants under their locks, in batches of [`GRANT_DELETE_BATCH`], adding to
    /// `deleted` as each batch is applied. Grants already gone (or that `keep` keeps, as they
    /// are now) are passed over.
    fn delete_grants(
        &self,
        realm: RealmId,
        ids: &[[u8; 16]],
        deleted: &mut u64,
        keep: impl Fn(&StoredGrant) -> bool,
    ) -> Result<()> {
        for chunk in ids.chunks(GRANT_DELETE_BATCH) {
            let _locks = self.grants.lock_all(chunk.iter());
            let mut batch = Batch::default();
            let mut n = 0;
            for id in chunk {
                if let Some(g) = self.load_grant(realm, id)? {
                    if !keep(&g) {
                        delete_grant(&mut batch, realm, &g);
                        n += 1;
                    }
                }
            }
            self.write(batch, &Deltas::default())?;
            *deleted += n;
        }
        Ok(())
    }

    /// Removes up to `batch` grants that expired before `now_ms`; answers how many.
    fn reap_expired_grants(&self, realm: RealmId, now_ms: i64, batch: usize) -> Result<usize> {
        let start = layout::grant_expiry_prefix(realm);
        let end = [&start[..], &layout::time(now_ms)].concat();
        let ids: Vec<[u8; 16]> = self
            .tree
            .range(start..end)
            .keys()
            .take(batch)
            .map(|k| k.map(|k| k[k.len() - 16..].try_into().expect("16 bytes")))
            .collect::<std::result::Result<_, _>>()?;
        let mut removed = 0;
        self.delete_grants(realm, &ids, &mut removed, |g| g.expires_ms >= now_ms)?;
        Ok(removed as usize)
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
        let prefix = layout::grant_subject_prefix(realm, subject);
        let mut after: Option<sled::IVec> = None;
        loop {
            let lower = match &after {
                Some(k) => std::ops::Bound::Excluded(k.clone()),
                None => std::ops::Bound::Included(sled::IVec::from(&prefix[..])),
            };
            let mut batch = Vec::with_capacity(GRANT_DELETE_BATCH);
            for k in self.tree.range((lower, std::ops::Bound::Unbounded)).keys() {
                let k = k?;
                if !k.starts_with(&prefix) {
                    break;
                }
                let id: [u8; 16] = k[k.len() - 16..].try_into().expect("16 bytes");
                after = Some(k);
                if let Some(g) = self.load_grant(realm, &id)? {
                    if select(&g) {
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
                self.delete_grants(realm, &batch, revoked, |g| !select(g))?;
            }
        }
    }

    /// Records a removal in the audit log and waits until it is on disk, also when `ended` says
    /// it stopped part way. A dry run leaves no trace.
    fn finish_removal(
        &self,
        outcome: &RemoveOutcome,
        mut entry: AuditEntry,
        ended: Result<()>,
    ) -> Result<()> {
        if outcome.dry_run {
            return ended;
        }
        entry.outcome = removal_outcome(outcome, &ended);
        self.audit(&entry)?;
        self.wait_durable()?;
        ended
    }

    /// Ends every session of the realm, in batches along the records (creation order).
    fn end_realm(
        &self,
        realm: &RealmEntry,
        flags: &Flags,
        outcome: &mut RemoveOutcome,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let prefix = layout::prefix(realm.id, layout::RECORD);
        let mut after: Option<sled::IVec> = None;
        loop {
            let lower = match &after {
                Some(k) => std::ops::Bound::Excluded(k.clone()),
                None => std::ops::Bound::Included(sled::IVec::from(&prefix[..])),
            };
            let mut batch = Vec::with_capacity(REMOVE_ALL_BATCH);
            for item in self.tree.range((lower, std::ops::Bound::Unbounded)) {
                let (k, v) = item?;
                if !k.starts_with(&prefix) {
                    break;
                }
                let (created, sid) = layout::split_time_sid(&k);
                batch.push(self.decode(created, &sid, &v)?);
                after = Some(k);
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

    fn load_delivery(&self, realm: RealmId, id: u64) -> Result<Option<Delivery>> {
        match self.tree.get(layout::delivery_key(realm, id))? {
            Some(v) => Ok(Some(outbox::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Replaces a delivery under its lock with what `change` makes of it; with `attempt_at`, the
    /// change is an attempt made then, counted in the activity stats by its outcome.
    fn modify_delivery(
        &self,
        realm: RealmId,
        id: u64,
        attempt_at: Option<DateTime<Utc>>,
        change: impl Fn(&Delivery) -> Result<Delivery>,
    ) -> Result<Delivery> {
        let _lock = self.deliveries.lock(&layout::delivery_key(realm, id));
        let old = self
            .load_delivery(realm, id)?
            .ok_or(SessionError::DeliveryNotFound(id))?;
        let new = change(&old)?;
        let mut batch = Batch::default();
        let mut deltas = Deltas::default();
        for k in delivery_index(realm, &old) {
            batch.remove(k);
        }
        put_delivery_record(&mut batch, realm, &new);
        if old.status != new.status {
            deltas.counter(counts::deliveries_key(realm, old.status), -1);
            deltas.counter(counts::deliveries_key(realm, new.status), 1);
        }
        if let Some(at) = attempt_at {
            let outcome = DeliveryOutcome::after_attempt(new.status);
            deltas.stat(realm, at, Metric::Delivery(outcome), 1);
        }
        self.write(batch, &deltas)?;
        Ok(new)
    }
}

/// Removes a grant with its index entries in a batch.
fn delete_grant(batch: &mut Batch, realm: RealmId, g: &StoredGrant) {
    batch.remove(&layout::grant_key(realm, &g.id)[..]);
    for (k, _) in grant_entries(realm, g) {
        batch.remove(k);
    }
}

/// Key of a delivery's status entry.
fn status_key(realm: RealmId, status: DeliveryStatus, id: u64) -> Vec<u8> {
    let mut k = layout::prefix(realm, layout::DELIVERY_STATUS).to_vec();
    k.push(counts::status_byte(status));
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Prefix of a realm's status entries of one status.
fn status_prefix(realm: RealmId, status: DeliveryStatus) -> Vec<u8> {
    let mut k = layout::prefix(realm, layout::DELIVERY_STATUS).to_vec();
    k.push(counts::status_byte(status));
    k
}

/// Prefix of one client's queue: realm 0, `Q`, then the queue prefix of the previous layout.
fn queue_prefix(realm: RealmId, client_id: &[u8]) -> Vec<u8> {
    [
        &layout::GLOBAL.to_be_bytes()[..],
        &outbox::queue_prefix(realm, client_id),
    ]
    .concat()
}

/// The index entries a delivery in its state has.
pub(super) fn delivery_index(realm: RealmId, d: &Delivery) -> Vec<Vec<u8>> {
    let mut out = vec![status_key(realm, d.status, d.id)];
    if let (DeliveryStatus::Pending, Some(at)) = (d.status, d.next_attempt_at) {
        let mut k = queue_prefix(realm, d.client_id.as_bytes());
        k.extend_from_slice(&layout::time(at.timestamp_millis()));
        k.extend_from_slice(&d.id.to_be_bytes());
        out.push(k);
    }
    out
}

fn put_delivery_record(batch: &mut Batch, realm: RealmId, d: &Delivery) {
    batch.insert(&layout::delivery_key(realm, d.id)[..], outbox::encode(d));
    for k in delivery_index(realm, d) {
        batch.insert(k, &[][..]);
    }
}

/// Queues a new delivery in a batch.
fn put_delivery(batch: &mut Batch, deltas: &mut Deltas, realm: RealmId, d: &Delivery) {
    put_delivery_record(batch, realm, d);
    deltas.counter(counts::deliveries_key(realm, d.status), 1);
}

impl SessionStore for SledStoreV2 {
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
                id: u32::try_from(self.next_id()? + 1)
                    .map_err(|_| SessionError::Storage("realm ids exhausted".into()))?,
                name: name.to_owned(),
                settings: update.apply_to(&RealmSettings::default()),
                created_ms: now.timestamp_millis(),
            },
        };
        validate::realm_settings(&entry.settings)?;
        let value = serde_json::to_vec(&entry).map_err(|e| SessionError::Storage(e.to_string()))?;
        self.tree.insert(layout::realm_key(name), value)?;
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
        Ok(self.realm_view(&entry))
    }

    fn get_realm(&self, name: &str) -> Result<Realm> {
        Ok(self.realm_view(&*self.realm(name)?))
    }

    fn list_realms(&self) -> Result<Vec<Realm>> {
        let realms = self.realms.load();
        let mut out: Vec<Realm> = realms.values().map(|e| self.realm_view(e)).collect();
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
            .tree
            .insert(layout::client_reg_key(realm.id, client_id), value)?
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
        Ok(self.client_view(realm.id, client_id, registration.clone()))
    }

    fn get_client(&self, realm: &str, client_id: &str) -> Result<Client> {
        let realm = self.realm(realm)?;
        let value = self
            .tree
            .get(layout::client_reg_key(realm.id, client_id))?
            .ok_or_else(|| SessionError::ClientNotFound(client_id.to_owned()))?;
        Ok(self.client_view(realm.id, client_id, decode_registration(&value)?))
    }

    fn list_clients(&self, realm: &str) -> Result<Vec<Client>> {
        let realm = self.realm(realm)?;
        let prefix = layout::prefix(realm.id, layout::CLIENT_REG);
        self.tree
            .scan_prefix(prefix)
            .map(|item| {
                let (k, v) = item?;
                let client_id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                Ok(self.client_view(realm.id, &client_id, decode_registration(&v)?))
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
            .tree
            .remove(layout::client_reg_key(realm.id, client_id))?
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
        let random: [u8; 42] = random_bytes()?;
        // A time-ordered sid; a time outside its 48 bits gets a random one (kept beside it).
        let sid =
            layout::new_sid(now_ms, random[..10].try_into().expect("10")).unwrap_or_else(|| {
                *uuid::Builder::from_random_bytes(random[..16].try_into().expect("16"))
                    .into_uuid()
                    .as_bytes()
            });
        let secret = &random[10..];
        let token = URL_SAFE_NO_PAD.encode([&sid[..], secret].concat());
        let session = StoredSession {
            sid,
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
            token_hash: sha256(secret),
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
            return Ok(Some(
                realm.settings.as_seen_by_holder(s.to_session(&realm.name)),
            ));
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
            .map(|s| realm.settings.as_seen_by_holder(s.to_session(&realm.name))))
    }

    fn logout(&self, realm: &str, token: &str, now: DateTime<Utc>) -> Result<bool> {
        let realm = self.realm(realm)?;
        let Some(s) = self.token_session(&realm, token)? else {
            return Ok(false);
        };
        let mut outcome = RemoveOutcome::default();
        self.end_sessions(
            &realm,
            &[s],
            &Flags::everything(EndReason::Logout),
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
        Ok(realm.settings.holder_properties(s.properties))
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
        self.run_query(&realm, query, true)
    }

    fn query_uncounted(&self, realm: &str, query: &SessionQuery) -> Result<QueryResult> {
        let realm = self.realm(realm)?;
        self.run_query(&realm, query, false)
    }

    fn remove(
        &self,
        realm: &str,
        request: &RemoveSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<RemoveOutcome> {
        let realm = self.realm(realm)?;
        let (flags, filter) = removal_flags(request)?;
        let mut outcome = RemoveOutcome {
            dry_run: request.dry_run,
            ..Default::default()
        };
        let mut targets = Vec::new();
        if !request.sids.is_empty() {
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
        } else if let Some(filter) = &filter {
            targets = self.matching_sessions(&realm, filter)?;
        }
        outcome.removed = targets.iter().map(|s| sid_to_string(&s.sid)).collect();
        let ended = self
            .end_sessions(&realm, &targets, &flags, &mut outcome, now)
            .and_then(|()| match offline_tokens_subject(filter.as_ref()) {
                Some(subject) if flags.revoke_tokens => self.revoke_subject_grants_where(
                    realm.id,
                    subject,
                    outcome.dry_run,
                    &mut outcome.tokens_revoked,
                    |g| g.sid.is_none() && g.kind.is_token() && flags.in_scope(&g.client_id),
                ),
                _ => Ok(()),
            });
        let target = removal_target(filter.as_ref(), request);
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
        let flags = remove_all_flags(request)?;
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
            let start = layout::prefix(realm.id, layout::EXPIRY);
            let end = layout::timed_key(realm.id, layout::EXPIRY, now_ms, &[0xff; 16]);
            let mut expired = Vec::new();
            for item in self.tree.range(&start[..]..&end[..]).take(batch - removed) {
                let (k, v) = item?;
                let (_, sid) = layout::split_time_sid(&k);
                let created = super::query::locator_created(&sid, &v)?;
                expired.extend(self.load_at(realm.id, created, &sid)?);
            }
            let flags = Flags {
                remove_server_side_session: true,
                revoke_tokens: true,
                revoke_consents: false,
                notify: realm.settings.backchannel_logout_on_expiry,
                client_scope: None,
                reason: EndReason::Expired,
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

    fn stats(
        &self,
        realm: &str,
        span: Span,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatsBucket>> {
        let realm = self.realm(realm)?;
        let (first, last) = (span.bucket_of(from), span.bucket_of(to));
        let low = counts::stats_key(realm.id, span, first, Metric::SignIns);
        let high = counts::stats_key(realm.id, span, last.saturating_add(1), Metric::SignIns);
        let rows = self
            .counters
            .series(&low[..low.len() - 1], &high[..high.len() - 1])
            .into_iter()
            .filter_map(|(k, n)| counts::parse_stats_key(&k, n).map(|(_, row)| row));
        Ok(stats::assemble(span, from, to, rows))
    }

    fn prune_stats(&self, now: DateTime<Utc>) -> Result<usize> {
        let mut deltas = Deltas::default();
        let mut pruned = 0;
        for (k, n) in self.counters.series(&[], &[0xff; 5]) {
            if let Some((_, row)) = counts::parse_stats_key(&k, n) {
                if row.bucket < row.span.oldest_kept(now) {
                    deltas.counter(k, -n);
                    pruned += 1;
                }
            }
        }
        if pruned > 0 {
            self.write(Batch::default(), &deltas)?;
        }
        Ok(pruned)
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
        self.tree
            .range(layout::audit_key(0)..layout::audit_key(end))
            .rev()
            .take(count)
            .map(|item| {
                let (k, v) = item?;
                let id = u64::from_be_bytes(
                    k[5..]
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
            token_hash: new.token.as_ref().map(|t| sha256(t.as_bytes())),
        };
        // The session stays as it is (not ended) until the grant is stored under it.
        let _session = grant
            .sid
            .as_ref()
            .map(|sid| self.sessions.lock(&session_lock(realm.id, sid)));
        if let Some(sid) = &grant.sid {
            let Some(session) = self.load(realm.id, sid)? else {
                return Err(SessionError::SessionNotFound(sid_to_string(sid)));
            };
            if session.subject_id != grant.subject_id {
                return Err(SessionError::invalid(
                    "the session named by sid belongs to another subject",
                ));
            }
        }
        let mut lock_keys = vec![grant.id.to_vec()];
        lock_keys.extend(grant.token_hash.map(|h| h.to_vec()));
        let _grant = self.grants.lock_all(lock_keys);
        if let Some(h) = &grant.token_hash {
            if self.tree.contains_key(layout::grant_token_key(h))? {
                return Err(SessionError::Conflict(
                    "this token is already recorded".into(),
                ));
            }
        }
        let mut batch = Batch::default();
        batch.insert(&layout::grant_key(realm.id, &grant.id)[..], grant.encode());
        for (k, v) in grant_entries(realm.id, &grant) {
            batch.insert(k, v);
        }
        self.write(batch, &Deltas::default())?;
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
        let mut revoked = 0;
        // Expired (the reaper's), or revoked meanwhile: nothing to do.
        self.delete_grants(realm.id, &[found.id], &mut revoked, |g| {
            g.expires_ms <= now_ms
        })?;
        if revoked == 0 {
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
        let entry = AuditEntry {
            reason: reason.map(str::to_owned),
            outcome: revoked_grants_outcome(revoked, &scope, &done),
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
                layout::grant_subject_prefix(realm.id, subject)
            }
            GrantOwner::Session(sid) => {
                let sid =
                    parse_sid(sid).ok_or_else(|| SessionError::SessionNotFound(sid.clone()))?;
                layout::grant_session_prefix(realm.id, &sid)
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
        let start = layout::prefix(layout::GLOBAL, layout::QUEUE).to_vec();
        let last_turn = std::mem::take(&mut cursor.0);
        let mut wrapped = last_turn.is_empty();
        let mut next = if wrapped {
            start.clone()
        } else {
            outbox::after_queue(&last_turn)
        };
        loop {
            let first = self.tree.range(next.as_slice()..).keys().next();
            let first = first.transpose()?;
            let queue = first
                .as_deref()
                .filter(|k| k.starts_with(&start))
                .and_then(|k| outbox::QueueEntry::parse(&k[4..]));
            let Some(queue) = queue else {
                if wrapped {
                    break;
                }
                wrapped = true;
                next = start.clone();
                continue;
            };
            let prefix = queue_prefix(queue.realm, queue.client_id);
            if wrapped && !last_turn.is_empty() && prefix > last_turn {
                break;
            }
            next = outbox::after_queue(&prefix);
            if queue.due_ms > now_ms {
                continue;
            }
            let Some(realm) = names.get(&queue.realm) else {
                continue;
            };
            let client = String::from_utf8_lossy(queue.client_id).into_owned();
            let (from, to) = outbox::due_in_queue(&prefix, now_ms);
            for k in self.tree.range(from..to).keys().take(per_client) {
                let k = k?;
                let Some(entry) = outbox::QueueEntry::parse(&k[4..]) else {
                    continue;
                };
                if skip(&realm.name, &client, entry.id) {
                    continue;
                }
                let Some(d) = self.load_delivery(entry.realm, entry.id)? else {
                    continue;
                };
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
        self.modify_delivery(realm.id, attempted.id, Some(now), |old| {
            Ok(old.after_attempt(attempted, jti, result, now))
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
        let delivery = self.modify_delivery(realm.id, id, None, |old| old.requeued(now))?;
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
            let prefix = status_prefix(realm.id, DeliveryStatus::Delivered);
            let mut old = Vec::new();
            for k in self.tree.scan_prefix(&prefix).keys() {
                let k = k?;
                let id = u64::from_be_bytes(k[k.len() - 8..].try_into().expect("8 bytes"));
                let Some(d) = self.load_delivery(realm.id, id)? else {
                    continue;
                };
                if d.created_at >= cutoff || purged + old.len() >= batch {
                    break;
                }
                old.push(id);
            }
            let _locks = self
                .deliveries
                .lock_all(old.iter().map(|id| layout::delivery_key(realm.id, *id)));
            let mut b = Batch::default();
            let mut deltas = Deltas::default();
            for id in &old {
                if let Some(d) = self.load_delivery(realm.id, *id)? {
                    if d.status == DeliveryStatus::Delivered {
                        b.remove(&layout::delivery_key(realm.id, *id)[..]);
                        for k in delivery_index(realm.id, &d) {
                            b.remove(k);
                        }
                        deltas.counter(counts::deliveries_key(realm.id, d.status), -1);
                    }
                }
            }
            self.write(b, &deltas)?;
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
                let prefix = status_prefix(realm.id, status);
                let end_key = [&prefix[..], &end.to_be_bytes()].concat();
                for k in self.tree.range(prefix.clone()..end_key).keys().rev() {
                    let k = k?;
                    let id = u64::from_be_bytes(k[k.len() - 8..].try_into().expect("8 bytes"));
                    if let Some(d) = self.load_delivery(realm.id, id)? {
                        deliveries.push(d);
                    }
                    if deliveries.len() > count {
                        break;
                    }
                }
            }
            None => {
                let start = layout::delivery_key(realm.id, 0);
                let end_key = layout::delivery_key(realm.id, end);
                for item in self
                    .tree
                    .range(start..end_key)
                    .values()
                    .rev()
                    .take(count + 1)
                {
                    deliveries.push(outbox::decode(&item?)?);
                }
            }
        }
        let next_before = (deliveries.len() > count).then(|| {
            deliveries.truncate(count);
            deliveries.last().map(|d| d.id)
        });
        let counter = |s| self.counter(&counts::deliveries_key(realm.id, s));
        Ok(DeliveryPage {
            deliveries,
            counts: DeliveryCounts {
                pending: counter(DeliveryStatus::Pending),
                delivered: counter(DeliveryStatus::Delivered),
                failed: counter(DeliveryStatus::Failed),
            },
            next_before: next_before.flatten(),
        })
    }
}
