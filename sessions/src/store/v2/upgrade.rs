//! Upgrading a directory of the previous layout (one tree per entity and index).

use crate::error::Result;

/// The trees of the previous layout.
const V1_TREES: &[&str] = &[
    "sessions",
    "tokens",
    "by_created",
    "by_last_access",
    "by_expiry",
    "by_attr",
    "counts",
    "realms",
    "clients",
    "meta",
    "audit",
    "grants",
    "grant_tokens",
    "grant_index",
    "outbox",
    "outbox_index",
];

/// Whether the directory holds trees of the previous layout.
pub(super) fn has_v1(db: &sled::Db) -> Result<bool> {
    let names = db.tree_names();
    Ok(V1_TREES
        .iter()
        .any(|t| names.iter().any(|n| n.as_ref() == t.as_bytes())))
}

/// Copies everything of the previous layout into `tree`.
pub(super) fn from_v1(_db: &sled::Db, _tree: &sled::Tree) -> Result<()> {
    Err(crate::SessionError::Storage(
        "upgrade not implemented yet".into(),
    ))
}

/// Drops the previous layout's trees, once the upgrade is complete.
pub(super) fn drop_v1(db: &sled::Db) -> Result<()> {
    let names = db.tree_names();
    for t in V1_TREES {
        if names.iter().any(|n| n.as_ref() == t.as_bytes()) {
            db.drop_tree(t)?;
        }
    }
    Ok(())
}
