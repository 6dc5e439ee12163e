//! The audit log: one row per administrative action, newest first by id.

use sessions::{AuditEntry, SessionError};

use super::db::{db_run, Tx, R};
use super::PostgresStore;

/// Appends an entry (durable with the transaction it is written in).
pub(crate) async fn insert(tx: &Tx<'_>, e: &AuditEntry) -> R<()> {
    tx.execute(
        "INSERT INTO audit (realm, at, actor, action, target, reason, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &e.realm.as_deref().unwrap_or(""),
            &e.at,
            &e.actor,
            &e.action,
            &e.target,
            &e.reason,
            &e.outcome,
        ],
    )
    .await?;
    Ok(())
}

impl PostgresStore {
    pub(crate) async fn record_audit_impl(&self, entry: &AuditEntry) -> sessions::Result<()> {
        db_run!(self.db, async |tx| insert(tx, entry).await).await
    }

    pub(crate) async fn audit_log_impl(
        &self,
        before: Option<u64>,
        count: usize,
    ) -> sessions::Result<Vec<(u64, AuditEntry)>> {
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        db_run!(self.db, async |tx| {
            let found = tx
                .query(
                    "SELECT id, realm, at, actor, action, target, reason, outcome FROM audit
                      WHERE id < $1 ORDER BY id DESC LIMIT $2",
                    &[&before, &count],
                )
                .await?;
            found
                .iter()
                .map(|row| {
                    let realm: String = row.try_get(1)?;
                    let entry = AuditEntry {
                        at: row.try_get(2)?,
                        actor: row.try_get(3)?,
                        realm: (!realm.is_empty()).then_some(realm),
                        action: row.try_get(4)?,
                        target: row.try_get(5)?,
                        reason: row.try_get(6)?,
                        outcome: row.try_get(7)?,
                    };
                    let id = u64::try_from(row.try_get::<_, i64>(0)?)
                        .map_err(|_| SessionError::Storage("negative audit id".into()))?;
                    Ok((id, entry))
                })
                .collect()
        })
        .await
    }
}
