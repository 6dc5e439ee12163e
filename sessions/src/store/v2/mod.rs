//! The v2 layout: one sled tree, one atomic batch per operation, exact counts in memory.
//!
//! - Every key starts with the realm id and a one-byte tag ([`layout`]). A session is its record
//!   (keyed by creation time and a time-ordered sid, so the records are the creation-order
//!   index) and a handful of small index entries; its token is `sid ‖ secret`, the record holds
//!   the secret's SHA-256, so validation is one point read.
//! - Every create, refresh, removal and reap is one `apply_batch`, built before sled's write lock
//!   is taken; what sled's transactions used to serialise (quota checks, a grant added while its
//!   session ends, a refresh racing a removal) is serialised by in-process locks striped by
//!   subject, session, grant and delivery ([`locks`]). One process owns the directory (sled
//!   locks it).
//! - Counts live in memory ([`counts`]); each batch that changes them carries its changes as a
//!   journal entry; every [`CHECKPOINT_EVERY`] entries and at a clean close, a checkpoint stores
//!   the counters that changed (one key each) and drops the journal before it; opening loads the
//!   stored counters and replays the journal. So counts stay exact across a crash, with no read
//!   on the write path, and a checkpoint costs what changed, not every counter.
//! - The store records its layout version; a directory of the previous layout is upgraded when
//!   opened ([`upgrade`]), one of a newer layout refused.

mod accounts;
mod check;
mod compact;
mod counts;
mod export;
mod layout;
mod locks;
mod ops;
mod query;
mod record;
#[cfg(test)]
mod tests;
mod upgrade;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

pub use compact::CompactStats;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use sled::{IVec, Tree};

use super::changes::ChangeFeed;
use super::grants::StoredGrant;
use super::group_commit::GroupCommit;
use super::keys::{RealmId, Sid};
use super::record::{words, StoredSession};
use super::results_token::ResultsTokenCodec;
use super::sled_store::{random_bytes, RealmEntry};
use crate::address::address_bytes;
use crate::error::{Result, SessionError};
use counts::{Counters, Deltas};
use locks::Stripes;
use record::Interner;

/// The layout version this code writes: 2 as issue 10 made it, 3 with the client-address index.
pub const LAYOUT_VERSION: u32 = 3;
/// The tree every key of the v2 layout lives in.
const TREE: &str = "sessions_v2";
/// A counter checkpoint is written after this many journal entries (`SESSIONS_CHECKPOINT_EVERY`
/// in the environment overrides it).
const CHECKPOINT_EVERY: u64 = 20_000;
/// Counters by key, as stored.
type CounterValues = Vec<(Vec<u8>, i64)>;

/// The meta value naming the first journal entry the stored counters do not cover.
const COUNTERS_UPTO: &str = "counters_upto";
/// sled's page cache: enough for the indexes' upper levels and the hot records at a million
/// sessions, well within the resident-memory budget.
const CACHE_BYTES: u64 = 512 * 1024 * 1024;

/// How the store opened: for the start-up log line and the benchmark.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenStats {
    /// From the call to open until the store could answer.
    pub elapsed: Duration,
    /// Of which sled's own start (log recovery).
    pub sled_elapsed: Duration,
    /// Journal entries replayed on top of the checkpoint.
    pub replayed: u64,
    /// Resident memory of the process once open, in bytes (0 where unknown).
    pub resident_bytes: u64,
    /// Whether a directory of the previous layout was upgraded.
    pub upgraded: bool,
}

