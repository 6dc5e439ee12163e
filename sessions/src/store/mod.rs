//! Storage: the narrow [`SessionStore`] trait every backend implements, and the embedded sled
//! backend, [`SledStore`] (the v2 layout, [`SledStoreV2`]).
//!
//! A directory of the v1 layout (one tree per entity and index) is upgraded in place when
//! [`SledStore`] opens it; its records are read with the decoders in `record`, `grants` and
//! `outbox`. What both backends share beside the trait is in [`shared`] (and `rules`, which it
//! re-exports); the README has a table of where each concept lives in either backend.
//!
//! Methods are `async` (boxed futures, through `async_trait`, so that `dyn SessionStore` works):
//! a backend on the network (PostgreSQL) awaits its database without holding a thread; the
//! embedded store answers reads inline from memory and runs only its waits for the disk as
//! blocking sections ([`shared::blocking_section`]).

mod accounts;
pub mod changes;
mod check;
mod ended;
pub mod export;
mod grants;
pub mod huge_pages;
mod keys;
mod outbox;
mod query;
mod record;
mod results_token;
mod rules;
pub mod shared;
mod v2;

pub use accounts::{AccountStore, AdminRecord, AdminRole, ApiKeyRecord, SigningKeyRecord};
pub use changes::{ChangeFeed, ChangeSubscription, SessionsChanged};
pub use check::CheckReport;
pub use record::parse_sid;
pub use rules::MAX_LISTED_DELIVERIES;
/// The store the product runs: the v2 layout.
pub use v2::SledStoreV2 as SledStore;
pub use v2::{
    dir_lock, resident_bytes, CompactStats, OpenStats, SledStoreV2, DEFAULT_CACHE_MB,
    LAYOUT_VERSION,
};

/// Where the next look at the outbox starts: after the client queue the last one stopped in.
/// Opaque; start with the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DueCursor(Vec<u8>);

impl DueCursor {
    /// A cursor a backend made (its own encoding of the queue it stopped in).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        DueCursor(bytes)
    }

    /// The backend's encoding of the queue the last look stopped in; empty at the start.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::delivery::{AttemptResult, Delivery, DeliveryPage, DeliveryStatus, NewDelivery};
use crate::ended::{EndedPage, EndedQuery};
use crate::error::Result;
use crate::grant::{Grant, GrantOwner, NewGrant};
use crate::model::{
    AuditEntry, Client, ClientRegistration, CreatedSession, EndAllSessions, EndOutcome,
    EndSessions, NewSession, QueryResult, Realm, RealmSettingsUpdate, Session, SessionQuery,
};
use crate::network::{LastAddress, Network};
use crate::stats::{Span, StatsBucket};

/// Whether the delivery worker passes over a due delivery: `(realm, client_id, id)`, true for one
/// in flight already or of a client at its limit.
pub type SkipDelivery<'a> = dyn Fn(&str, &str, u64) -> bool + Sync + 'a;

