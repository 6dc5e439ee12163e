//! A session's life: creation within its subject's quota, validation (one point read of the
//! record the token names), refresh, properties, clients, logout; and how a session is written
//! (its record and every index entry it implies, added, replaced or deleted in a batch).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::super::keys::{RealmId, Sid};
use super::super::record::{parse_sid, words, StoredSession};
use super::super::rules::{random_bytes, Flags, MAX_EVICTION_ATTEMPTS, MAX_TOKEN_LEN};
use super::commit::Batch;
use super::counters::Deltas;
use super::layout::{self, AddressKey, Attr, AttrKey, Counter, LegacySidKey, LegacyTokenKey};
use super::layout::{SessionKey, SessionLocator, TimeIndex, TimeIndexKey, Timeline, WordKey};
use super::locks::session_lock;
use super::realms::RealmEntry;
use super::{record, same_hash, sha256, SledStoreV2};
use crate::address::address_bytes;
use crate::error::{Result, SessionError};
use crate::model::{CreatedSession, EndOutcome, NewSession, QuotaPolicy, Session};
use crate::network::{LastAddress, Network};
use crate::stats::{EndReason, Metric};
use crate::validate;

impl SledStoreV2 {
    /// The creation time of a session: from its sid, or for a migrated sid from beside it.
    fn created_of(&self, realm: RealmId, sid: &Sid) -> Result<Option<i64>> {
        if let Some(ms) = layout::created_of_sid(sid) {
            return Ok(Some(ms));
        }
        let key = LegacySidKey { realm, sid: *sid };
        Ok(self
            .tree
            .get(key.encode())?
            .and_then(|v| layout::created_from_value(&v)))
    }

    pub(super) fn load(&self, realm: RealmId, sid: &Sid) -> Result<Option<StoredSession>> {
        match self.created_of(realm, sid)? {
            Some(created) => self.load_at(realm, created, sid),
            None => Ok(None),
        }
    }

    pub(super) fn load_at(
        &self,
        realm: RealmId,
        created: i64,
        sid: &Sid,
    ) -> Result<Option<StoredSession>> {
        let key = SessionKey {
            realm,
            created_ms: created,
            sid: *sid,
        };
        match self.tree.get(key.encode())? {
            Some(v) => Ok(Some(record::decode(created, sid, &v, &self.interner)?)),
            None => Ok(None),
        }
    }

    pub(super) fn decode(&self, created: i64, sid: &Sid, v: &[u8]) -> Result<StoredSession> {
        record::decode(created, sid, v, &self.interner)
    }

    /// Adds a new session to a batch: record, index entries, and its counts to `deltas`.
    fn put_session(
        &self,
        batch: &mut Batch,
        deltas: &mut Deltas,
        realm: RealmId,
        s: &StoredSession,
    ) -> Result<()> {
        record::intern_all(s, &self.interner, &self.tree)?;
        batch.insert(
            &record_key(realm, s).encode(),
            record::encode(s, &self.interner),
        );
        for (k, v) in index_entries(realm, s) {
            batch.insert(k, v);
        }
        deltas.session(realm, s, true);
        Ok(())
    }

    /// Deletes a session in a batch: the exact inverse of [`Self::put_session`].
    pub(super) fn delete_session(
        batch: &mut Batch,
        deltas: &mut Deltas,
        realm: RealmId,
        s: &StoredSession,
    ) {
        batch.remove(&record_key(realm, s).encode());
        for (k, _) in index_entries(realm, s) {
            batch.remove(k);
        }
        deltas.session(realm, s, false);
    }

