//! The audit log: every administrative action, newest first.

use sessions::{AuditEntry, Result, SessionError};

use crate::SessionService;

/// Most entries one page holds.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// A page of the audit log.
#[derive(Clone, Debug)]
pub struct AuditPage {
    /// Entries with their ids, newest first.
    pub entries: Vec<(u64, AuditEntry)>,
    /// Whether older entries exist (ask with `before` = the last id).
    pub has_next: bool,
}

impl SessionService {
    /// Up to `count` (1 to [`MAX_AUDIT_PAGE`]) entries older than `before`, newest first.
    pub async fn audit_log(&self, before: Option<u64>, count: usize) -> Result<AuditPage> {
        if !(1..=MAX_AUDIT_PAGE).contains(&count) {
            return Err(SessionError::invalid(format!(
                "count must be between 1 and {MAX_AUDIT_PAGE}, got {count}"
            )));
        }
        let mut entries = self.store.audit_log(before, count + 1).await?;
        let has_next = entries.len() > count;
        entries.truncate(count);
        Ok(AuditPage { entries, has_next })
    }
}
