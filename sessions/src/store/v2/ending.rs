//! Ending sessions, the one path every removal, logout, realm sign-out, eviction and expiry
//! takes ([`SledStoreV2::end_each`]): a batch at a time, the records go with their index
//! entries and counts, their token grants (and their subjects' consents) are revoked and their
//! logout notifications queued, so for each session either all of it happened or none of it did.
//! The striped session locks keep a refresh or a new grant from slipping in meanwhile.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use chrono::{DateTime, Utc};

use super::super::keys::{RealmId, Sid};
use super::super::record::{parse_sid, sid_to_string, StoredSession};
use super::super::rules::{end_all_entry, end_entry, end_outcome, Flags, REMOVE_ALL_BATCH};
use super::super::shared::{end_all_flags, end_flags, offline_tokens_subject};
use super::commit::Batch;
use super::counters::Deltas;
use super::ended::{put_ended, EndedRecord};
use super::grants::delete_grant;
use super::layout::{GrantIndexKey, SessionKey, TimeIndex, Timeline};
use super::locks::session_lock;
use super::outbox::{new_delivery, put_delivery};
use super::realms::RealmEntry;
use super::SledStoreV2;
use crate::error::Result;
use crate::grant::GrantKind;
use crate::model::{AuditEntry, EndAllSessions, EndOutcome, EndSessions};
use crate::signal::ending_targets;
use crate::stats::Metric;

/// Sessions ended per batch: sled applies a batch under a lock that keeps every reader out, so
/// a batch of 64 (about 5 ms) rather than hundreds keeps validations flowing during removals.
const END_BATCH: usize = 64;

