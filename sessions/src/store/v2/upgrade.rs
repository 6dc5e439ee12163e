//! Upgrading a directory of the v1 layout (one tree per entity and index) in place.
//!
//! The records of the old trees (realms, clients, sessions, grants, deliveries, audit entries,
//! the results-token key) are read with the v1 decoders and written into the v2
//! tree with all their index entries, in batches; the counts are recounted from them on the way.
//! The layout version is written last, in the batch that writes the counter checkpoint; only
//! then are the old trees dropped. An upgrade interrupted before the version is written leaves
//! the old trees as they were and a v2 tree without a version, which the next open clears and
//! starts over; one interrupted after it only has old trees left to drop. So a directory is
//! either entirely of the old layout or entirely of the new one.
//!
//! Sessions keep their sids (UUIDv4, whose creation time is kept beside them) and their tokens
//! (32 random bytes, found by their SHA-256).
//!
//! Later versions of the one-tree layout are steps on an open store ([`SledStoreV2::upgrade_from`]):
//! layout 3 adds the client-address index. A step only adds entries that follow from the records
//! (writing one twice is harmless) and writes the new version last, after a flush, so a crash
//! during it leaves the old version, and the next open does the step again.

use sled::{Batch, Tree};

use super::super::grants::StoredGrant;
use super::super::outbox;
use super::super::record::StoredSession;
use super::counters::{self, Counters, Deltas};
use super::grants::grant_entries;
use super::layout::Counter;
use super::layout::{AddressKey, AuditKey, ClientRegKey, DeliveryKey, GrantKey, MetaKey};
use super::layout::{RealmKey, SessionKey};
use super::outbox::delivery_index;
use super::record::{self, Interner};
use super::sessions::index_entries;
use super::{check, init, v1_keys, SledStoreV2, LAYOUT_VERSION};
use crate::address::address_bytes;
use crate::error::Result;

/// The first version of the one-tree layout; every later one is reached by the steps of
/// [`SledStoreV2::upgrade_from`].
pub(super) const OLDEST_V2: u32 = 2;

/// The trees of the v1 layout.
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

/// Records copied per batch.
const BATCH: usize = 2000;

fn has_tree(db: &sled::Db, name: &str) -> bool {
    db.tree_names()
        .iter()
        .any(|n| n.as_ref() == name.as_bytes())
}

/// Whether the directory holds trees of the v1 layout.
pub(super) fn has_v1(db: &sled::Db) -> Result<bool> {
    Ok(V1_TREES.iter().any(|t| has_tree(db, t)))
}

/// A batch that applies itself every [`BATCH`] records.
struct Writer<'a> {
    tree: &'a Tree,
    batch: Batch,
    records: usize,
    copied: u64,
}

impl Writer<'_> {
    fn put(&mut self, k: impl Into<sled::IVec>, v: impl Into<sled::IVec>) {
        self.batch.insert(k, v);
    }

    fn record_done(&mut self) -> Result<()> {
        self.records += 1;
        self.copied += 1;
        if self.records >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.tree.apply_batch(std::mem::take(&mut self.batch))?;
        self.records = 0;
        Ok(())
    }
}