/// The operations of the session service. Every method naming a realm fails with
/// [`crate::SessionError::RealmNotFound`] when it does not exist.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates the realm with `update` applied to the defaults, or updates an existing one.
    /// Durable when it returns.
    async fn put_realm(
        &self,
        name: &str,
        update: &RealmSettingsUpdate,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Realm>;
    /// One realm with its settings and exact session count.
    async fn get_realm(&self, name: &str) -> Result<Realm>;
    /// Every realm, by name, the server's reserved ones included.
    async fn list_realms(&self) -> Result<Vec<Realm>>;
    /// Every realm administrators work with, by name: the reserved ones
    /// ([`crate::validate::is_reserved_realm`]) left out.
    async fn list_user_realms(&self) -> Result<Vec<Realm>> {
        let mut realms = self.list_realms().await?;
        realms.retain(|r| !crate::validate::is_reserved_realm(&r.name));
        Ok(realms)
    }

    /// Registers a client in the realm, or replaces its registration. Durable when it returns.
    async fn put_client(
        &self,
        realm: &str,
        client_id: &str,
        registration: &ClientRegistration,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Client>;
    /// A registered client with its session count.
    async fn get_client(&self, realm: &str, client_id: &str) -> Result<Client>;
    /// Every registered client of the realm with its session count, by id.
    async fn list_clients(&self, realm: &str) -> Result<Vec<Client>>;
    /// Removes a client's registration (its sessions stay); false if there was none.
    async fn delete_client(
        &self,
        realm: &str,
        client_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Starts a session; its token appears in the answer and nowhere else.
    async fn create_session(
        &self,
        realm: &str,
        new: &NewSession,
        now: DateTime<Utc>,
    ) -> Result<CreatedSession> {
        self.create_located_session(realm, new, None, now).await
    }
    /// Starts a session whose address is in `network` (as the service's GeoIP databases say).
    async fn create_located_session(
        &self,
        realm: &str,
        new: &NewSession,
        network: Option<Network>,
        now: DateTime<Utc>,
    ) -> Result<CreatedSession>;
    /// The session the token belongs to, if it is valid at `now`, as its holder sees it (only
    /// whitelisted properties). With `refresh`, extends its idle expiry, writing at most once per
    /// the realm's latest-access update interval.
    async fn validate(
        &self,
        realm: &str,
        token: &str,
        refresh: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>>;
    /// Ends the token's session (every flag on), also one that has expired but is not reaped yet.
    /// Durable when it returns; false if there was none.
    async fn logout(&self, realm: &str, token: &str, now: DateTime<Utc>) -> Result<bool>;
    /// Records that a refresh of the session came from `last.ip`, when that is not its latest
    /// address: a session ended meanwhile is left alone. Answers the session as it now is.
    async fn note_address(
        &self,
        realm: &str,
        sid: &str,
        last: &LastAddress,
    ) -> Result<Option<Session>>;
    /// Records that a client joined the session.
    async fn add_client(&self, realm: &str, sid: &str, client_id: &str) -> Result<Session>;
    /// A session by its public id.
    async fn get_session(&self, realm: &str, sid: &str) -> Result<Session>;
    /// The whitelisted properties of the token's session.
    async fn get_properties(
        &self,
        realm: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>>;
    /// Sets (or, with an empty value, removes) whitelisted properties of the token's session.
    async fn set_properties(
        &self,
        realm: &str,
        token: &str,
        properties: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>>;

    /// One page of the realm's sessions. An empty filter is no filter (`?subject_id=`); any other
    /// value is matched exactly, untrimmed, and a `sid` filter must be a session id as
    /// [`parse_sid`] reads it.
    async fn query(&self, realm: &str, query: &SessionQuery) -> Result<QueryResult>;
    /// One page as [`SessionStore::query`] answers it, except that the matches need not be
    /// counted (`total_count` and `total_pages` may be 0): for walking every match, as an export
    /// does, where counting again for every page would cost a range scan each. The default
    /// counts anyway.
    async fn query_uncounted(&self, realm: &str, query: &SessionQuery) -> Result<QueryResult> {
        self.query(realm, query).await
    }
    /// Ends the selected or filtered sessions. Durable when it returns (unless a dry run).
    ///
    /// Ids are exact: a blank `subject_id`, `sid`, `sids` or `client_ids` entry is refused, a
    /// padded one matches nothing, and sids are compared as parsed values (see [`parse_sid`]),
    /// so the same session named twice in different case counts once. A removal by `subject_id`
    /// (without `sid`) that revokes tokens also revokes the subject's tokens issued under no
    /// session (offline refresh tokens), within the client scope.
    async fn end_sessions(
        &self,
        realm: &str,
        request: &EndSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<EndOutcome>;
    /// Ends every session of the realm. Durable when it returns (unless a dry run).
    async fn end_all_sessions(
        &self,
        realm: &str,
        request: &EndAllSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<EndOutcome>;
    /// Removes up to `batch` sessions and grants that expired before `now`; answers how many it
    /// removed. A removed session's token grants go with it (not counted; its subject's consents
    /// stay). Expired sessions of realms that ask for it queue logout notifications.
    async fn reap_expired(&self, now: DateTime<Utc>, batch: usize) -> Result<usize>;

    /// The realm's activity counters ([`crate::stats`]) of `span`: every bucket from the one
    /// `from` falls in through the one `to` falls in, oldest first, zero where nothing happened
    /// (or where the bucket was pruned).
    async fn stats(
        &self,
        realm: &str,
        span: Span,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatsBucket>>;
    /// Deletes the activity counters of buckets older than [`Span::oldest_kept`] at `now`, in
    /// every realm; answers how many counters it deleted.
    async fn prune_stats(&self, now: DateTime<Utc>) -> Result<usize>;

    /// Disk flushes run since the store opened (each shared by the writers waiting for it), for
    /// metrics.
    fn durable_flushes(&self) -> u64;

    /// Where the store tells which realms' sessions came or went (created, removed, logged out,
    /// evicted, expired), through whichever server of a shared store changed them.
    fn changes(&self) -> &ChangeFeed;

    /// Appends an entry to the audit log (sign-ins, key and administrator changes). Durable when
    /// it returns.
    async fn record_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// The audit log, newest first: up to `count` entries older than `before` (an entry id).
    async fn audit_log(&self, before: Option<u64>, count: usize) -> Result<Vec<(u64, AuditEntry)>>;

    /// Records a refresh token, reference access token, authorization code or consent. A grant
    /// naming a session must name a live session of the same subject. Its expiry is capped at
    /// the realm's `max_grant_lifetime_secs` from `now`; the answer shows the expiry it got.
    async fn create_grant(
        &self,
        realm: &str,
        grant: &NewGrant,
        now: DateTime<Utc>,
    ) -> Result<Grant>;
    /// The live grant a token belongs to; `None` if it is unknown, revoked or expired.
    async fn introspect(
        &self,
        realm: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Grant>>;
    /// Revokes the grant a token belongs to (RFC 7009), whatever kind of token it is; durable and
    /// audited (`revoke_token`) when it returns. `None`, and nothing happens, when the token is
    /// not a live token of this realm (unknown, expired, another realm's, empty or too long).
    async fn revoke_token(
        &self,
        realm: &str,
        token: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Grant>>;
    /// Revokes every grant of a subject (tokens and consents, issued under a session or not),
    /// only those of `client_ids` when given; answers how many. Durable when it returns, with
    /// one audit entry (`revoke_subject_grants`) carrying the count and the reason.
    async fn revoke_subject_grants(
        &self,
        realm: &str,
        subject_id: &str,
        client_ids: Option<&[String]>,
        reason: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// The live grants of a subject or of a session (at most 1000).
    async fn list_grants(
        &self,
        realm: &str,
        owner: &GrantOwner,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>>;

    /// Up to `limit` pending deliveries due at `now`, across realms. Each client has its own
    /// queue, of which only the `per_client` earliest due entries are looked at, passing over
    /// those for which `skip(realm, client_id, id)` holds (in flight already, or the client at its
    /// limit); so a client's backlog costs a scan no more than `per_client` entries. Queues are
    /// visited from the one after `cursor`'s, wrapping around, and `cursor` is left where `limit`
    /// stopped the scan, so every client gets its turn.
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        per_client: usize,
        cursor: &mut DueCursor,
        skip: &SkipDelivery<'_>,
    ) -> Result<Vec<Delivery>>;
    /// Records how an attempt at `attempted` (the delivery as the worker read it) went, the
    /// logout token's `jti` included. If "retry now" opened a new retry window while the attempt
    /// was in flight, a failure leaves the delivery pending and due as "retry now" set it.
    async fn record_attempt(
        &self,
        attempted: &Delivery,
        jti: &str,
        result: &AttemptResult,
        now: DateTime<Utc>,
    ) -> Result<Delivery>;
    /// Queues a pending or failed delivery for an attempt now, with a fresh retry window.
    /// Durable when it returns.
    async fn retry_delivery(
        &self,
        realm: &str,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Delivery>;
    /// Deletes up to `batch` delivered deliveries queued before `cutoff`, oldest first; answers
    /// how many. Failed and pending ones are kept.
    async fn purge_delivered(&self, cutoff: DateTime<Utc>, batch: usize) -> Result<usize>;
    /// Queues a delivery no session ending made (a Shared Signals stream's own events), pending
    /// and due at `now`. Durable when it returns.
    async fn queue_delivery(&self, new: &NewDelivery, now: DateTime<Utc>) -> Result<Delivery>;
    /// Up to `limit` pending deliveries of one client's queue, due or not, earliest due first:
    /// what a Shared Signals poll stream has not acknowledged yet.
    async fn pending_deliveries(
        &self,
        realm: &str,
        client_id: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>>;
    /// One delivery; [`crate::SessionError::DeliveryNotFound`] if the realm has none of that id.
    async fn get_delivery(&self, realm: &str, id: u64) -> Result<Delivery>;
    /// One page of the realm's deliveries, newest first, optionally of one status, older than
    /// `before` (a delivery id), with exact counts per status.
    async fn list_deliveries(
        &self,
        realm: &str,
        status: Option<DeliveryStatus>,
        before: Option<u64>,
        count: usize,
    ) -> Result<DeliveryPage>;

    /// One page of the realm's ended-session history, newest end first, with the exact number
    /// that match. Every ending that deletes a session's record leaves one entry.
    async fn ended_sessions(&self, realm: &str, query: &EndedQuery) -> Result<EndedPage>;
    /// Deletes up to `batch` history entries of sessions that ended before `cutoff`, oldest
    /// first; answers how many.
    async fn prune_ended(&self, cutoff: DateTime<Utc>, batch: usize) -> Result<usize>;
}
