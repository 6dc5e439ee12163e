//! [`PostgresStore`]: the session store on PostgreSQL, for several servers on one database.
//!
//! Same semantics as the embedded store (the conformance suite runs on both): exact counts kept
//! in counter rows changed in the same transaction as what they count ([`counters`]), keyset
//! paging with results tokens signed by a key kept in the database (so a token is valid on every
//! server), display-name word-prefix search as a range of the word index ([`query`]), removal
//! with flags in one transaction per batch ([`ending`]), quotas under a per-subject advisory
//! lock ([`sessions`]), an expiry reaper and an outbox that several servers run at once without
//! double work (`FOR UPDATE SKIP LOCKED`, [`outbox`]). See the crate's README for the design.

mod accounts;
mod audit;
mod check;
mod counters;
mod db;
mod ended;
mod ending;
mod grants;
mod import;
mod notify;
mod outbox;
mod query;
mod realms;
mod rows;
mod sessions;
mod stats;
mod validated;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ::sessions::delivery::{AttemptResult, Delivery, DeliveryPage, DeliveryStatus, NewDelivery};
use ::sessions::ended::{EndedPage, EndedQuery};
use ::sessions::grant::{Grant, GrantOwner, NewGrant};
use ::sessions::model::{
    AuditEntry, Client, ClientRegistration, CreatedSession, EndAllSessions, EndOutcome,
    EndSessions, NewSession, QueryResult, Realm, RealmSettingsUpdate, Session, SessionQuery,
};
use ::sessions::stats::{Span, StatsBucket};
use ::sessions::store::shared::{random_bytes, ResultsTokenCodec};
use ::sessions::store::{ChangeFeed, DueCursor, SessionStore};
use ::sessions::{LastAddress, Network, Result, SessionError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use db::db_run;
pub use db::{DEFAULT_MAX_CONNECTIONS, DEFAULT_STATEMENT_TIMEOUT};
pub use import::ROW_COUNTS;
pub use validated::DEFAULT_VALIDATION_CACHE;

/// How a [`PostgresStore`] uses its database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Most connections the store opens.
    pub max_connections: usize,
    /// Longest any statement of the store may run (PostgreSQL's `statement_timeout`, set on
    /// every pooled connection); past it the statement is cancelled and its call fails. `None`:
    /// the database's own setting. Schema migrations at start-up run without it.
    pub statement_timeout: Option<Duration>,
    /// Most sessions kept in memory to answer validations without the database (0: none); see
    /// [`validated`] for how they stay coherent across servers.
    pub validation_cache: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
            validation_cache: DEFAULT_VALIDATION_CACHE,
        }
    }
}

/// The session store on a PostgreSQL database. Its connections and the task that listens for
/// changes run on the tokio runtime it was opened on, and end when it is dropped.
pub struct PostgresStore {
    db: Arc<db::Db>,
    realms: realms::RealmCache,
    results_tokens: ResultsTokenCodec,
    /// This store's name on the deliveries its worker has claimed.
    claimer: Uuid,
    /// Which realms' sessions changed, through any server ([`notify`]).
    changes: Arc<ChangeFeed>,
    /// Realms whose sessions changed through this store, to announce to every server.
    announcements: Arc<notify::Announcements>,
    /// The task that announces and listens for changes; stopped with the store.
    _listener: Background,
    /// The task that folds count deltas into the counters; stopped with the store.
    _folder: Background,
}

