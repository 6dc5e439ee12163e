//! What every [`SessionStore`](super::SessionStore) backend builds on, so that the rules that are
//! not about storage are written once: a query's filters and the fingerprint that binds a results
//! token to it, the signed results token itself, keyset paging (which page, which neighbours,
//! which token), display-name words, session id text, and the limits and checks of removals.

pub use super::keys::Sid;
pub use super::query::Filters;
pub use super::record::{from_ms, sid_to_string, words, MAX_PREFIX_CHARS};
pub use super::results_token::{PageCursor, Position, ResultsTokenCodec};
pub use super::sled_store::{
    check_reason, client_scope, in_scope, random_bytes, Flags, GRANT_DELETE_BATCH,
    MAX_LISTED_GRANTS, MAX_SELECTED_SIDS, MAX_TOKEN_LEN, REMOVE_ALL_BATCH,
};

use crate::error::{Result, SessionError};
use crate::model::{
    QueryResult, RemoveAllSessions, RemoveOutcome, RemoveSessions, Session, SessionQuery,
};
use crate::stats::EndReason;
use crate::validate;

/// Where a listing walk starts: a position, excluded (`false`) or included (`true`).
pub type From = Option<(Position, bool)>;

/// One page of a keyset listing, the same for every backend.
///
/// `scan(from, forward, want)` answers up to `want` matching rows with their positions, walking
/// the listing order (`forward`) or against it, beyond `from`; `total()` the exact number of
/// matches. The page after a results token starts after the last row it saw, the page before it
/// ends before its first; whether there is anything on the side the walk came from is probed
/// with one row. The token carries the page's first and last positions and its number, signed
/// and bound to the query's `fingerprint`.
pub fn keyset_page(
    codec: &ResultsTokenCodec,
    fingerprint: [u8; 8],
    q: &SessionQuery,
    count: u32,
    mut scan: impl FnMut(From, bool, usize) -> Result<Vec<(Position, Session)>>,
    total: impl FnOnce() -> Result<u64>,
) -> Result<QueryResult> {
    let cursor = match &q.results_token {
        Some(t) => Some(codec.decode(fingerprint, t)?),
        None => None,
    };
    let want = count as usize;
    let (forward, from) = match (&cursor, q.prior) {
        (None, _) => (true, None),
        (Some(c), false) => (true, Some((c.last, false))),
        (Some(c), true) => (false, Some((c.first, false))),
    };
    let mut rows = scan(from, forward, want + 1)?;
    let more = rows.len() > want;
    rows.truncate(want);
    if !forward {
        rows.reverse();
    }
    // Is there anything on the side we came from? Probe one row beyond this page's edge.
    let edge = if forward { rows.first() } else { rows.last() }.map(|(p, _)| (*p, false));
    let other_side = match edge.or(from.map(|(p, _)| (p, true))) {
        Some(f) => !scan(Some(f), !forward, 1)?.is_empty(),
        None => false,
    };
    let (has_next, has_prev) = if forward {
        (more, other_side)
    } else {
        (other_side, more)
    };
    let total_count = total()?;
    let total_pages = total_count.div_ceil(u64::from(count));
    let page = match (&cursor, q.prior) {
        (None, _) => 1,
        (Some(c), false) => c.page + 1,
        (Some(c), true) => c.page.saturating_sub(1),
    };
    let current_page = if has_prev {
        page.clamp(2, total_pages.max(2))
    } else {
        1
    };
    let bounds = match (rows.first(), rows.last()) {
        (Some((f, _)), Some((l, _))) => Some((*f, *l)),
        _ => from.map(|(p, _)| (p, p)),
    };
    let results_token = bounds.map(|(first, last)| {
        codec.encode(
            fingerprint,
            &PageCursor {
                page: current_page,
                first,
                last,
            },
        )
    });
    Ok(QueryResult {
        results: rows.into_iter().map(|(_, s)| s).collect(),
        results_token,
        has_next,
        has_prev,
        total_count,
        current_page,
        total_pages,
    })
}

/// Checks a removal request before anything happens (reason, blank or padded ids, sids or
/// filters but not both, at most [`MAX_SELECTED_SIDS`]); answers what ending the sessions does
/// and the filter that selects them (`None` for a removal by sids).
pub fn removal_flags(request: &RemoveSessions) -> Result<(Flags, Option<SessionQuery>)> {
    check_reason(request.reason.as_deref())?;
    let filter = validate::removal_filter(request)?;
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
        reason: EndReason::Revoked,
        expired_at: None,
    };
    Ok((flags, filter))
}

/// The subject whose tokens issued under no session a removal also revokes (with
/// `revoke_tokens`): only a removal of every session of one subject, by `subject_id` alone.
pub fn offline_tokens_subject(filter: Option<&SessionQuery>) -> Option<&str> {
    match filter? {
        SessionQuery {
            subject_id: Some(subject),
            sid: None,
            ip: None,
            created_after: None,
            created_before: None,
            ..
        } => Some(subject),
        _ => None,
    }
}

/// What ending every session of a realm does.
pub fn remove_all_flags(request: &RemoveAllSessions) -> Result<Flags> {
    check_reason(request.reason.as_deref())?;
    Ok(Flags {
        remove_server_side_session: request.remove_server_side_session,
        revoke_tokens: request.revoke_tokens,
        revoke_consents: request.revoke_consents,
        notify: request.send_backchannel_logout,
        client_scope: None,
        reason: EndReason::RealmSignOut,
        expired_at: None,
    })
}

/// The audit target of a removal: its filter, or how many sessions it selected.
pub fn removal_target(filter: Option<&SessionQuery>, request: &RemoveSessions) -> String {
    match filter {
        Some(f) => validate::describe_filter(f),
        None => format!("{} selected sessions", request.sids.len()),
    }
}

/// The audit outcome of a removal that ended as `ended` says, part way included.
pub fn removal_outcome(outcome: &RemoveOutcome, ended: &Result<()>) -> String {
    let done = format!(
        "records removed: {}, tokens revoked: {}, consents revoked: {}, logouts queued: {}",
        outcome.sessions_removed,
        outcome.tokens_revoked,
        outcome.consents_revoked,
        outcome.clients_notified
    );
    match ended {
        Ok(()) => format!(
            "ended: {}, {done}, not found: {}",
            outcome.removed.len().max(outcome.sessions_removed as usize),
            outcome.not_found.len()
        ),
        Err(e) => format!("stopped part way: {e}; before that, {done}"),
    }
}

/// The audit outcome of revoking a subject's grants.
pub fn revoked_grants_outcome(
    revoked: u64,
    scope: &Option<std::collections::BTreeSet<String>>,
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