impl SledStoreV2 {
    /// Ends the given sessions: the one path every removal, logout, sign-out, eviction and expiry
    /// takes. Up to [`END_BATCH`] sessions at a time, one batch removes the records with their
    /// index entries, the revoked grants, and queues the logout notifications, so for each
    /// session either all of it happened or none of it did.
    pub(super) fn end_each(
        &self,
        realm: &RealmEntry,
        targets: &[StoredSession],
        flags: &Flags,
        outcome: &mut EndOutcome,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let uris = if flags.notify {
            self.backchannel_uris(realm.id)?
        } else {
            HashMap::new()
        };
        // Shared Signals streams hear of every ended session, whatever the flags say.
        let streams = if flags.remove_server_side_session {
            self.streams()?
        } else {
            Vec::new()
        };
        let signals: Vec<(String, String)> = ending_targets(&streams, &realm.name).collect();
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
                outcome.records_deleted += u64::from(flags.remove_server_side_session);
                if flags.revoke_tokens {
                    outcome.tokens_revoked +=
                        self.session_tokens(realm.id, &s.sid, flags)?.len() as u64;
                }
                if flags.revoke_consents && consents_seen.insert(s.subject_id.clone()) {
                    outcome.consents_revoked +=
                        self.consents_of(realm.id, &s.subject_id, flags)?.len() as u64;
                }
                outcome.clients_notified += notify(s).len() as u64;
                outcome.signals_queued += signals.len() as u64;
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
            let mut done = EndOutcome::default();
            for (cur, tokens, consents) in &current {
                if flags.remove_server_side_session {
                    Self::delete_session(&mut batch, &mut deltas, realm.id, cur);
                    done.records_deleted += 1;
                }
                let mut queued = Vec::new();
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
                    queued.push((client_id.clone(), delivery.id));
                    done.clients_notified += 1;
                }
                for (client_id, target) in &signals {
                    let delivery = new_delivery(
                        self.next_id()?,
                        realm,
                        cur,
                        client_id,
                        target,
                        flags.reason.as_str(),
                        now,
                    );
                    put_delivery(&mut batch, &mut deltas, realm.id, &delivery);
                    done.signals_queued += 1;
                }
                if flags.remove_server_side_session {
                    let rec = EndedRecord::of(cur, flags.reason, flags.by.as_ref(), &queued);
                    put_ended(&mut batch, &mut deltas, realm.id, cur, &rec, now)?;
                }
            }
            if done.records_deleted > 0 {
                deltas.stat(
                    realm.id,
                    now,
                    Metric::Ended(flags.reason),
                    done.records_deleted,
                );
            }
            self.write(batch, &deltas)?;
            if done.records_deleted > 0 {
                self.changes.realm_changed(&realm.name);
            }
            outcome.records_deleted += done.records_deleted;
            outcome.tokens_revoked += done.tokens_revoked;
            outcome.consents_revoked += done.consents_revoked;
            outcome.clients_notified += done.clients_notified;
            outcome.signals_queued += done.signals_queued;
        }
        outcome.clients_affected += clients.len() as u64;
        Ok(())
    }

    /// The session's token grants within the flags' client scope.
    fn session_tokens(&self, realm: RealmId, sid: &Sid, flags: &Flags) -> Result<Vec<[u8; 16]>> {
        Ok(self
            .grants_under(realm, &GrantIndexKey::session_prefix(realm, sid))?
            .into_iter()
            .filter(|g| g.kind.is_token() && flags.in_scope(&g.client_id))
            .map(|g| g.id)
            .collect())
    }

    /// The subject's consents within the flags' client scope.
    fn consents_of(&self, realm: RealmId, subject: &str, flags: &Flags) -> Result<Vec<[u8; 16]>> {
        Ok(self
            .grants_under(realm, &GrantIndexKey::subject_prefix(realm, subject))?
            .into_iter()
            .filter(|g| g.kind == GrantKind::Consent && flags.in_scope(&g.client_id))
            .map(|g| g.id)
            .collect())
    }

    /// Records a removal in the audit log and waits until it is on disk, also when `ended` says
    /// it stopped part way. A dry run leaves no trace.
    fn finish_ending(
        &self,
        outcome: &EndOutcome,
        mut entry: AuditEntry,
        ended: Result<()>,
    ) -> Result<()> {
        if outcome.dry_run {
            return ended;
        }
        entry.outcome = end_outcome(outcome, &ended);
        self.audit(&entry)?;
        self.wait_durable()?;
        ended
    }

    /// Ends every session of the realm, in batches along the records (creation order).
    fn end_realm(
        &self,
        realm: &RealmEntry,
        flags: &Flags,
        outcome: &mut EndOutcome,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let prefix = SessionKey::prefix(realm.id);
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
                // A record key of another length is no session's (`check` reports it).
                if let Some(key) = SessionKey::decode(&k) {
                    batch.push(self.decode(key.created_ms, &key.sid, &v)?);
                }
                after = Some(k);
                if batch.len() == REMOVE_ALL_BATCH {
                    break;
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            self.end_each(realm, &batch, flags, outcome, now)?;
        }
    }

    pub(super) fn end_sessions_impl(
        &self,
        realm: &str,
        request: &EndSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<EndOutcome> {
        let realm = self.realm(realm)?;
        let (flags, filter) = end_flags(request, actor)?;
        let mut outcome = EndOutcome {
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
        outcome.ended = targets.iter().map(|s| sid_to_string(&s.sid)).collect();
        let ended = self
            .end_each(&realm, &targets, &flags, &mut outcome, now)
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
        let entry = end_entry(&realm.name, request, filter.as_ref(), actor, now);
        self.finish_ending(&outcome, entry, ended)?;
        Ok(outcome)
    }

    pub(super) fn end_all_sessions_impl(
        &self,
        realm: &str,
        request: &EndAllSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<EndOutcome> {
        let realm = self.realm(realm)?;
        let flags = end_all_flags(request, actor)?;
        let mut outcome = EndOutcome {
            dry_run: request.dry_run,
            ..Default::default()
        };
        let ended = self.end_realm(&realm, &flags, &mut outcome, now);
        let entry = end_all_entry(&realm.name, request, actor, now);
        self.finish_ending(&outcome, entry, ended)?;
        Ok(outcome)
    }

    pub(super) fn reap_expired_impl(&self, now: DateTime<Utc>, batch: usize) -> Result<usize> {
        let now_ms = now.timestamp_millis();
        let mut removed = 0;
        let realms = self.realms.load();
        for realm in realms.values() {
            let expiry = Timeline::index(realm.id, TimeIndex::Expiry);
            let (start, _) = expiry.all();
            let end = Bound::Excluded(expiry.key(now_ms, &[0xff; 16]));
            let mut expired = Vec::new();
            for item in self.tree.range((start, end)).take(batch - removed) {
                let (k, v) = item?;
                let Some((_, sid)) = expiry.position(&k) else {
                    continue;
                };
                let created = super::query::locator_created(&sid, &v)?;
                expired.extend(self.load_at(realm.id, created, &sid)?);
            }
            let flags = Flags::expiry(&realm.settings, now);
            let mut outcome = EndOutcome::default();
            self.end_each(realm, &expired, &flags, &mut outcome, now)?;
            removed += outcome.records_deleted as usize;
            removed += self.reap_expired_grants(realm.id, now_ms, batch - removed)?;
            if removed >= batch {
                break;
            }
        }
        Ok(removed)
    }
}