/// A background task of the store (listening for changes, folding count deltas), stopped when
/// dropped, with its store.
pub(crate) struct Background(tokio::task::AbortHandle);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A 64-bit advisory lock key for a name of a kind (a realm, a subject of a realm).
fn lock_key(kind: &str, name: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(kind.as_bytes())
        .chain_update([0])
        .chain_update(name.as_bytes())
        .finalize();
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

impl PostgresStore {
    /// Connects to the database a `postgres://` URL names (with the default
    /// [`PostgresOptions`]: up to [`DEFAULT_MAX_CONNECTIONS`] connections, statements cut off
    /// after [`DEFAULT_STATEMENT_TIMEOUT`]), brings its schema up to date, and creates the
    /// results-token key the first time. The store's connections and the task that listens for
    /// changes run on the caller's tokio runtime.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        Self::open_with_options(url, &PostgresOptions::default()).await
    }

    /// As [`open`](Self::open), with at most `max_connections` connections.
    pub async fn open_with(url: &str, max_connections: usize) -> Result<PostgresStore> {
        Self::open_with_options(
            url,
            &PostgresOptions {
                max_connections,
                ..PostgresOptions::default()
            },
        )
        .await
    }

    /// As [`open`](Self::open), with these options.
    pub async fn open_with_options(url: &str, options: &PostgresOptions) -> Result<PostgresStore> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| SessionError::invalid(format!("the PostgreSQL URL is not valid: {e}")))?;
        if config.get_application_name().is_none() {
            config.application_name("sessions");
        }
        // A host that does not answer (a machine gone, not a server stopped) is given up on in
        // seconds, so that the next host of a multi-host URL is tried.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(db::DEFAULT_CONNECT_TIMEOUT);
        }
        let validations = Arc::new(validated::ValidationCache::new(options.validation_cache));
        let db = db::Db::new(
            config,
            options.max_connections,
            options.statement_timeout,
            validations.clone(),
        )?;
        db.migrate().await?;
        let fresh: [u8; 32] = random_bytes()?;
        // Whoever inserts first wins; everyone reads the same key.
        let key: Vec<u8> = db_run!(db, async |tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('results_token_key', $1)
                     ON CONFLICT (key) DO NOTHING",
                &[&&fresh[..]],
            )
            .await?;
            Ok(tx
                .query_one(
                    "SELECT value FROM meta WHERE key = 'results_token_key'",
                    &[],
                )
                .await?
                .try_get(0)?)
        })
        .await?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| SessionError::Storage("the results token key is not 32 bytes".into()))?;
        let changes = Arc::new(ChangeFeed::default());
        let announcements = Arc::new(notify::Announcements::default());
        let listener = notify::start(
            db.config().clone(),
            changes.clone(),
            announcements.clone(),
            validations,
        )
        .await?;
        let db = Arc::new(db);
        Ok(PostgresStore {
            _folder: counters::start_folding(db.clone()),
            db,
            realms: realms::RealmCache::default(),
            results_tokens: ResultsTokenCodec::new(key),
            claimer: Uuid::new_v4(),
            changes,
            announcements,
            _listener: listener,
        })
    }

    /// How many validations this store answered from memory (without the database) so far.
    pub fn validations_from_memory(&self) -> u64 {
        self.db.validations().answered()
    }

    /// Sessions of `realm` came or went through this store (the write committed): every server's
    /// change feed hears of it shortly.
    fn sessions_changed(&self, realm: &str) {
        self.announcements.realm_changed(realm);
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn put_realm(
        &self,
        name: &str,
        update: &RealmSettingsUpdate,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Realm> {
        self.put_realm_impl(name, update, actor, now).await
    }

    async fn get_realm(&self, name: &str) -> Result<Realm> {
        self.get_realm_impl(name).await
    }

    async fn list_realms(&self) -> Result<Vec<Realm>> {
        self.list_realms_impl().await
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
            .await
    }

    async fn get_client(&self, realm: &str, client_id: &str) -> Result<Client> {
        self.get_client_impl(realm, client_id).await
    }

    async fn list_clients(&self, realm: &str) -> Result<Vec<Client>> {
        self.list_clients_impl(realm).await
    }

    async fn delete_client(
        &self,
        realm: &str,
        client_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.delete_client_impl(realm, client_id, actor, now).await
    }

    async fn create_located_session(
        &self,
        realm: &str,
        new: &NewSession,
        network: Option<Network>,
        now: DateTime<Utc>,
    ) -> Result<CreatedSession> {
        self.create_session_impl(realm, new, network, now).await
    }

    async fn note_address(
        &self,
        realm: &str,
        sid: &str,
        last: &LastAddress,
    ) -> Result<Option<Session>> {
        self.note_address_impl(realm, sid, last).await
    }

    async fn validate(
        &self,
        realm: &str,
        token: &str,
        refresh: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>> {
        self.validate_impl(realm, token, refresh, now).await
    }

    async fn logout(&self, realm: &str, token: &str, now: DateTime<Utc>) -> Result<bool> {
        self.logout_impl(realm, token, now).await
    }

    async fn add_client(&self, realm: &str, sid: &str, client_id: &str) -> Result<Session> {
        self.add_client_impl(realm, sid, client_id).await
    }

    async fn get_session(&self, realm: &str, sid: &str) -> Result<Session> {
        self.get_session_impl(realm, sid).await
    }

    async fn get_properties(
        &self,
        realm: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>> {
        self.get_properties_impl(realm, token, now).await
    }

    async fn set_properties(
        &self,
        realm: &str,
        token: &str,
        properties: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>> {
        self.set_properties_impl(realm, token, properties, now)
            .await
    }

    async fn query(&self, realm: &str, query: &SessionQuery) -> Result<QueryResult> {
        self.query_impl(realm, query).await
    }

    async fn end_sessions(
        &self,
        realm: &str,
        request: &EndSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<EndOutcome> {
        self.end_sessions_impl(realm, request, actor, now).await
    }

    async fn end_all_sessions(
        &self,
        realm: &str,
        request: &EndAllSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<EndOutcome> {
        self.end_all_sessions_impl(realm, request, actor, now).await
    }

    async fn reap_expired(&self, now: DateTime<Utc>, batch: usize) -> Result<usize> {
        self.reap_expired_impl(now, batch).await
    }

    async fn stats(
        &self,
        realm: &str,
        span: Span,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatsBucket>> {
        self.stats_impl(realm, span, from, to).await
    }

    async fn prune_stats(&self, now: DateTime<Utc>) -> Result<usize> {
        self.prune_stats_impl(now).await
    }

    /// Every write is a committed transaction: PostgreSQL flushes its log at each commit, so
    /// the store has no flushes of its own to count.
    fn durable_flushes(&self) -> u64 {
        0
    }

    fn changes(&self) -> &ChangeFeed {
        &self.changes
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.record_audit_impl(entry).await
    }

    async fn audit_log(&self, before: Option<u64>, count: usize) -> Result<Vec<(u64, AuditEntry)>> {
        self.audit_log_impl(before, count).await
    }

    async fn create_grant(
        &self,
        realm: &str,
        grant: &NewGrant,
        now: DateTime<Utc>,
    ) -> Result<Grant> {
        self.create_grant_impl(realm, grant, now).await
    }

    async fn introspect(
        &self,
        realm: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Grant>> {
        self.introspect_impl(realm, token, now).await
    }

    async fn revoke_token(
        &self,
        realm: &str,
        token: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Grant>> {
        self.revoke_token_impl(realm, token, actor, now).await
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
        self.revoke_subject_grants_impl(realm, subject_id, client_ids, reason, actor, now)
            .await
    }

    async fn list_grants(
        &self,
        realm: &str,
        owner: &GrantOwner,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>> {
        self.list_grants_impl(realm, owner, now).await
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        per_client: usize,
        cursor: &mut DueCursor,
        skip: &::sessions::store::SkipDelivery<'_>,
    ) -> Result<Vec<Delivery>> {
        self.due_deliveries_impl(now, limit, per_client, cursor, skip)
            .await
    }

    async fn record_attempt(
        &self,
        attempted: &Delivery,
        jti: &str,
        result: &AttemptResult,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        self.record_attempt_impl(attempted, jti, result, now).await
    }

    async fn retry_delivery(
        &self,
        realm: &str,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        self.retry_delivery_impl(realm, id, actor, now).await
    }

    async fn purge_delivered(&self, cutoff: DateTime<Utc>, batch: usize) -> Result<usize> {
        self.purge_delivered_impl(cutoff, batch).await
    }

    async fn queue_delivery(&self, new: &NewDelivery, now: DateTime<Utc>) -> Result<Delivery> {
        self.queue_delivery_impl(new, now).await
    }

    async fn pending_deliveries(
        &self,
        realm: &str,
        client_id: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        self.pending_deliveries_impl(realm, client_id, limit).await
    }

    async fn get_delivery(&self, realm: &str, id: u64) -> Result<Delivery> {
        self.get_delivery_impl(realm, id).await
    }

    async fn list_deliveries(
        &self,
        realm: &str,
        status: Option<DeliveryStatus>,
        before: Option<u64>,
        count: usize,
    ) -> Result<DeliveryPage> {
        self.list_deliveries_impl(realm, status, before, count)
            .await
    }

    async fn ended_sessions(&self, realm: &str, query: &EndedQuery) -> Result<EndedPage> {
        self.ended_sessions_impl(realm, query).await
    }

    async fn prune_ended(&self, cutoff: DateTime<Utc>, batch: usize) -> Result<usize> {
        self.prune_ended_impl(cutoff, batch).await
    }
}
