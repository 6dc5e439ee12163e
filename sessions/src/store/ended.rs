//! Ended-session history as every backend reads a request for it: the query's fields parsed and
//! checked once ([`EndedFilter::from_query`]), the test an ended session must pass, and what
//! each client was told, worked out from its delivery.

use super::keys::Sid;
use super::record::parse_sid;
use crate::delivery::DeliveryStatus;
use crate::ended::{EndedCursor, EndedQuery, Notice, DEFAULT_ENDED_PAGE, MAX_ENDED_PAGE};
use crate::error::{Result, SessionError};
use crate::stats::EndReason;
use crate::validate;

/// A history request, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndedFilter {
    pub subject: Option<String>,
    pub sid: Option<Sid>,
    pub how: Option<EndReason>,
    /// Page size.
    pub count: usize,
    /// The page starts after this one (newest end first).
    pub after: Option<EndedCursor>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

impl EndedFilter {
    pub fn from_query(q: &EndedQuery) -> Result<Self> {
        let subject = non_empty(&q.subject_id);
        if let Some(s) = subject {
            validate::text("subject_id", s)?;
        }
        let sid = match non_empty(&q.sid) {
            Some(s) => Some(parse_sid(s).ok_or_else(|| {
                SessionError::invalid(format!(
                    "sid '{}' is not a session id (expected the 36-character form of a UUID)",
                    s.escape_debug()
                ))
            })?),
            None => None,
        };
        let how = match non_empty(&q.how) {
            Some(h) => Some(EndReason::parse(h).ok_or_else(|| {
                SessionError::invalid(
                    "how must be one of logout, expired, revoked, realm_sign_out, evicted",
                )
            })?),
            None => None,
        };
        let count = match q.count {
            None => DEFAULT_ENDED_PAGE,
            Some(n @ 1..=MAX_ENDED_PAGE) => n,
            Some(n) => {
                return Err(SessionError::invalid(format!(
                    "count must be between 1 and {MAX_ENDED_PAGE}, got {n}"
                )))
            }
        };
        let after = match non_empty(&q.after) {
            Some(a) => Some(EndedCursor::decode(a).ok_or_else(|| {
                SessionError::invalid("after must be the next of an earlier page")
            })?),
            None => None,
        };
        Ok(EndedFilter {
            subject: subject.map(str::to_owned),
            sid,
            how,
            count: count as usize,
            after,
        })
    }

    /// Whether an ended session of this subject, sid and end passes.
    pub fn matches(&self, subject: &str, sid: &Sid, how: EndReason) -> bool {
        self.subject.as_deref().is_none_or(|s| s == subject)
            && self.sid.as_ref().is_none_or(|s| s == sid)
            && self.how.is_none_or(|h| h == how)
    }

    /// Whether a position is past the page's start (newest end first).
    pub fn beyond(&self, at: EndedCursor) -> bool {
        self.after.is_none_or(|a| at < a)
    }
}

/// What a client was told, from the status of its delivery: `None` when no notification was
/// queued, `Some(None)` when the delivery is gone (only delivered ones are purged).
pub fn notice(delivery: Option<Option<DeliveryStatus>>) -> Notice {
    match delivery {
        None => Notice::NotSent,
        Some(None) | Some(Some(DeliveryStatus::Delivered)) => Notice::Delivered,
        Some(Some(DeliveryStatus::Pending)) => Notice::Pending,
        Some(Some(DeliveryStatus::Failed)) => Notice::Failed,
    }
}
