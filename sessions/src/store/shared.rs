//! What every [`SessionStore`](super::SessionStore) backend builds on, so that the rules that are
//! not about storage are written once: a query's filters and the fingerprint that binds a results
//! token to it, the signed results token itself, keyset paging (which page, which neighbours,
//! which token), display-name words, session id text, and what a removal request asks for; with
//! the rules of `rules.rs` (limits, [`Flags`], request checks, audit entries).

pub use super::keys::Sid;
pub use super::query::Filters;
pub use super::record::{from_ms, sid_to_string, words, MAX_PREFIX_CHARS};
pub use super::results_token::{PageCursor, Position, ResultsTokenCodec};
pub use super::rules::{
    audit_entry, check_reason, client_scope, end_all_entry, end_entry, end_outcome, in_scope,
    random_bytes, retried_delivery_entry, revoked_token_entry, Flags, RevokeSubjectGrants,
    GRANT_DELETE_BATCH, MAX_LISTED_GRANTS, MAX_SELECTED_SIDS, MAX_TOKEN_LEN, REMOVE_ALL_BATCH,
};

use crate::error::{Result, SessionError};
use crate::model::{EndAllSessions, EndSessions, QueryResult, Session, SessionQuery};
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
pub fn end_flags(request: &EndSessions) -> Result<(Flags, Option<SessionQuery>)> {
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
    let filters = &filter?.filters;
    let subject = filters.subject_id.as_deref()?;
    (filters.sid.is_none() && !filters.beyond_ids()).then_some(subject)
}

/// What ending every session of a realm does.
pub fn end_all_flags(request: &EndAllSessions) -> Result<Flags> {
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
pub fn end_audit_target(filter: Option<&SessionQuery>, request: &EndSessions) -> String {
    match filter {
        Some(f) => validate::describe_filter(&f.filters),
        None => format!("{} selected sessions", request.sids.len()),
    }
}

/// Most different words a display-name filter may hold. Each word is one more lookup of the word
/// index for every candidate session (on PostgreSQL an `EXISTS` probe per row), so a filter of
/// hundreds of words would make one listing cost hundreds of probes per session.
pub const MAX_NAME_WORDS: usize = 8;

/// The words of a display-name filter as every backend searches them: case-folded
/// ([`words`]), each once, in the order given. More than [`MAX_NAME_WORDS`] different words is
/// a `400`: a filter is never silently cut short.
pub fn search_words(filter: &str) -> Result<Vec<String>> {
    let mut distinct: Vec<String> = Vec::new();
    for word in words(filter) {
        if !distinct.contains(&word) {
            distinct.push(word);
        }
    }
    if distinct.len() > MAX_NAME_WORDS {
        return Err(SessionError::invalid(format!(
            "display_name has {} different words; a filter may hold at most {MAX_NAME_WORDS}",
            distinct.len()
        )));
    }
    Ok(distinct)
}

/// Cancellation of the store calls made for one request, for stores that wait on the network
/// ([`SessionStore::blocks_on_network`](super::SessionStore::blocks_on_network)).
///
/// The caller runs the store call inside [`enter`](Self::enter) on its blocking thread and keeps
/// an [`on_drop`](Self::on_drop) guard in the request's future. When the request is dropped (its
/// time limit ended the answer, the client went away), the guard cancels, and a call still
/// waiting for the database stops waiting: the PostgreSQL store asks the server to cancel the
/// statement running and gives that connection up; a call waiting for a free connection stops
/// waiting. Calls made outside any scope (and the embedded store's) are not cancellable.
///
/// ```ignore
/// let cancel = CallCancel::new();
/// let _cancel_when_dropped = cancel.on_drop();
/// tokio::task::spawn_blocking(move || cancel.enter(|| store.query(&realm, &query))).await
/// ```
#[derive(Clone, Debug)]
pub struct CallCancel(std::sync::Arc<tokio::sync::watch::Sender<bool>>);

/// Cancels its [`CallCancel`] when dropped.
#[derive(Debug)]
#[must_use = "the calls are cancelled when the guard is dropped"]
pub struct CancelOnDrop(CallCancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

thread_local! {
    /// The scope of the store call running on this thread, if any.
    static CURRENT_CALL: std::cell::RefCell<Option<CallCancel>> = const { std::cell::RefCell::new(None) };
}

impl Default for CallCancel {
    fn default() -> Self {
        Self::new()
    }
}

impl CallCancel {
    /// A scope not cancelled yet.
    pub fn new() -> Self {
        CallCancel(std::sync::Arc::new(tokio::sync::watch::channel(false).0))
    }

    /// Cancels the calls running in this scope, and any started in it later.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// A guard that cancels this scope when dropped.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }

    /// Resolves when the scope is cancelled (at once if it is already); works on any executor.
    pub async fn cancelled(&self) {
        let mut changes = self.0.subscribe();
        if changes.wait_for(|cancelled| *cancelled).await.is_err() {
            // Not reached: `self` keeps the sender.
            std::future::pending::<()>().await;
        }
    }

    /// Runs `call` on this thread within this scope: the store calls it makes are cancelled
    /// with it.
    pub fn enter<T>(&self, call: impl FnOnce() -> T) -> T {
        struct Restore(Option<CallCancel>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let outer = self.0.take();
                CURRENT_CALL.with(|c| *c.borrow_mut() = outer);
            }
        }
        let _restore = Restore(CURRENT_CALL.with(|c| c.borrow_mut().replace(self.clone())));
        call()
    }

    /// The scope of the store call running on this thread, if it runs in one.
    pub fn current() -> Option<CallCancel> {
        CURRENT_CALL.with(|c| c.borrow().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_filter_keeps_each_word_once_in_the_order_given() {
        assert_eq!(
            search_words("Smith alice SMITH al alice").unwrap(),
            ["smith", "alice", "al"]
        );
        let many_repeats = "ann ".repeat(100);
        assert_eq!(search_words(&many_repeats).unwrap(), ["ann"]);
    }

    #[test]
    fn a_name_filter_with_more_different_words_than_the_limit_is_a_400() {
        let at_limit: Vec<String> = (0..MAX_NAME_WORDS).map(|i| format!("w{i}")).collect();
        assert_eq!(search_words(&at_limit.join(" ")).unwrap(), at_limit);
        let over = format!("{} extra", at_limit.join(" "));
        let e = search_words(&over).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("at most 8"), "{e}");
    }

    #[test]
    fn a_call_scope_is_seen_only_inside_it_and_cancelled_by_its_guard() {
        assert!(CallCancel::current().is_none());
        let scope = CallCancel::new();
        let guard = scope.on_drop();
        let inner = scope.enter(|| CallCancel::current().expect("inside the scope"));
        assert!(CallCancel::current().is_none());
        assert!(!inner.is_cancelled());
        drop(guard);
        assert!(inner.is_cancelled());
        // Already cancelled: resolves at once, without a runtime.
        poll_once(inner.cancelled());
    }

    /// Polls a future that is ready at once.
    fn poll_once<F: std::future::Future>(f: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the future was not ready"),
        }
    }
}
