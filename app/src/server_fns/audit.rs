//! The audit log: who did what, when, why, with what outcome.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::AuditEntry;

use crate::error::AppError;

/// One page of the audit log, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditView {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next, older page.
    pub older: Option<u64>,
    /// The server's time of this answer, which times are shown relative to.
    pub now: DateTime<Utc>,
}

/// Up to 50 entries older than `before` (an entry id), newest first.
#[server]
pub async fn load_audit(before: Option<u64>) -> Result<AuditView, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    require_admin().await?;
    const PAGE: usize = 50;
    let page = service()?.audit_log(before, PAGE).await.map_err(failed)?;
    let older = page
        .has_next
        .then(|| page.entries.last().map(|(id, _)| *id))
        .flatten();
    Ok(AuditView {
        entries: page.entries.into_iter().map(|(_, e)| e).collect(),
        older,
        now: Utc::now(),
    })
}
