//! Grants (refresh tokens, reference access tokens, authorization codes, consents): one record
//! each (realm, `g`, id), index entries by subject, session and expiry (realm, `h`, ...), and for
//! a token its SHA-256 (realm 0, `t`), by which it is found.

use chrono::{DateTime, Utc};

use super::super::grants::StoredGrant;
use super::super::keys::RealmId;
use super::super::record::{parse_sid, sid_to_string};
use super::super::rules::{
    random_bytes, revoked_token_entry, RevokeSubjectGrants, GRANT_DELETE_BATCH, MAX_LISTED_GRANTS,
};
use super::commit::Batch;
use super::counters::Deltas;
use super::layout::{GrantIndex, GrantIndexKey, GrantKey, GrantLocator, GrantTokenKey};
use super::locks::session_lock;
use super::realms::RealmEntry;
use super::{sha256, SledStoreV2};
use crate::error::{Result, SessionError};
use crate::grant::{Grant, GrantOwner, NewGrant};
use crate::validate;

impl SledStoreV2 {
    /// The grants whose grant-index keys start with `prefix`.
    pub(super) fn grants_under(&self, realm: RealmId, prefix: &[u8]) -> Result<Vec<StoredGrant>> {
        let mut out = Vec::new();
        for k in self.tree.scan_prefix(prefix).keys() {
            let k = k?;
            let Some(entry) = GrantIndexKey::decode(&k) else {
                continue;
            };
            if let Some(g) = self.load_grant(realm, &entry.id)? {
                out.push(g);
            }
        }
        Ok(out)
    }

    pub(super) fn load_grant(&self, realm: RealmId, id: &[u8; 16]) -> Result<Option<StoredGrant>> {
        match self.tree.get(GrantKey { realm, id: *id }.encode())? {
            Some(v) => Ok(Some(StoredGrant::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// The grant a token belongs to, if it is in this realm, expired or not.
    fn token_grant(&self, realm: &RealmEntry, token: &str) -> Result<Option<StoredGrant>> {
        if token.is_empty() || token.len() > validate::MAX_GRANT_TOKEN_LEN {
            return Ok(None);
        }
        let hash = sha256(token.as_bytes());
        let Some(v) = self.tree.get(GrantTokenKey { hash }.encode())? else {
            return Ok(None);
        };
        match GrantLocator::decode(&v).filter(|at| at.realm == realm.id) {
            Some(at) => self.load_grant(realm.id, &at.id),
            None => Ok(None),
        }
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
    pub(super) fn reap_expired_grants(
        &self,
        realm: RealmId,
        now_ms: i64,
        batch: usize,
    ) -> Result<usize> {
        let mut ids = Vec::new();
        let expired = GrantIndexKey::expiring_before(realm, now_ms);
        for k in self.tree.range(expired).keys().take(batch) {
            ids.extend(GrantIndexKey::decode(&k?).map(|entry| entry.id));
        }
        let mut removed = 0;
        self.delete_grants(realm, &ids, &mut removed, |g| g.expires_ms >= now_ms)?;
        Ok(removed as usize)
    }

    /// Deletes (or, for a dry run, counts) the subject's grants that `select` picks, walking its
    /// grant index a batch at a time; adds them to `revoked` as each batch is done.
    pub(super) fn revoke_subject_grants_where(
        &self,
        realm: RealmId,
        subject: &str,
        dry_run: bool,
        revoked: &mut u64,
        select: impl Fn(&StoredGrant) -> bool,
    ) -> Result<()> {
        let prefix = GrantIndexKey::subject_prefix(realm, subject);
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
                let id = GrantIndexKey::decode(&k).map(|entry| entry.id);
                after = Some(k);
                let Some(id) = id else { continue };
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

    pub(super) fn create_grant_impl(
        &self,
        realm: &str,
        new: &NewGrant,
        now: DateTime<Utc>,
    ) -> Result<Grant> {
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
            if self
                .tree
                .contains_key(GrantTokenKey { hash: *h }.encode())?
            {
                return Err(SessionError::Conflict(
                    "this token is already recorded".into(),
                ));
            }
        }
        let mut batch = Batch::default();
        let key = GrantKey {
            realm: realm.id,
            id: grant.id,
        };
        batch.insert(&key.encode(), grant.encode());
        for (k, v) in grant_entries(realm.id, &grant) {
            batch.insert(k, v);
        }
        self.write(batch, &Deltas::default())?;
        Ok(grant.to_grant(&realm.name))
    }

    pub(super) fn introspect_impl(
        &self,
        realm: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Grant>> {
        let realm = self.realm(realm)?;
        let now_ms = now.timestamp_millis();
        Ok(self
            .token_grant(&realm, token)?
            .filter(|g| g.expires_ms > now_ms)
            .map(|g| g.to_grant(&realm.name)))
    }

    pub(super) fn revoke_token_impl(
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
        self.audit(&revoked_token_entry(&realm.name, &grant, actor, now))?;
        self.wait_durable()?;
        Ok(Some(grant))
    }

    pub(super) fn revoke_subject_grants_impl(
        &self,
        realm: &str,
        subject_id: &str,
        client_ids: Option<&[String]>,
        reason: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let realm = self.realm(realm)?;
        let request = RevokeSubjectGrants::check(subject_id, client_ids, reason)?;
        let mut revoked = 0;
        let done =
            self.revoke_subject_grants_where(realm.id, subject_id, false, &mut revoked, |g| {
                request.in_scope(&g.client_id)
            });
        self.audit(&request.audit_entry(&realm.name, revoked, &done, actor, now))?;
        self.wait_durable()?;
        done.map(|()| revoked)
    }

    pub(super) fn list_grants_impl(
        &self,
        realm: &str,
        owner: &GrantOwner,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>> {
        let realm = self.realm(realm)?;
        let prefix = match owner {
            GrantOwner::Subject(subject) => {
                validate::identifier("subject_id", subject)?;
                GrantIndexKey::subject_prefix(realm.id, subject)
            }
            GrantOwner::Session(sid) => {
                let sid =
                    parse_sid(sid).ok_or_else(|| SessionError::SessionNotFound(sid.clone()))?;
                GrantIndexKey::session_prefix(realm.id, &sid)
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
}

/// Removes a grant with its index entries in a batch.
pub(super) fn delete_grant(batch: &mut Batch, realm: RealmId, g: &StoredGrant) {
    batch.remove(&GrantKey { realm, id: g.id }.encode());
    for (k, _) in grant_entries(realm, g) {
        batch.remove(k);
    }
}

/// Every index entry a grant has (key → value) besides its record.
pub(super) fn grant_entries(realm: RealmId, g: &StoredGrant) -> Vec<(Vec<u8>, Vec<u8>)> {
    let entry = |by| {
        GrantIndexKey {
            realm,
            by,
            id: g.id,
        }
        .encode()
    };
    let mut out = vec![
        (entry(GrantIndex::Subject(&g.subject_id)), Vec::new()),
        (entry(GrantIndex::Expiry(g.expires_ms)), Vec::new()),
    ];
    if let Some(sid) = g.sid {
        out.push((entry(GrantIndex::Session(sid)), Vec::new()));
    }
    if let Some(hash) = g.token_hash {
        let at = GrantLocator { realm, id: g.id };
        out.push((
            GrantTokenKey { hash }.encode().to_vec(),
            at.encode().to_vec(),
        ));
    }
    out
}
