//! The audit log: who did what, when, why, with what outcome.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::AuditEntry;

/// One page of the audit log, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditView {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next, older page.
    pub older: Option<u64>,
}

/// Up to 50 entries older than `before` (an entry id), newest first.
#[server]
pub async fn load_audit(before: Option<u64>) -> Result<AuditView, ServerFnError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{shown, state};
    require_admin().await?;
    const PAGE: usize = 50;
    let mut rows = state()?.store.audit_log(before, PAGE + 1).map_err(shown)?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let older = if more {
        rows.last().map(|(id, _)| *id)
    } else {
        None
    };
    Ok(AuditView {
        entries: rows.into_iter().map(|(_, e)| e).collect(),
        older,
    })
}
