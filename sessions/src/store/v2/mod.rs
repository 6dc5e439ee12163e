//! The embedded store, [`SledStoreV2`]: one sled tree, one atomic batch per operation, exact
//! counts in memory. Split by concept as the PostgreSQL store is (the sessions README has the
//! table): this file holds the store, its opening and closing, and the [`SessionStore`] impl,
//! each method handing over to the inherent `*_impl` method in its concept's file.
//!
//! - Every key starts with the realm id and a one-byte tag ([`layout`]). A session is its record
//!   (keyed by creation time and a time-ordered sid, so the records are the creation-order
//!   index) and a handful of small index entries ([`sessions`]); its token is `sid ‖ secret`, the
//!   record holds the secret's SHA-256, so validation is one point read.
//! - Every create, refresh, removal and reap is one `apply_batch`, built before sled's write lock
//!   is taken ([`commit`]); quota checks, a grant added while its session ends and a refresh
//!   racing a removal are serialised by in-process locks striped by subject, session, grant and
//!   delivery ([`locks`]), not by sled transactions. One process owns the directory (sled locks
//!   it).
//! - Counts live in memory ([`counters`]); each batch that changes them carries its changes as a
//!   journal entry; every [`journal::CHECKPOINT_EVERY`] entries and at a clean close, a
//!   checkpoint stores the counters that changed (one key each) and drops the journal before it;
//!   opening loads the stored counters and replays the journal ([`journal`]). So counts stay
//!   exact across a crash, with no read on the write path, and a checkpoint costs what changed,
//!   not every counter.
//! - The store records its layout version; a v1 directory is upgraded when opened ([`upgrade`]),
//!   one of a newer layout refused.

mod accounts;
mod anomaly;
mod audit;
mod check;
mod commit;
mod compact;
mod counters;
pub mod dir_lock;
mod ended;
mod ending;
mod export;
mod grants;
mod journal;
mod layout;
mod locks;
mod outbox;
mod query;
mod realms;
mod record;
mod sessions;
mod stats;
#[cfg(test)]
mod tests;
mod upgrade;
mod v1_keys;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub use compact::CompactStats;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sled::Tree;

use super::changes::ChangeFeed;
use super::results_token::ResultsTokenCodec;
use super::rules::random_bytes;
use super::shared::blocking_section;
use super::{DueCursor, SessionStore};
use crate::delivery::{AttemptResult, Delivery, DeliveryPage, DeliveryStatus, NewDelivery};
use crate::ended::{EndedPage, EndedQuery};
use crate::error::{Result, SessionError};
use crate::grant::{Grant, GrantOwner, NewGrant};
use crate::model::{
    AuditEntry, Client, ClientRegistration, CreatedSession, EndAllSessions, EndOutcome,
    EndSessions, NewSession, QueryResult, Realm, RealmSettingsUpdate, Session, SessionQuery,
};
use crate::network::{LastAddress, Network};
use crate::stats::{Span, StatsBucket};
use commit::{ApplyGroup, FlushGroup};
use counters::Counters;
use locks::Stripes;
use realms::RealmEntry;
use record::Interner;

/// The layout version this code writes: 2 is one tree with the records as the creation-order
/// index, 3 adds the client-address index, 4 the device counters, 5 networks in records and
/// history entries (nothing to rewrite: the version keeps older servers from reading them).
pub const LAYOUT_VERSION: u32 = 5;
/// The tree every key of the v2 layout lives in.
const TREE: &str = "sessions_v2";
/// sled's page cache unless the opener says otherwise ([`SledStoreV2::open_with_cache`]; the
/// server's `--cache-mb`): enough for the indexes' upper levels and the hot records at a million
/// sessions.
pub const DEFAULT_CACHE_MB: u32 = 512;

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
    /// Whether the directory was upgraded from an older layout.
    pub upgraded: bool,
}

