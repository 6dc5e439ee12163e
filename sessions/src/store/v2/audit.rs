//! The audit log: one key per entry (realm 0, `A`, id), newest last, its value the entry as
//! JSON.

use super::layout::AuditKey;
use super::SledStoreV2;
use crate::error::{Result, SessionError};
use crate::model::AuditEntry;

impl SledStoreV2 {
    /// Appends an entry to the audit log (made durable by the caller's commit).
    pub(super) fn audit(&self, entry: &AuditEntry) -> Result<()> {
        let id = self.next_id()?;
        let value = serde_json::to_vec(entry).map_err(|e| SessionError::Storage(e.to_string()))?;
        self.tree.insert(AuditKey { id }.encode(), value)?;
        Ok(())
    }

    pub(super) fn record_audit_impl(&self, entry: &AuditEntry) -> Result<()> {
        self.audit(entry)?;
        self.wait_durable()
    }

    pub(super) fn audit_log_impl(
        &self,
        before: Option<u64>,
        count: usize,
    ) -> Result<Vec<(u64, AuditEntry)>> {
        let end = before.unwrap_or(u64::MAX);
        self.tree
            .range(AuditKey { id: 0 }.encode()..AuditKey { id: end }.encode())
            .rev()
            .take(count)
            .map(|item| {
                let (k, v) = item?;
                decode(&k, &v)
            })
            .collect()
    }
}

/// An audit entry as stored: its id from the key, the entry from the value.
pub(super) fn decode(k: &[u8], v: &[u8]) -> Result<(u64, AuditEntry)> {
    let AuditKey { id } =
        AuditKey::decode(k).ok_or_else(|| SessionError::Storage("bad audit key".into()))?;
    let entry = serde_json::from_slice(v)
        .map_err(|e| SessionError::Storage(format!("corrupt audit entry: {e}")))?;
    Ok((id, entry))
}
