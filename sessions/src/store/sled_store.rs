//! What the store's backends share beside the trait: limits, removal flags, the shapes of new
//! deliveries and audit entries, and the small checks every backend applies the same way.
//!
//! (The previous sled layout, one tree per entity and index, lived here until the v2 layout's
//! upgrade no longer needed more of it than the record decoders in [`super::record`],
//! [`super::grants`] and [`super::outbox`]; `tests/fixtures/v1-store` is a directory it wrote.)

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::keys::RealmId;
use super::record::{sid_to_string, StoredSession};
use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::{Result, SessionError};
use crate::model::{AuditEntry, ClientRegistration, RealmSettings};
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

/// A realm as the store keeps it in memory.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(super) struct RealmEntry {
    pub id: RealmId,
    pub name: String,
    pub settings: RealmSettings,
    pub created_ms: i64,
}
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
        }
    }

    pub fn in_scope(&self, client_id: &str) -> bool {
        in_scope(&self.client_scope, client_id)
    }
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