/// The sled store, v2 layout.
pub struct SledStoreV2 {
    db: sled::Db,
    tree: Tree,
    realms: ArcSwap<HashMap<String, Arc<RealmEntry>>>,
    realm_writes: Mutex<()>,
    results_tokens: ResultsTokenCodec,
    /// Applies concurrent operations' batches as one.
    apply_group: ApplyGroup,
    /// Shares one flush among callers waiting for durability.
    flush_group: FlushGroup,
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
    /// Opens (or creates) the store in a directory, upgrading one of an older layout, with a
    /// page cache of [`DEFAULT_CACHE_MB`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_MB)
    }

    /// As [`open`](Self::open), with a page cache of `cache_mb` megabytes: the pages sled keeps
    /// decoded in memory (what does not fit is read again from the file, through the operating
    /// system's page cache).
    pub fn open_with_cache(path: impl AsRef<Path>, cache_mb: u32) -> Result<Self> {
        compact::recover(path.as_ref())?;
        let bytes = u64::from(cache_mb) << 20;
        Self::with_config(sled::Config::new().path(path).cache_capacity(bytes))
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
        match tree.get(layout::MetaKey::Version.encode())? {
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
        let key = match tree.get(layout::MetaKey::ResultsTokenKey.encode())? {
            Some(k) if k.len() == 32 => k.as_ref().try_into().expect("32 bytes"),
            _ => return Err(SessionError::Storage("results token key missing".into())),
        };
        let mut realms = HashMap::new();
        for item in tree.scan_prefix(layout::RealmKey::prefix()) {
            let (_, v) = item?;
            let entry: RealmEntry = serde_json::from_slice(&v)
                .map_err(|e| SessionError::Storage(format!("corrupt realm record: {e}")))?;
            realms.insert(entry.name.clone(), Arc::new(entry));
        }
        let interner = Interner::load(&tree)?;
        let id_base =
            match tree.get(layout::MetaKey::IdBase.encode())? {
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
            apply_group: ApplyGroup::default(),
            flush_group: FlushGroup::default(),
            interner,
            counters: Counters::default(),
            journal: RwLock::new(()),
            next_seq: AtomicU64::new(0),
            journal_len: AtomicU64::new(0),
            checkpointing: Mutex::new(()),
            checkpoint_every: std::env::var("SESSIONS_CHECKPOINT_EVERY")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(journal::CHECKPOINT_EVERY)
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
    /// callers; on an async runtime's worker, as a blocking section
    /// ([`blocking_section`](crate::store::shared::blocking_section)).
    pub fn wait_durable(&self) -> Result<()> {
        crate::store::shared::blocking_section(|| {
            self.flush_group
                .wait_durable(|| self.db.flush().map(drop).map_err(SessionError::from))
        })
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

/// Writes what a new, empty store (or a finished upgrade) holds besides its data: the results
/// token key, the counters, and last the layout version.
fn init(tree: &Tree, counters: &[(Vec<u8>, i64)]) -> Result<()> {
    let mut batch = sled::Batch::default();
    if tree
        .get(layout::MetaKey::ResultsTokenKey.encode())?
        .is_none()
    {
        let k: [u8; 32] = random_bytes()?;
        batch.insert(layout::MetaKey::ResultsTokenKey.encode(), &k[..]);
    }
    journal::store_counters(&mut batch, counters, 0);
    batch.insert(
        layout::MetaKey::Version.encode(),
        &LAYOUT_VERSION.to_be_bytes()[..],
    );
    tree.apply_batch(batch)?;
    Ok(())
}

/// SHA-256 of bytes.
fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Equality of two hashes that takes as long whatever they hold.
fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

#[async_trait]
impl SessionStore for SledStoreV2 {
    async fn put_realm(
        &self,
        name: &str,
        update: &RealmSettingsUpdate,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Realm> {
        self.put_realm_impl(name, update, actor, now)
    }

    async fn get_realm(&self, name: &str) -> Result<Realm> {
        self.get_realm_impl(name)
    }

    async fn list_realms(&self) -> Result<Vec<Realm>> {
        self.list_realms_impl()
    }

    async fn put_client(
        &self,
        realm: &str,
        client_id: &str,
        registration: &ClientRegistration,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Client> {
        self.put_client_impl(realm, client_id, registration, actor, now)
    }

    async fn get_client(&self, realm: &str, client_id: &str) -> Result<Client> {
        self.get_client_impl(realm, client_id)
    }

    async fn list_clients(&self, realm: &str) -> Result<Vec<Client>> {
        self.list_clients_impl(realm)
    }

    async fn delete_client(
        &self,
        realm: &str,
        client_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.delete_client_impl(realm, client_id, actor, now)
    }

    async fn create_located_session(
        &self,
        realm: &str,
        new: &NewSession,
        network: Option<Network>,
        now: DateTime<Utc>,
    ) -> Result<CreatedSession> {
        self.create_session_impl(realm, new, network, now)
    }

    async fn note_address(
        &self,
        realm: &str,
        sid: &str,
        last: &LastAddress,
    ) -> Result<Option<Session>> {
        self.note_address_impl(realm, sid, last)
    }

    async fn validate(
        &self,
        realm: &str,
        token: &str,
        refresh: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>> {
        self.validate_impl(realm, token, refresh, now)
    }

    async fn logout(&self, realm: &str, token: &str, now: DateTime<Utc>) -> Result<bool> {
        self.logout_impl(realm, token, now)
    }

    async fn add_client(&self, realm: &str, sid: &str, client_id: &str) -> Result<Session> {
        self.add_client_impl(realm, sid, client_id)
    }

    async fn get_session(&self, realm: &str, sid: &str) -> Result<Session> {
        self.get_session_impl(realm, sid)
    }

    async fn get_properties(
        &self,
        realm: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>> {
        self.get_properties_impl(realm, token, now)
    }

    async fn set_properties(
        &self,
        realm: &str,
        token: &str,
        properties: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>> {
        self.set_properties_impl(realm, token, properties, now)
    }

    async fn query(&self, realm: &str, query: &SessionQuery) -> Result<QueryResult> {
        let realm = self.realm(realm)?;
        self.run_query(&realm, query, true)
    }

    async fn query_uncounted(&self, realm: &str, query: &SessionQuery) -> Result<QueryResult> {
        let realm = self.realm(realm)?;
        self.run_query(&realm, query, false)
    }

    async fn end_sessions(
        &self,
        realm: &str,
        request: &EndSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<EndOutcome> {
        blocking_section(|| self.end_sessions_impl(realm, request, actor, now))
    }

    async fn end_all_sessions(
        &self,
        realm: &str,
        request: &EndAllSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<EndOutcome> {
        blocking_section(|| self.end_all_sessions_impl(realm, request, actor, now))
    }

    async fn reap_expired(&self, now: DateTime<Utc>, batch: usize) -> Result<usize> {
        blocking_section(|| self.reap_expired_impl(now, batch))
    }

    async fn stats(
        &self,
        realm: &str,
        span: Span,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatsBucket>> {
        self.stats_impl(realm, span, from, to)
    }

    async fn prune_stats(&self, now: DateTime<Utc>) -> Result<usize> {
        blocking_section(|| self.prune_stats_impl(now))
    }

    fn durable_flushes(&self) -> u64 {
        self.flush_group.flush_count()
    }

    fn changes(&self) -> &ChangeFeed {
        &self.changes
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.record_audit_impl(entry)
    }

    async fn audit_log(&self, before: Option<u64>, count: usize) -> Result<Vec<(u64, AuditEntry)>> {
        self.audit_log_impl(before, count)
    }

    async fn create_grant(
        &self,
        realm: &str,
        grant: &NewGrant,
        now: DateTime<Utc>,
    ) -> Result<Grant> {
        self.create_grant_impl(realm, grant, now)
    }

    async fn introspect(
        &self,
        realm: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Grant>> {
        self.introspect_impl(realm, token, now)
    }

    async fn revoke_token(
        &self,
        realm: &str,
        token: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Grant>> {
        self.revoke_token_impl(realm, token, actor, now)
    }

    async fn revoke_subject_grants(
        &self,
        realm: &str,
        subject_id: &str,
        client_ids: Option<&[String]>,
        reason: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        blocking_section(|| {
            self.revoke_subject_grants_impl(realm, subject_id, client_ids, reason, actor, now)
        })
    }

    async fn list_grants(
        &self,
        realm: &str,
        owner: &GrantOwner,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>> {
        self.list_grants_impl(realm, owner, now)
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        per_client: usize,
        cursor: &mut DueCursor,
        skip: &crate::store::SkipDelivery<'_>,
    ) -> Result<Vec<Delivery>> {
        self.due_deliveries_impl(now, limit, per_client, cursor, skip)
    }

    async fn record_attempt(
        &self,
        attempted: &Delivery,
        jti: &str,
        result: &AttemptResult,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        self.record_attempt_impl(attempted, jti, result, now)
    }

    async fn retry_delivery(
        &self,
        realm: &str,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        self.retry_delivery_impl(realm, id, actor, now)
    }

    async fn purge_delivered(&self, cutoff: DateTime<Utc>, batch: usize) -> Result<usize> {
        blocking_section(|| self.purge_delivered_impl(cutoff, batch))
    }

    async fn queue_delivery(&self, new: &NewDelivery, now: DateTime<Utc>) -> Result<Delivery> {
        self.queue_delivery_impl(new, now)
    }

    async fn pending_deliveries(
        &self,
        realm: &str,
        client_id: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        self.pending_deliveries_impl(realm, client_id, limit)
    }

    async fn get_delivery(&self, realm: &str, id: u64) -> Result<Delivery> {
        self.get_delivery_impl(realm, id)
    }

    async fn list_deliveries(
        &self,
        realm: &str,
        status: Option<DeliveryStatus>,
        before: Option<u64>,
        count: usize,
    ) -> Result<DeliveryPage> {
        self.list_deliveries_impl(realm, status, before, count)
    }

    async fn ended_sessions(&self, realm: &str, query: &EndedQuery) -> Result<EndedPage> {
        self.ended_sessions_impl(realm, query)
    }

    async fn prune_ended(&self, cutoff: DateTime<Utc>, batch: usize) -> Result<usize> {
        blocking_section(|| self.prune_ended_impl(cutoff, batch))
    }
}
