//! The rules both backends apply the same way, written once: limits, what ending sessions does
//! ([`Flags`], the reaper's included), the checks of requests, and the audit entries of
//! administrative actions with their outcome texts. Re-exported through [`super::shared`].

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::error::{Result, SessionError};
use crate::grant::Grant;
use crate::model::{
    AuditEntry, EndAllSessions, EndOutcome, EndSessions, RealmSettings, SessionQuery,
};
use crate::stats::EndReason;
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

/// What ending sessions does besides selecting them.
pub struct Flags {
    pub remove_server_side_session: bool,
    pub revoke_tokens: bool,
    pub revoke_consents: bool,
    pub notify: bool,
    /// Limits token and consent revocation and notifications to these clients.
    pub client_scope: Option<BTreeSet<String>>,
    /// Why the sessions end, as recorded in their deliveries and counted in the activity stats.
    pub reason: EndReason,
    /// Only end sessions that are no longer valid at this time (the reaper's check).
    pub expired_at: Option<i64>,
    /// The administrator (or API key) ending them and the reason given, for their history.
    pub by: Option<EndedBy>,
}

/// Who ended sessions by hand, and why, as their ended-session history records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndedBy {
    pub actor: String,
    pub reason: Option<String>,
}

impl Flags {
    /// Everything on, every client: a logout or an eviction.
    pub fn everything(reason: EndReason) -> Self {
        Flags {
            remove_server_side_session: true,
            revoke_tokens: true,
            revoke_consents: true,
            notify: true,
            client_scope: None,
            reason,
            expired_at: None,
            by: None,
        }
    }

    /// What the reaper does to the sessions of a realm with `settings` that expired by `now`:
    /// removes them with their token grants (their subjects' consents stay), notifies their
    /// clients only if the realm asks for it, and passes over any found valid again.
    pub fn expiry(settings: &RealmSettings, now: DateTime<Utc>) -> Self {
        Flags {
            remove_server_side_session: true,
            revoke_tokens: true,
            revoke_consents: false,
            notify: settings.backchannel_logout_on_expiry,
            client_scope: None,
            reason: EndReason::Expired,
            expired_at: Some(now.timestamp_millis()),
            by: None,
        }
    }

    pub fn in_scope(&self, client_id: &str) -> bool {
        in_scope(&self.client_scope, client_id)
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

/// A request to revoke a subject's grants, checked before anything happens.
pub struct RevokeSubjectGrants<'a> {
    pub subject_id: &'a str,
    /// The clients whose grants go (`None`: every client's).
    pub scope: Option<BTreeSet<String>>,
    pub reason: Option<&'a str>,
}

impl<'a> RevokeSubjectGrants<'a> {
    /// Checks the request: the subject named exactly, the reason, each client id.
    pub fn check(
        subject_id: &'a str,
        client_ids: Option<&[String]>,
        reason: Option<&'a str>,
    ) -> Result<Self> {
        validate::not_blank("subject_id", subject_id)?;
        validate::identifier("subject_id", subject_id)?;
        check_reason(reason)?;
        Ok(RevokeSubjectGrants {
            subject_id,
            scope: client_scope(client_ids)?,
            reason,
        })
    }

    /// Whether a grant of this client goes.
    pub fn in_scope(&self, client_id: &str) -> bool {
        in_scope(&self.scope, client_id)
    }

    /// The audit entry of the revocation, once `revoked` grants are gone and it ended as `done`
    /// says (part way included).
    pub fn audit_entry(
        &self,
        realm: &str,
        revoked: u64,
        done: &Result<()>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> AuditEntry {
        AuditEntry {
            outcome: revoked_grants_outcome(revoked, &self.scope, done),
            ..audit_entry_with_reason(
                realm,
                "revoke_subject_grants",
                self.subject_id,
                self.reason,
                actor,
                now,
            )
        }
    }
}

/// An audit entry for an action on something in a realm, its outcome `ok`.
pub fn audit_entry(
    realm: &str,
    action: &str,
    target: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry {
        at: now,
        actor: actor.to_owned(),
        realm: Some(realm.to_owned()),
        action: action.to_owned(),
        target: target.to_owned(),
        reason: None,
        outcome: "ok".into(),
    }
}

/// An audit entry for an action that carries the caller's reason (a removal, a revocation); its
/// outcome is set when the action is done.
fn audit_entry_with_reason(
    realm: &str,
    action: &str,
    target: &str,
    reason: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry {
        reason: reason.map(str::to_owned),
        ..audit_entry(realm, action, target, actor, now)
    }
}

/// The audit entry of a removal of selected or filtered sessions (`filter` as
/// [`end_flags`](super::shared::end_flags) answers it); its outcome is set when the
/// removal is done ([`end_outcome`]).
pub fn end_entry(
    realm: &str,
    request: &EndSessions,
    filter: Option<&SessionQuery>,
    actor: &str,
    now: DateTime<Utc>,
) -> AuditEntry {
    let target = super::shared::end_audit_target(filter, request);
    let reason = request.reason.as_deref();
    audit_entry_with_reason(realm, "end_sessions", &target, reason, actor, now)
}

/// The audit entry of ending every session of a realm; its outcome is set when that is done
/// ([`end_outcome`]).
pub fn end_all_entry(
    realm: &str,
    request: &EndAllSessions,
    actor: &str,
    now: DateTime<Utc>,
) -> AuditEntry {
    let reason = request.reason.as_deref();
    audit_entry_with_reason(realm, "end_all_sessions", realm, reason, actor, now)
}

/// The audit entry of revoking the grant a token belongs to.
pub fn revoked_token_entry(
    realm: &str,
    grant: &Grant,
    actor: &str,
    now: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry {
        outcome: format!(
            "revoked {} of subject {} for client {}",
            grant.kind.as_str(),
            grant.subject_id,
            grant.client_id
        ),
        ..audit_entry(realm, "revoke_token", &grant.grant_id, actor, now)
    }
}

/// The audit entry of queuing a delivery for an attempt now ("retry now").
pub fn retried_delivery_entry(realm: &str, id: u64, actor: &str, now: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        outcome: "queued".into(),
        ..audit_entry(realm, "retry_delivery", &id.to_string(), actor, now)
    }
}

/// The audit outcome of a removal that ended as `ended` says, part way included.
pub fn end_outcome(outcome: &EndOutcome, ended: &Result<()>) -> String {
    let done = format!(
        "records removed: {}, tokens revoked: {}, consents revoked: {}, logouts queued: {}",
        outcome.records_deleted,
        outcome.tokens_revoked,
        outcome.consents_revoked,
        outcome.clients_notified
    );
    match ended {
        Ok(()) => format!(
            "ended: {}, {done}, not found: {}",
            outcome.ended.len().max(outcome.records_deleted as usize),
            outcome.not_found.len()
        ),
        Err(e) => format!("stopped part way: {e}; before that, {done}"),
    }
}

/// The audit outcome of revoking a subject's grants.
fn revoked_grants_outcome(
    revoked: u64,
    scope: &Option<BTreeSet<String>>,
    done: &Result<()>,
) -> String {
    let within = match scope {
        Some(clients) => format!(
            " (clients {})",
            clients.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        None => String::new(),
    };
    match done {
        Ok(()) => format!("grants revoked: {revoked}{within}"),
        Err(e) => format!("stopped part way: {e}; before that, grants revoked: {revoked}{within}"),
    }
}
