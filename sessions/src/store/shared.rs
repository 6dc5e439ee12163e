//! What every [`SessionStore`](super::SessionStore) backend builds on, so that the rules that are
//! not about storage are written once: a query's filters and the fingerprint that binds a results
//! token to it, the signed results token itself, keyset paging (which page, which neighbours,
//! which token), display-name words, session id text, and what a removal request asks for; with
//! the rules of `rules.rs` (limits, [`Flags`], request checks, audit entries).

pub use super::ended::{notice, EndedFilter};
pub use super::keys::Sid;
pub use super::query::{AnomalyFilter, Filters};
pub use super::record::{from_ms, sid_to_string, words, MAX_PREFIX_CHARS};
pub use super::results_token::{PageCursor, Position, ResultsTokenCodec};
pub use super::rules::{
    audit_entry, check_reason, client_scope, end_all_entry, end_entry, end_outcome, in_scope,
    random_bytes, retried_delivery_entry, revoked_token_entry, EndedBy, Flags, RevokeSubjectGrants,
    GRANT_DELETE_BATCH, MAX_LISTED_GRANTS, MAX_SELECTED_SIDS, MAX_TOKEN_LEN, REMOVE_ALL_BATCH,
};

use crate::error::{Result, SessionError};
use crate::model::{EndAllSessions, EndSessions, QueryResult, Session, SessionQuery};
use crate::stats::EndReason;
use crate::validate;

/// Where a listing walk starts: a position, excluded (`false`) or included (`true`).
pub type From = Option<(Position, bool)>;

/// One walk of a listing: where it starts, which way (`true`: the listing's order), how many
/// rows.
pub type Walk = (From, bool, usize);

/// One page of a keyset listing, the same for every backend, in steps that leave the reads to
/// the backend (so it may make them as it likes: inline, or pipelined with the count):
///
/// 1. [`KeysetPage::start`] reads the results token; [`KeysetPage::walk`] is the read of the
///    page's rows (one more than the page holds, to know whether more follow);
/// 2. [`KeysetPage::probe`] is the read of one row beyond the page's edge on the side the walk
///    came from (whether there is anything there), if there is an edge;
/// 3. [`KeysetPage::finish`] makes the page from those answers and the exact number of matches.
///
/// The page after a results token starts after the last row it saw, the page before it ends
/// before its first. The token carries the page's first and last positions and its number,
/// signed and bound to the query's `fingerprint`.
pub struct KeysetPage<'a> {
    codec: &'a ResultsTokenCodec,
    fingerprint: [u8; 8],
    cursor: Option<PageCursor>,
    prior: bool,
    count: u32,
    forward: bool,
    from: From,
}

impl<'a> KeysetPage<'a> {
    /// The page `q` asks for, `count` rows long, of the listing `fingerprint` names.
    pub fn start(
        codec: &'a ResultsTokenCodec,
        fingerprint: [u8; 8],
        q: &SessionQuery,
        count: u32,
    ) -> Result<Self> {
        let cursor = match &q.results_token {
            Some(t) => Some(codec.decode(fingerprint, t)?),
            None => None,
        };
        let (forward, from) = match (&cursor, q.prior) {
            (None, _) => (true, None),
            (Some(c), false) => (true, Some((c.last, false))),
            (Some(c), true) => (false, Some((c.first, false))),
        };
        Ok(KeysetPage {
            codec,
            fingerprint,
            cursor,
            prior: q.prior,
            count,
            forward,
            from,
        })
    }

    /// The read of the page's rows.
    pub fn walk(&self) -> Walk {
        (self.from, self.forward, self.count as usize + 1)
    }

    /// The read of one row beyond the edge of the page whose walk answered `rows` (as read, in
    /// the walk's order), on the side the walk came from; `None` when there is no edge (the
    /// first page of an empty listing).
    pub fn probe(&self, rows: &[(Position, Session)]) -> Option<Walk> {
        let edge = rows.first().map(|(p, _)| (*p, false));
        edge.or(self.from.map(|(p, _)| (p, true)))
            .map(|f| (Some(f), !self.forward, 1))
    }

    /// The page, from the rows its walk answered, whether its probe found a row, and the exact
    /// number of matches.
    pub fn finish(
        self,
        mut rows: Vec<(Position, Session)>,
        beyond_edge: bool,
        total_count: u64,
    ) -> QueryResult {
        let want = self.count as usize;
        let more = rows.len() > want;
        rows.truncate(want);
        if !self.forward {
            rows.reverse();
        }
        let (has_next, has_prev) = if self.forward {
            (more, beyond_edge)
        } else {
            (beyond_edge, more)
        };
        let total_pages = total_count.div_ceil(u64::from(self.count));
        let page = match (&self.cursor, self.prior) {
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
            _ => self.from.map(|(p, _)| (p, p)),
        };
        let results_token = bounds.map(|(first, last)| {
            self.codec.encode(
                self.fingerprint,
                &PageCursor {
                    page: current_page,
                    first,
                    last,
                },
            )
        });
        QueryResult {
            results: rows.into_iter().map(|(_, s)| s).collect(),
            results_token,
            has_next,
            has_prev,
            total_count,
            current_page,
            total_pages,
        }
    }
}

/// Checks a removal request before anything happens (reason, blank or padded ids, sids or
/// filters but not both, at most [`MAX_SELECTED_SIDS`]); answers what ending the sessions does
/// and the filter that selects them (`None` for a removal by sids).
pub fn end_flags(request: &EndSessions, actor: &str) -> Result<(Flags, Option<SessionQuery>)> {
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
        by: Some(EndedBy {
            actor: actor.to_owned(),
            reason: request.reason.clone(),
        }),
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
pub fn end_all_flags(request: &EndAllSessions, actor: &str) -> Result<Flags> {
    check_reason(request.reason.as_deref())?;
    Ok(Flags {
        remove_server_side_session: request.remove_server_side_session,
        revoke_tokens: request.revoke_tokens,
        revoke_consents: request.revoke_consents,
        notify: request.send_backchannel_logout,
        client_scope: None,
        reason: EndReason::RealmSignOut,
        expired_at: None,
        by: Some(EndedBy {
            actor: actor.to_owned(),
            reason: request.reason.clone(),
        }),
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

/// Runs `work`, a wait for the disk (a flush) or a long stretch of work (a removal of many
/// sessions), so that it holds up no other task: as a blocking section of a multi-threaded tokio
/// runtime's worker (`block_in_place`, which hands the worker's other tasks to the other workers
/// meanwhile), and as it is anywhere else (a current-thread runtime, a plain thread).
pub fn blocking_section<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
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
}
