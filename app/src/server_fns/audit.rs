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
    use super::ssr::{service, shown};
    require_admin().await?;
    const PAGE: usize = 50;
    let page = service()?.audit_log(before, PAGE).await.map_err(shown)?;
    let older = page
        .has_next
        .then(|| page.entries.last().map(|(id, _)| *id))
        .flatten();
    Ok(AuditView {
        entries: page.entries.into_iter().map(|(_, e)| e).collect(),
        older,
    })
}