/// The sled store, v2 layout.
pub struct SledStoreV2 {
    db: sled::Db,
    tree: Tree,
    realms: ArcSwap<HashMap<String, Arc<RealmEntry>>>,
    realm_writes: Mutex<()>,
    results_tokens: ResultsTokenCodec,
    commit: GroupCommit,
    combiner: Combiner,
    interner: Interner,
    counters: Counters,
    /// Held shared by writers while they take a sequence number, apply their batch and update
    /// the counters; exclusively by the checkpoint for the moment it copies the counters.
    journal: RwLock<()>,
    next_seq: AtomicU64,
    journal_len: AtomicU64,
    checkpointing: Mutex<()>,
    /// Journal entries between checkpoints.
    checkpoint_every: u64,
    subjects: Stripes,
    sessions: Stripes,
    grants: Stripes,
    deliveries: Stripes,
    stats: OpenStats,
    /// Added to sled's generated ids (audit, delivery and realm ids): a compacted copy's
    /// generator starts again from 0, so it carries the old one's next id here.
    id_base: u64,
    /// Where creates and removals say which realm changed.
    changes: ChangeFeed,
}

impl SledStoreV2 {
    /// Opens (or creates) the store in a directory, upgrading one of the previous layout.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        compact::recover(path.as_ref())?;
        Self::with_config(sled::Config::new().path(path).cache_capacity(cache_bytes()))
    }

    /// Rewrites the store in `dir` into a fresh directory and swaps it in, crash-safely (see
    /// `compact.rs`): the result holds each live page once and opens without replaying a log.
    /// Offline: fails while the store is open elsewhere.
    pub fn compact(dir: impl AsRef<Path>) -> Result<CompactStats> {
        compact::compact(dir.as_ref())
    }

    /// A store in a temporary directory that is deleted when dropped, for tests.
    pub fn temporary() -> Result<Self> {
        Self::with_config(sled::Config::new().temporary(true))
    }

    fn with_config(config: sled::Config) -> Result<Self> {
        let started = Instant::now();
        let db = config.open()?;
        let sled_elapsed = started.elapsed();
        let tree = db.open_tree(TREE)?;
        let mut upgraded = false;
        let mut stored_version = LAYOUT_VERSION;
        match tree.get(layout::meta_key("version"))? {
            Some(v) => {
                let version = u32::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                    SessionError::Storage("the store's layout version is unreadable".into())
                })?);
                if version > LAYOUT_VERSION {
                    return Err(SessionError::Storage(format!(
                        "this data directory was written by a newer version of the session service (storage layout {version}; this version reads layouts up to {LAYOUT_VERSION}); upgrade the server, or restore a backup taken before the newer version ran"
                    )));
                }
                if version < upgrade::OLDEST_V2 {
                    return Err(SessionError::Storage(format!(
                        "unknown storage layout {version}"
                    )));
                }
                stored_version = version;
            }
            None => {
                // Nothing finished here yet: an interrupted upgrade or first start starts over.
                tree.clear()?;
                if upgrade::has_v1(&db)? {
                    upgrade::from_v1(&db, &tree)?;
                    upgraded = true;
                } else {
                    init(&tree, &[])?;
                }
                db.flush()?;
            }
        }
        // Done upgrading (also if a crash came after the version was written): the old trees go.
        upgrade::drop_v1(&db)?;
        let key = match tree.get(layout::meta_key("results_token_key"))? {
            Some(k) if k.len() == 32 => k.as_ref().try_into().expect("32 bytes"),
            _ => return Err(SessionError::Storage("results token key missing".into())),
        };
        let mut realms = HashMap::new();
        for item in tree.scan_prefix(layout::prefix(layout::GLOBAL, layout::REALM)) {
            let (_, v) = item?;
            let entry: RealmEntry = serde_json::from_slice(&v)
                .map_err(|e| SessionError::Storage(format!("corrupt realm record: {e}")))?;
            realms.insert(entry.name.clone(), Arc::new(entry));
        }
        let interner = Interner::load(&tree)?;
        let id_base =
            match tree.get(layout::meta_key("id_base"))? {
                Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                    SessionError::Storage("the store's id base is unreadable".into())
                })?),
                None => 0,
            };
        let mut store = SledStoreV2 {
            db,
            tree,
            realms: ArcSwap::from_pointee(realms),
            realm_writes: Mutex::new(()),
            results_tokens: ResultsTokenCodec::new(key),
            commit: GroupCommit::default(),
            combiner: Combiner::default(),
            interner,
            counters: Counters::default(),
            journal: RwLock::new(()),
            next_seq: AtomicU64::new(0),
            journal_len: AtomicU64::new(0),
            checkpointing: Mutex::new(()),
            checkpoint_every: std::env::var("SESSIONS_CHECKPOINT_EVERY")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(CHECKPOINT_EVERY)
                .max(1),
            subjects: Stripes::default(),
            sessions: Stripes::default(),
            grants: Stripes::default(),
            deliveries: Stripes::default(),
            stats: OpenStats::default(),
            id_base,
            changes: ChangeFeed::default(),
        };
        let replayed = store.load_counters()?;
        if stored_version < LAYOUT_VERSION {
            store.upgrade_from(stored_version)?;
            upgraded = true;
        }
        store.stats = OpenStats {
            elapsed: started.elapsed(),
            sled_elapsed,
            replayed,
            resident_bytes: resident_bytes(),
            upgraded,
        };
        Ok(store)
    }

    /// How the store opened.
    pub fn open_stats(&self) -> OpenStats {
        self.stats
    }

    /// A new id (audit entries, deliveries, realms), unique over the store's life, compactions
    /// included.
    fn next_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()? + self.id_base)
    }

    /// Blocks until everything written so far is on disk, sharing the flush with concurrent
    /// callers.
    pub fn wait_durable(&self) -> Result<()> {
        self.commit
            .wait_durable(|| self.db.flush().map(drop).map_err(SessionError::from))
    }

    /// Opens a tree of the same database for a companion store (API keys, admin accounts), so
    /// its writes share this store's durability.
    pub fn companion_tree(&self, name: &str) -> Result<Tree> {
        Ok(self.db.open_tree(format!("companion_{name}"))?)
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }

    /// Writes a checkpoint of the counters now (also done every [`CHECKPOINT_EVERY`] journal
    /// entries and when the store is dropped): the counters changed since the last one.
    pub fn checkpoint(&self) -> Result<()> {
        let _one = self
            .checkpointing
            .lock()
            .map_err(|_| SessionError::Storage("checkpoint lock poisoned".into()))?;
        self.checkpoint_locked(false)
    }

    /// Writes every counter anew, deleting what was stored before (after a recount).
    fn checkpoint_all(&self) -> Result<()> {
        let _one = self
            .checkpointing
            .lock()
            .map_err(|_| SessionError::Storage("checkpoint lock poisoned".into()))?;
        self.checkpoint_locked(true)
    }

    /// One batch stores the changed counters (or, with `all`, replaces every stored one), records
    /// the first journal entry they do not cover, and drops the journal before it.
    fn checkpoint_locked(&self, all: bool) -> Result<()> {
        let (changed, upto) = {
            let _all = self.journal.write().unwrap_or_else(|e| e.into_inner());
            let changed = if all {
                self.counters.take_changed();
                self.counters.snapshot()
            } else {
                self.counters.take_changed()
            };
            (changed, self.next_seq.load(Ordering::SeqCst))
        };
        let written = (|| -> Result<u64> {
            let mut batch = sled::Batch::default();
            if all {
                for tag in [layout::COUNTER, layout::CHECKPOINT] {
                    for k in self
                        .tree
                        .scan_prefix(layout::prefix(layout::GLOBAL, tag))
                        .keys()
                    {
                        batch.remove(k?);
                    }
                }
            }
            store_counters(&mut batch, &changed, upto);
            let mut removed = 0;
            for k in self
                .tree
                .range(layout::journal_key(0)..layout::journal_key(upto))
                .keys()
            {
                batch.remove(k?);
                removed += 1;
            }
            self.tree.apply_batch(batch)?;
            Ok(removed)
        })();
        match written {
            Ok(removed) => {
                self.journal_len.fetch_sub(removed, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                // Still to be stored by the next checkpoint; the journal still covers them.
                self.counters
                    .mark_changed(changed.into_iter().map(|(k, _)| k));
                Err(e)
            }
        }
    }

    /// The first journal entry the stored counters do not cover; `None` if no counters are
    /// stored in the current format.
    fn counters_upto(&self) -> Result<Option<u64>> {
        Ok(match self.tree.get(layout::meta_key(COUNTERS_UPTO))? {
            Some(v) => Some(u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                SessionError::Storage("corrupt counter checkpoint header".into())
            })?)),
            None => None,
        })
    }

    /// Loads the stored counters and replays the journal after them; answers how many entries
    /// it replayed. Counters stored in the earlier chunked format are converted; without any,
    /// recounts from the records.
    fn load_counters(&self) -> Result<u64> {
        let from = match self.counters_upto()? {
            Some(from) => {
                let mut all = Vec::new();
                for item in self
                    .tree
                    .scan_prefix(layout::prefix(layout::GLOBAL, layout::COUNTER))
                {
                    let (k, v) = item?;
                    all.push((k[5..].to_vec(), counts::decode_value(&v)?));
                }
                self.counters.load(all);
                from
            }
            None => match self.chunked_checkpoint()? {
                Some((from, all)) => {
                    self.counters.load(all);
                    from
                }
                None => {
                    tracing::warn!("no counter checkpoint: recounting from the records");
                    let counted = check::recount(self)?;
                    self.counters.replace(counted);
                    let mut batch = sled::Batch::default();
                    for k in self
                        .tree
                        .scan_prefix(layout::prefix(layout::GLOBAL, layout::JOURNAL))
                        .keys()
                    {
                        batch.remove(k?);
                    }
                    self.tree.apply_batch(batch)?;
                    self.checkpoint_all()?;
                    return Ok(0);
                }
            },
        };
        let mut next = from;
        let mut replayed = 0;
        for item in self
            .tree
            .range(layout::journal_key(from)..layout::journal_key(u64::MAX))
        {
            let (k, v) = item?;
            let seq = u64::from_be_bytes(
                k[5..]
                    .try_into()
                    .map_err(|_| SessionError::Storage("bad journal key".into()))?,
            );
            self.counters.apply(&Deltas::decode(&v)?);
            next = next.max(seq + 1);
            replayed += 1;
        }
        self.next_seq.store(next, Ordering::SeqCst);
        self.journal_len.store(replayed, Ordering::SeqCst);
        if self.counters_upto()?.is_none() {
            // Converted from the chunked format: store every counter in the current one.
            self.checkpoint_all()?;
        }
        Ok(replayed)
    }

    /// A checkpoint of the earlier format (every counter, in chunks): the first journal entry it
    /// does not cover and the counters.
    fn chunked_checkpoint(&self) -> Result<Option<(u64, CounterValues)>> {
        let (from, chunks) = match self.tree.get(layout::checkpoint_key(u32::MAX))? {
            Some(v) if v.len() == 12 => (
                u64::from_be_bytes(v[..8].try_into().expect("8")),
                u32::from_be_bytes(v[8..].try_into().expect("4")),
            ),
            Some(_) => return Err(SessionError::Storage("corrupt checkpoint header".into())),
            None => return Ok(None),
        };
        let mut all = Vec::new();
        for i in 0..chunks {
            let v = self
                .tree
                .get(layout::checkpoint_key(i))?
                .ok_or_else(|| SessionError::Storage(format!("checkpoint chunk {i} missing")))?;
            counts::decode_checkpoint_chunk(&v, &mut all)?;
        }
        Ok(Some((from, all)))
    }

    /// Applies one batch, with its counter changes as a journal entry, and then updates the
    /// counters in memory. Batches of concurrent callers are applied together ([`Combiner`]).
    fn write(&self, mut batch: Batch, deltas: &Deltas) -> Result<()> {
        if deltas.is_empty() {
            return self.combiner.apply(&self.tree, batch);
        }
        let entry = deltas.encode();
        {
            let _shared = self.journal.read().unwrap_or_else(|e| e.into_inner());
            let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
            batch.insert(layout::journal_key(seq), entry);
            self.combiner.apply(&self.tree, batch)?;
            self.counters.apply(deltas);
        }
        if self.journal_len.fetch_add(1, Ordering::SeqCst) + 1 >= self.checkpoint_every {
            if let Ok(_one) = self.checkpointing.try_lock() {
                if self.journal_len.load(Ordering::SeqCst) >= self.checkpoint_every {
                    self.checkpoint_locked(false)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn counter(&self, key: &[u8]) -> u64 {
        self.counters.get(key)
    }

    fn realm(&self, name: &str) -> Result<Arc<RealmEntry>> {
        self.realms
            .load()
            .get(name)
            .cloned()
            .ok_or_else(|| SessionError::RealmNotFound(name.to_owned()))
    }

    fn realm_names(&self) -> HashMap<RealmId, String> {
        self.realms
            .load()
            .values()
            .map(|r| (r.id, r.name.clone()))
            .collect()
    }

    /// The creation time of a session: from its sid, or for a migrated sid from beside it.
    fn created_of(&self, realm: RealmId, sid: &Sid) -> Result<Option<i64>> {
        if let Some(ms) = layout::created_of_sid(sid) {
            return Ok(Some(ms));
        }
        Ok(self
            .tree
            .get(layout::legacy_sid_key(realm, sid))?
            .and_then(|v| Some(i64::from_be_bytes(v.as_ref().try_into().ok()?))))
    }

    fn load(&self, realm: RealmId, sid: &Sid) -> Result<Option<StoredSession>> {
        match self.created_of(realm, sid)? {
            Some(created) => self.load_at(realm, created, sid),
            None => Ok(None),
        }
    }

    fn load_at(&self, realm: RealmId, created: i64, sid: &Sid) -> Result<Option<StoredSession>> {
        match self.tree.get(layout::record_key(realm, created, sid))? {
            Some(v) => Ok(Some(record::decode(created, sid, &v, &self.interner)?)),
            None => Ok(None),
        }
    }

    fn decode(&self, created: i64, sid: &Sid, v: &[u8]) -> Result<StoredSession> {
        record::decode(created, sid, v, &self.interner)
    }

    /// Adds a new session to a batch: record, index entries, and its counts to `deltas`.
    fn put_session(
        &self,
        batch: &mut Batch,
        deltas: &mut Deltas,
        realm: RealmId,
        s: &StoredSession,
    ) -> Result<()> {
        record::intern_all(s, &self.interner, &self.tree)?;
        batch.insert(
            &layout::record_key(realm, s.created_ms, &s.sid)[..],
            record::encode(s, &self.interner),
        );
        for (k, v) in index_entries(realm, s) {
            batch.insert(k, v);
        }
        deltas.session(realm, s, true);
        Ok(())
    }

    /// Deletes a session in a batch: the exact inverse of [`Self::put_session`].
    fn delete_session(batch: &mut Batch, deltas: &mut Deltas, realm: RealmId, s: &StoredSession) {
        batch.remove(&layout::record_key(realm, s.created_ms, &s.sid)[..]);
        for (k, _) in index_entries(realm, s) {
            batch.remove(k);
        }
        deltas.session(realm, s, false);
    }

    /// Replaces a session's record in a batch, moving only the index entries that change.
    fn replace_session(
        &self,
        batch: &mut Batch,
        deltas: &mut Deltas,
        realm: RealmId,
        old: &StoredSession,
        new: &StoredSession,
    ) -> Result<()> {
        record::intern_all(new, &self.interner, &self.tree)?;
        batch.insert(
            &layout::record_key(realm, new.created_ms, &new.sid)[..],
            record::encode(new, &self.interner),
        );
        let before = index_entries(realm, old);
        let after = index_entries(realm, new);
        for k in before.keys() {
            if !after.contains_key(k) {
                batch.remove(k.clone());
            }
        }
        for (k, v) in after {
            if before.get(&k) != Some(&v) {
                batch.insert(k, v);
            }
        }
        deltas.session_changed(realm, old, new);
        Ok(())
    }

    /// The grants whose grant-index keys start with `prefix`.
    fn grants_under(&self, realm: RealmId, prefix: &[u8]) -> Result<Vec<StoredGrant>> {
        let mut out = Vec::new();
        for k in self.tree.scan_prefix(prefix).keys() {
            let k = k?;
            let id: [u8; 16] = k[k.len() - 16..].try_into().expect("16 bytes");
            if let Some(g) = self.load_grant(realm, &id)? {
                out.push(g);
            }
        }
        Ok(out)
    }

    fn load_grant(&self, realm: RealmId, id: &[u8; 16]) -> Result<Option<StoredGrant>> {
        match self.tree.get(layout::grant_key(realm, id))? {
            Some(v) => Ok(Some(StoredGrant::decode(&v)?)),
            None => Ok(None),
        }
    }
}

impl Drop for SledStoreV2 {
    fn drop(&mut self) {
        // A clean close leaves a checkpoint with no journal to replay.
        if self.journal_len.load(Ordering::SeqCst) > 0 {
            if let Err(e) = self.checkpoint() {
                tracing::warn!("counter checkpoint at close failed: {e}");
            }
        }
        if let Err(e) = self.db.flush() {
            tracing::warn!("flush at close failed: {e}");
        }
    }
}

/// The writes of one operation: applied atomically, possibly in one sled batch with those of
/// concurrent operations. Later writes to a key win, as in `sled::Batch`.
#[derive(Default)]
pub(super) struct Batch {
    writes: Vec<(IVec, Option<IVec>)>,
}

impl Batch {
    pub(super) fn insert(&mut self, k: impl Into<IVec>, v: impl Into<IVec>) {
        self.writes.push((k.into(), Some(v.into())));
    }

    pub(super) fn remove(&mut self, k: impl Into<IVec>) {
        self.writes.push((k.into(), None));
    }
}

/// Group commit of writes. sled 0.34 rolls its log's IO buffer twice for every `apply_batch`
/// (`PageCache::pin_log`: a write and a `sync_file_range` each), whatever the batch's size, and
/// applies one batch at a time under its global write lock. So concurrent operations queue their
/// batches, and whoever holds the commit lock applies every batch queued, in queue order, as one
/// `apply_batch`: one pair of buffer rolls for the group. Each operation still sees its own
/// writes applied (all or none) when it returns; a failure fails every operation of the group.
#[derive(Default)]
struct Combiner {
    queue: Mutex<Vec<(Batch, Arc<Applied>)>>,
    commit: Mutex<()>,
}

/// Set by the leader of a group once its batch is applied: the outcome.
type Applied = OnceLock<std::result::Result<(), String>>;

impl Combiner {
    fn apply(&self, tree: &Tree, batch: Batch) -> Result<()> {
        let done = Arc::new(OnceLock::new());
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((batch, done.clone()));
        let _leader = self.commit.lock().unwrap_or_else(|e| e.into_inner());
        if done.get().is_none() {
            let group = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
            let mut writes = sled::Batch::default();
            let mut waiting = Vec::with_capacity(group.len());
            for (b, slot) in group {
                for (k, v) in b.writes {
                    match v {
                        Some(v) => writes.insert(k, v),
                        None => writes.remove(k),
                    }
                }
                waiting.push(slot);
            }
            let result = tree.apply_batch(writes).map_err(|e| e.to_string());
            for slot in waiting {
                let _ = slot.set(result.clone());
            }
        }
        match done.get() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(SessionError::Storage(e.clone())),
            None => Err(SessionError::Storage("a write was not applied".into())),
        }
    }
}

/// Writes what a new, empty store (or a finished upgrade) holds besides its data: the results
/// token key, the counters, and last the layout version.
fn init(tree: &Tree, counters: &[(Vec<u8>, i64)]) -> Result<()> {
    let mut batch = sled::Batch::default();
    if tree.get(layout::meta_key("results_token_key"))?.is_none() {
        let k: [u8; 32] = random_bytes()?;
        batch.insert(layout::meta_key("results_token_key"), &k[..]);
    }
    store_counters(&mut batch, counters, 0);
    batch.insert(
        layout::meta_key("version"),
        &LAYOUT_VERSION.to_be_bytes()[..],
    );
    tree.apply_batch(batch)?;
    Ok(())
}

/// Stores counters (deleting those at zero) and the first journal entry they do not cover.
fn store_counters(batch: &mut sled::Batch, counters: &[(Vec<u8>, i64)], upto: u64) {
    for (k, v) in counters {
        match v {
            0 => batch.remove(layout::counter_key(k)),
            v => batch.insert(layout::counter_key(k), counts::encode_value(*v)),
        }
    }
    batch.insert(layout::meta_key(COUNTERS_UPTO), &upto.to_be_bytes()[..]);
}

/// Every index entry (key → value) a stored session has besides its record.
fn index_entries(realm: RealmId, s: &StoredSession) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let legacy = layout::created_of_sid(&s.sid) != Some(s.created_ms);
    let locator = if legacy {
        s.created_ms.to_be_bytes().to_vec()
    } else {
        Vec::new()
    };
    out.insert(
        layout::timed_key(realm, layout::LAST_ACCESS, s.last_access_ms, &s.sid).to_vec(),
        locator.clone(),
    );
    out.insert(
        layout::timed_key(realm, layout::EXPIRY, s.effective_expiry_ms(), &s.sid).to_vec(),
        locator.clone(),
    );
    out.insert(
        layout::attr_key(
            realm,
            layout::SUBJECT,
            s.subject_id.as_bytes(),
            s.created_ms,
            &s.sid,
        ),
        Vec::new(),
    );
    for c in &s.client_ids {
        out.insert(
            layout::attr_key(realm, layout::CLIENT, c.as_bytes(), s.created_ms, &s.sid),
            Vec::new(),
        );
    }
    if let Some(address) = s.ip.as_deref().and_then(address_bytes) {
        out.insert(
            layout::address_key(realm, &address, s.created_ms, &s.sid).to_vec(),
            Vec::new(),
        );
    }
    if let Some(name) = &s.display_name {
        for w in words(name) {
            out.insert(
                layout::word_key(realm, &w, s.created_ms, &s.sid),
                Vec::new(),
            );
        }
    }
    if legacy {
        out.insert(
            layout::legacy_sid_key(realm, &s.sid).to_vec(),
            s.created_ms.to_be_bytes().to_vec(),
        );
        let mut v = realm.to_be_bytes().to_vec();
        v.extend_from_slice(&s.created_ms.to_be_bytes());
        v.extend_from_slice(&s.sid);
        out.insert(layout::legacy_token_key(&s.token_hash), v);
    }
    out
}

/// Every index entry a grant has (key → value) besides its record.
fn grant_entries(realm: RealmId, g: &StoredGrant) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = vec![
        (
            [
                &layout::grant_subject_prefix(realm, &g.subject_id)[..],
                &g.id,
            ]
            .concat(),
            Vec::new(),
        ),
        (
            [
                &layout::grant_expiry_prefix(realm)[..],
                &layout::time(g.expires_ms),
                &g.id,
            ]
            .concat(),
            Vec::new(),
        ),
    ];
    if let Some(sid) = &g.sid {
        out.push((
            [&layout::grant_session_prefix(realm, sid)[..], &g.id].concat(),
            Vec::new(),
        ));
    }
    if let Some(h) = &g.token_hash {
        let mut v = realm.to_be_bytes().to_vec();
        v.extend_from_slice(&g.id);
        out.push((layout::grant_token_key(h), v));
    }
    out
}

/// The lock key of a session.
fn session_lock(realm: RealmId, sid: &Sid) -> [u8; 20] {
    super::keys::session_key(realm, sid)
}

/// SHA-256 of bytes.
fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Equality of two hashes that takes as long whatever they hold.
fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// sled's page cache size: [`CACHE_BYTES`], or `SESSIONS_CACHE_MB` from the environment.
fn cache_bytes() -> u64 {
    std::env::var("SESSIONS_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(CACHE_BYTES, |mb| mb * 1024 * 1024)
}

/// The process's resident memory, from `/proc/self/status` (0 where there is none).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