    /// Replaces a session's record in a batch, moving only the index entries that change.
    fn replace_session(
        &self,
        batch: &mut Batch,
        deltas: &mut Deltas,
        realm: RealmId,
        old: &StoredSession,
        new: &StoredSession,
    ) -> Result<()> {
        record::intern_all(new, &self.interner, &self.tree)?;
        batch.insert(
            &record_key(realm, new).encode(),
            record::encode(new, &self.interner),
        );
        let before = index_entries(realm, old);
        let after = index_entries(realm, new);
        for k in before.keys() {
            if !after.contains_key(k) {
                batch.remove(k.clone());
            }
        }
        for (k, v) in after {
            if before.get(&k) != Some(&v) {
                batch.insert(k, v);
            }
        }
        deltas.session_changed(realm, old, new);
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
            // A token of a session migrated from v1: 32 random bytes, found by its hash.
            32 => {
                let hash = sha256(token.as_bytes());
                let Some(v) = self.tree.get(LegacyTokenKey { hash }.encode())? else {
                    return Ok(None);
                };
                let Some(at) = SessionLocator::decode(&v).filter(|at| at.realm == realm.id) else {
                    return Ok(None);
                };
                Ok(self
                    .load_at(realm.id, at.created_ms, &at.sid)?
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
        let entries = Timeline::attr(realm, Attr::Subject, subject);
        match self.tree.range(entries.all()).keys().next() {
            Some(k) => {
                let k = k?;
                let (created, sid) = entries
                    .position(&k)
                    .ok_or_else(|| SessionError::Storage("bad subject index key".into()))?;
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
        let subject_key = Counter::Subject(subject).key(realm.id);
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
                        let mut outcome = EndOutcome::default();
                        let ended = self.end_each(realm, &[s], &flags, &mut outcome, now);
                        *evicted |= outcome.records_deleted > 0;
                        ended?;
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }

    pub(super) fn create_session_impl(
        &self,
        realm: &str,
        new: &NewSession,
        network: Option<Network>,
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
            network: network.filter(|n| !n.is_empty()),
            last: None,
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

    pub(super) fn validate_impl(
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

    pub(super) fn logout_impl(&self, realm: &str, token: &str, now: DateTime<Utc>) -> Result<bool> {
        let realm = self.realm(realm)?;
        let Some(s) = self.token_session(&realm, token)? else {
            return Ok(false);
        };
        let mut outcome = EndOutcome::default();
        self.end_each(
            &realm,
            &[s],
            &Flags::everything(EndReason::Logout),
            &mut outcome,
            now,
        )?;
        self.wait_durable()?;
        Ok(outcome.records_deleted > 0)
    }

    pub(super) fn add_client_impl(
        &self,
        realm: &str,
        sid: &str,
        client_id: &str,
    ) -> Result<Session> {
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

    pub(super) fn note_address_impl(
        &self,
        realm: &str,
        sid: &str,
        last: &LastAddress,
    ) -> Result<Option<Session>> {
        let realm = self.realm(realm)?;
        validate::text("ip", &last.ip)?;
        let Some(sid) = parse_sid(sid) else {
            return Ok(None);
        };
        let last = LastAddress {
            ip: last.ip.clone(),
            network: last.network.clone().filter(|n| !n.is_empty()),
        };
        let updated = self.modify(realm.id, &sid, |old| {
            Ok(old.moved_to(&last).then(|| {
                let mut new = old.clone();
                new.last = (new.ip.as_deref() != Some(&last.ip)).then(|| last.clone());
                new
            }))
        })?;
        Ok(updated.map(|s| realm.settings.as_seen_by_holder(s.to_session(&realm.name))))
    }

    pub(super) fn get_session_impl(&self, realm: &str, sid: &str) -> Result<Session> {
        let realm = self.realm(realm)?;
        parse_sid(sid)
            .map(|b| self.load(realm.id, &b))
            .transpose()?
            .flatten()
            .map(|s| s.to_session(&realm.name))
            .ok_or_else(|| SessionError::SessionNotFound(sid.to_owned()))
    }

    pub(super) fn get_properties_impl(
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

    pub(super) fn set_properties_impl(
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
}

/// The key of a stored session's record.
fn record_key(realm: RealmId, s: &StoredSession) -> SessionKey {
    SessionKey {
        realm,
        created_ms: s.created_ms,
        sid: s.sid,
    }
}

/// Every index entry (key → value) a stored session has besides its record.
pub(super) fn index_entries(realm: RealmId, s: &StoredSession) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let (created_ms, sid) = (s.created_ms, s.sid);
    let legacy = layout::created_of_sid(&sid) != Some(created_ms);
    let locator = if legacy {
        layout::created_value(created_ms).to_vec()
    } else {
        Vec::new()
    };
    for (index, ms) in [
        (TimeIndex::LastAccess, s.last_access_ms),
        (TimeIndex::Expiry, s.effective_expiry_ms()),
    ] {
        let key = TimeIndexKey {
            realm,
            index,
            ms,
            sid,
        };
        out.insert(key.encode().to_vec(), locator.clone());
    }
    let attr_key = |attr: Attr, value: &str| {
        AttrKey {
            realm,
            attr,
            value,
            created_ms,
            sid,
        }
        .encode()
    };
    out.insert(attr_key(Attr::Subject, &s.subject_id), Vec::new());
    for c in &s.client_ids {
        out.insert(attr_key(Attr::Client, c), Vec::new());
    }
    if let Some(address) = s.ip.as_deref().and_then(address_bytes) {
        let key = AddressKey {
            realm,
            address,
            created_ms,
            sid,
        };
        out.insert(key.encode().to_vec(), Vec::new());
    }
    if let Some(name) = &s.display_name {
        for word in words(name) {
            let key = WordKey {
                realm,
                word: &word,
                created_ms,
                sid,
            };
            out.insert(key.encode(), Vec::new());
        }
    }
    if legacy {
        out.insert(
            LegacySidKey { realm, sid }.encode().to_vec(),
            layout::created_value(created_ms).to_vec(),
        );
        let at = SessionLocator {
            realm,
            created_ms,
            sid,
        };
        out.insert(
            LegacyTokenKey { hash: s.token_hash }.encode().to_vec(),
            at.encode().to_vec(),
        );
    }
    out
}