/// Copies everything of the v1 layout into `tree` (which is empty), then writes the
/// counter checkpoint and the layout version.
pub(super) fn from_v1(db: &sled::Db, tree: &Tree) -> Result<()> {
    let started = std::time::Instant::now();
    tracing::info!("upgrading the data directory from storage layout 1 to 2");
    let open = |name: &str| -> Result<Option<Tree>> {
        Ok(if has_tree(db, name) {
            Some(db.open_tree(name)?)
        } else {
            None
        })
    };
    let mut w = Writer {
        tree,
        batch: Batch::default(),
        records: 0,
        copied: 0,
    };
    let interner = Interner::default();
    let counters = Counters::default();

    if let Some(meta) = open("meta")? {
        if let Some(k) = meta.get("results_token_key")? {
            // Results tokens handed out before the upgrade stay valid.
            w.put(MetaKey::ResultsTokenKey.encode(), k);
        }
    }
    if let Some(realms) = open("realms")? {
        for item in realms.iter() {
            let (k, v) = item?;
            let name = v1_keys::realm_name(&k)?;
            w.put(RealmKey { name }.encode(), v);
            w.record_done()?;
        }
    }
    if let Some(clients) = open("clients")? {
        for item in clients.iter() {
            let (k, v) = item?;
            let (realm, client_id) = v1_keys::client(&k)?;
            w.put(ClientRegKey { realm, client_id }.encode(), v);
            w.record_done()?;
        }
    }
    if let Some(audit) = open("audit")? {
        for item in audit.iter() {
            let (k, v) = item?;
            let id = v1_keys::audit_id(&k)?;
            w.put(&AuditKey { id }.encode(), v);
            w.record_done()?;
        }
    }
    if let Some(sessions) = open("sessions")? {
        for item in sessions.iter() {
            let (k, v) = item?;
            let (realm, _) = v1_keys::split_realm(&k)?;
            let s = StoredSession::decode(&v)?;
            record::intern_all(&s, &interner, tree)?;
            let key = SessionKey {
                realm,
                created_ms: s.created_ms,
                sid: s.sid,
            };
            w.put(&key.encode(), record::encode(&s, &interner));
            for (k, v) in index_entries(realm, &s) {
                w.put(k, v);
            }
            let mut d = Deltas::default();
            d.session(realm, &s, true);
            counters.apply(&d);
            w.record_done()?;
        }
    }
    if let Some(grants) = open("grants")? {
        for item in grants.iter() {
            let (k, v) = item?;
            let (realm, _) = v1_keys::split_realm(&k)?;
            let g = StoredGrant::decode(&v)?;
            w.put(&GrantKey { realm, id: g.id }.encode(), v);
            for (k, v) in grant_entries(realm, &g) {
                w.put(k, v);
            }
            w.record_done()?;
        }
    }
    if let Some(deliveries) = open("outbox")? {
        for item in deliveries.iter() {
            let (k, v) = item?;
            let (realm, _) = v1_keys::split_realm(&k)?;
            let d = outbox::decode(&v)?;
            w.put(&DeliveryKey { realm, id: d.id }.encode(), v);
            for k in delivery_index(realm, &d) {
                w.put(k, &[][..]);
            }
            let mut deltas = Deltas::default();
            deltas.counter(Counter::Deliveries(d.status).key(realm), 1);
            counters.apply(&deltas);
            w.record_done()?;
        }
    }
    w.flush()?;
    // Last: the checkpoint and the version that says the upgrade is complete.
    init(tree, &counters.snapshot())?;
    db.flush()?;
    tracing::info!(
        records = w.copied,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "upgraded the data directory to the current storage layout"
    );
    Ok(())
}

/// Drops the v1 layout's trees, once the upgrade is complete.
pub(super) fn drop_v1(db: &sled::Db) -> Result<()> {
    let mut dropped = false;
    for t in V1_TREES {
        if has_tree(db, t) {
            db.drop_tree(t)?;
            dropped = true;
        }
    }
    if dropped {
        db.flush()?;
    }
    Ok(())
}

impl SledStoreV2 {
    /// Brings an opened store of layout `version` (2 or later) up to [`LAYOUT_VERSION`], one step
    /// at a time, each step's version written after its entries are on disk.
    pub(super) fn upgrade_from(&self, version: u32) -> Result<()> {
        let started = std::time::Instant::now();
        for step in version..LAYOUT_VERSION {
            match step {
                2 => self.add_address_index()?,
                3 => self.count_devices()?,
                // Records and history entries that place addresses are new; none to rewrite.
                4 => {}
                _ => unreachable!("a step for every version before LAYOUT_VERSION"),
            }
            self.db.flush()?;
            self.tree
                .insert(MetaKey::Version.encode(), &(step + 1).to_be_bytes()[..])?;
            self.db.flush()?;
        }
        tracing::info!(
            from = version,
            to = LAYOUT_VERSION,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "upgraded the data directory's storage layout"
        );
        Ok(())
    }

    /// Layout 4: the device counters (sessions per kind, browser and OS), recounted with every
    /// other count from the records; the activity counters are kept as they are.
    fn count_devices(&self) -> Result<()> {
        let _all = self.journal.write().unwrap_or_else(|e| e.into_inner());
        let mut counts: std::collections::BTreeMap<Vec<u8>, i64> = self
            .counters
            .snapshot()
            .into_iter()
            .filter(|(k, _)| counters::parse_stats_key(k, 0).is_some())
            .collect();
        counts.extend(check::recount(self)?);
        self.counters.replace(counts);
        drop(_all);
        self.checkpoint_all()
    }

    /// Layout 3: the client-address index entry of every session with an IP address.
    fn add_address_index(&self) -> Result<()> {
        for realm in self.realm_names().into_keys() {
            let mut batch = Batch::default();
            let mut pending = 0;
            for item in self.tree.scan_prefix(SessionKey::prefix(realm)) {
                let (k, v) = item?;
                let Some(SessionKey {
                    created_ms, sid, ..
                }) = SessionKey::decode(&k)
                else {
                    continue;
                };
                let s = self.decode(created_ms, &sid, &v)?;
                if let Some(address) = s.ip.as_deref().and_then(address_bytes) {
                    let key = AddressKey {
                        realm,
                        address,
                        created_ms,
                        sid,
                    };
                    batch.insert(&key.encode()[..], &[][..]);
                    pending += 1;
                }
                if pending == BATCH {
                    self.tree.apply_batch(std::mem::take(&mut batch))?;
                    pending = 0;
                }
            }
            self.tree.apply_batch(batch)?;
        }
        Ok(())
    }
}
