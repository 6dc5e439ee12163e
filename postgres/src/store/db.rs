//! Connections: a small pool of `tokio_postgres` clients whose connection tasks run on a runtime
//! the store owns, and the two ways the store talks to the database, one statement at a time
//! ([`Db::run`], autocommit) or in a transaction that is retried after a deadlock or a
//! serialization failure ([`Db::write`]). Connections found closed are dropped from the pool.
//!
//! The store's methods are blocking calls: a call waits for its queries with
//! `futures::executor::block_on`, which does not depend on the caller's executor, so a call made
//! from a tokio worker thread blocks that thread but does not panic (as the synchronous
//! `postgres` client, which starts a runtime of its own, would). Async callers still run the
//! store on blocking threads ([`sessions::store::SessionStore::blocks_on_network`]).
//!
//! Bounds, so that no caller can hold the pool: every statement runs under PostgreSQL's
//! `statement_timeout` (set on each pooled connection, [`DEFAULT_STATEMENT_TIMEOUT`] unless
//! configured); a call made within a [`CallCancel`] scope that is cancelled (its request was
//! dropped) has its running statement cancelled on the server (a cancel request, as `psql`'s
//! Ctrl-C sends) and its connection given up; each connection keeps at most
//! [`STATEMENT_CACHE_CAPACITY`] prepared statements, closing the least recently used.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use futures::future::{select, Either};
use sessions::store::shared::CallCancel;
use sessions::SessionError;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{CancelToken, Client, Config, NoTls, Row, Statement, Transaction};

/// Most connections one store opens, unless its configuration says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// Longest a statement runs, unless the store's configuration says otherwise: an API request's
/// time limit, so that a statement does not outlive the request that started it.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most prepared statements a connection keeps; the least recently used one is closed (on the
/// server too) to make room. Listings build their SQL from the filters given, so the number of
/// distinct texts is large.
pub(crate) const STATEMENT_CACHE_CAPACITY: usize = 256;
/// How often a call waiting for a free connection looks whether it was cancelled.
const CANCEL_CHECK: Duration = Duration::from_millis(50);
/// How long a call waits for a free connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a transaction is tried again after a deadlock, a serialization failure or a
/// connection lost before it began.
const MAX_RETRIES: usize = 5;

/// An error inside the store: from the database, or one of the service's own.
#[derive(Debug)]
pub(crate) enum Error {
    Db(tokio_postgres::Error),
    Session(SessionError),
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Db(e)
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        Error::Session(e)
    }
}

impl From<Error> for SessionError {
    fn from(e: Error) -> Self {
        match e {
            Error::Session(e) => e,
            Error::Db(e) if e.code() == Some(&SqlState::QUERY_CANCELED) => {
                SessionError::Unavailable(describe(&e))
            }
            Error::Db(e) => SessionError::Storage(describe(&e)),
        }
    }
}

/// A database error with the server's code and message when there is one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("PostgreSQL {}: {}", db.code().code(), db.message()),
        None => format!("PostgreSQL: {e}"),
    }
}

/// Whether the database refused the statement because it would duplicate a unique key.
pub(crate) fn is_unique_violation(e: &Error) -> bool {
    matches!(e, Error::Db(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION))
}

/// Whether the database rolled the transaction back for a reason that trying it again resolves
/// (a deadlock, a serialization failure).
fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Db(e) if matches!(
            e.code(),
            Some(&SqlState::T_R_DEADLOCK_DETECTED) | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        )
    )
}

/// How a transaction ended: whether it reached the database at all.
enum Outcome<T> {
    /// The connection was lost before the transaction began: nothing happened.
    NotBegun(Error),
    Done(R<T>),
}

/// Results inside the store.
pub(crate) type R<T> = std::result::Result<T, Error>;

/// One pooled connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: RefCell<StatementCache>,
}

/// The statements prepared on one connection, by their SQL text: at most `capacity`, the least
/// recently used dropped to make room (dropping the last handle of a statement closes it on the
/// server).
pub(crate) struct StatementCache {
    capacity: usize,
    /// Counts uses; each entry remembers its last.
    clock: u64,
    entries: HashMap<String, (Statement, u64)>,
}

impl StatementCache {
    fn new(capacity: usize) -> Self {
        StatementCache {
            capacity: capacity.max(1),
            clock: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, sql: &str) -> Option<Statement> {
        self.clock += 1;
        let now = self.clock;
        self.entries.get_mut(sql).map(|(s, used)| {
            *used = now;
            s.clone()
        })
    }

    fn insert(&mut self, sql: &str, statement: Statement) {
        self.clock += 1;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(sql) {
            // A linear search, on a miss with a full cache only: cheaper than the prepare
            // round trip that follows every miss.
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(sql, _)| sql.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(sql.to_owned(), (statement, self.clock));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

struct PoolState {
    idle: Vec<Conn>,
    /// Connections open, idle or in use.
    open: usize,
}

/// The store's connections.
pub(crate) struct Db {
    config: Config,
    max: usize,
    /// `statement_timeout` of the pooled connections; `None`: the database's own setting.
    statement_timeout: Option<Duration>,
    state: Mutex<PoolState>,
    freed: Condvar,
    runtime: Option<tokio::runtime::Runtime>,
}

/// A connection taken from the pool; back in it when dropped, unless it was closed.
struct Taken<'a> {
    db: &'a Db,
    conn: Option<Conn>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        let mut state = self.db.state.lock().unwrap_or_else(|e| e.into_inner());
        match self.conn.take() {
            Some(c) if !c.client.is_closed() => state.idle.push(c),
            _ => state.open -= 1,
        }
        self.db.freed.notify_one();
    }
}

impl Db {
    /// A pool of up to `max` connections to the database `config` names, each running its
    /// statements under `statement_timeout` (`None`: the database's own setting); none is
    /// opened yet.
    pub(crate) fn new(
        config: Config,
        max: usize,
        statement_timeout: Option<Duration>,
    ) -> std::io::Result<Db> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sessions-postgres")
            .enable_all()
            .build()?;
        Ok(Db {
            config,
            max: max.max(1),
            statement_timeout,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            runtime: Some(runtime),
        })
    }

    /// The runtime the store's connection tasks run on.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the pool")
            .handle()
    }

    /// The database's connection settings.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    fn connect(&self) -> R<Conn> {
        let config = self.config.clone();
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the pool");
        // Whole milliseconds, at least one (0 would mean no limit).
        let timeout_ms = self
            .statement_timeout
            .map(|t| t.as_millis().clamp(1, i32::MAX as u128));
        let opened = runtime.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!("PostgreSQL connection ended: {}", describe(&e));
                }
            });
            if let Some(ms) = timeout_ms {
                client
                    .batch_execute(&format!("SET statement_timeout = {ms}"))
                    .await?;
            }
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = block_on(opened)
            .map_err(|e| SessionError::Storage(format!("connecting to PostgreSQL: {e}")))??;
        Ok(Conn {
            client,
            statements: RefCell::new(StatementCache::new(STATEMENT_CACHE_CAPACITY)),
        })
    }

    /// A connection: an idle one, a new one if fewer than the maximum are open, or the next one
    /// freed; none once `cancel` is cancelled.
    fn take(&self, cancel: Option<&CallCancel>) -> R<Taken<'_>> {
        let deadline = Instant::now() + ACQUIRE_TIMEOUT;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if cancel.is_some_and(CallCancel::is_cancelled) {
                return Err(abandoned());
            }
            while let Some(c) = state.idle.pop() {
                if !c.client.is_closed() {
                    return Ok(Taken {
                        db: self,
                        conn: Some(c),
                    });
                }
                state.open -= 1;
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                let mut taken = Taken {
                    db: self,
                    conn: None,
                };
                // On failure, dropping `taken` (empty) gives the slot back.
                taken.conn = Some(self.connect()?);
                return Ok(taken);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SessionError::Storage(format!(
                    "no PostgreSQL connection was free within {ACQUIRE_TIMEOUT:?} ({} in use)",
                    self.max
                ))
                .into());
            }
            // A cancellable call looks again every so often: nothing wakes it when cancelled.
            let wait = match cancel {
                Some(_) => (deadline - now).min(CANCEL_CHECK),
                None => deadline - now,
            };
            state = self
                .freed
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Runs `f` with statements in autocommit (each durable on its own). Not tried again: a
    /// statement whose connection was lost may have run.
    pub(crate) fn run<T>(&self, f: impl AsyncFn(&Tx<'_>) -> R<T>) -> sessions::Result<T> {
        let cancel = CallCancel::current();
        let mut taken = self.take(cancel.as_ref())?;
        let conn = taken.conn.as_ref().expect("a taken connection");
        let done = self.wait(cancel.as_ref(), conn.client.cancel_token(), async {
            let tx = Tx {
                on: On::Client(&conn.client),
                statements: &conn.statements,
            };
            f(&tx).await
        });
        match done {
            Some(result) => result.map_err(Into::into),
            None => {
                // Given up, not given back: see `wait`.
                taken.conn = None;
                Err(abandoned().into())
            }
        }
    }

    /// Waits for `work`, a call's statements on the connection `token` cancels, unless `cancel`
    /// is cancelled first: then `work` is dropped, which cancels the statement running
    /// ([`CancelStatement`]), and the answer is `None`. The caller then gives the connection up:
    /// a cancel request is not tied to a statement and may arrive late, and must not end a
    /// later caller's statement on the same connection.
    fn wait<T>(
        &self,
        cancel: Option<&CallCancel>,
        token: CancelToken,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        let guarded = async {
            let mut guard = CancelStatement {
                token: Some(token),
                runtime: self.runtime().clone(),
            };
            let out = work.await;
            guard.token = None;
            out
        };
        let Some(cancel) = cancel else {
            return Some(block_on(guarded));
        };
        match block_on(select(pin!(guarded), pin!(cancel.cancelled()))) {
            Either::Left((out, _)) => Some(out),
            Either::Right(((), _)) => {
                tracing::debug!("a store call was cancelled: its statement is being cancelled");
                None
            }
        }
    }

    /// Runs `f` in a transaction and commits it; tries again (from the start) after a deadlock
    /// or a serialization failure (the database rolled it back), or on another connection when
    /// the one it took was lost before the transaction began. A connection lost later is an
    /// error: the commit may have happened.
    pub(crate) fn write<T>(&self, f: impl AsyncFn(&Tx<'_>) -> R<T>) -> sessions::Result<T> {
        let cancel = CallCancel::current();
        let mut attempt = 0;
        loop {
            let mut taken = self.take(cancel.as_ref())?;
            let conn = taken.conn.as_mut().expect("a taken connection");
            let token = conn.client.cancel_token();
            let outcome = self.wait(cancel.as_ref(), token, async {
                let tx = match conn.client.transaction().await {
                    Ok(tx) => tx,
                    Err(e) if e.is_closed() => return Outcome::NotBegun(e.into()),
                    Err(e) => return Outcome::Done(Err(e.into())),
                };
                let tx = Tx {
                    on: On::Transaction(tx),
                    statements: &conn.statements,
                };
                Outcome::Done(
                    async {
                        let value = f(&tx).await?;
                        tx.commit().await?;
                        Ok(value)
                    }
                    .await,
                )
            });
            let Some(outcome) = outcome else {
                // Given up, not given back: see `wait`. The transaction was rolled back, unless
                // its commit was under way.
                taken.conn = None;
                return Err(abandoned().into());
            };
            let result = match outcome {
                Outcome::NotBegun(e) if attempt < MAX_RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, "connection lost before a transaction: {e:?}");
                    continue;
                }
                Outcome::NotBegun(e) => Err(e),
                Outcome::Done(result) => result,
            };
            match result {
                Err(e) if retryable(&e) && attempt < MAX_RETRIES => {
                    attempt += 1;
                    if let Error::Db(e) = &e {
                        tracing::debug!(attempt, "transaction tried again: {}", describe(e));
                    }
                }
                other => return other.map_err(Into::into),
            }
        }
    }
}

impl Db {
    /// Brings the database's schema up to date ([`crate::migrations`]).
    pub(crate) fn migrate(&self) -> sessions::Result<Vec<i32>> {
        let mut taken = self.take(None)?;
        let conn = taken.conn.as_mut().expect("a taken connection");
        // A migration may rewrite large tables, and waits for other servers' migrations: no
        // statement timeout, on a connection not given back to the pool afterwards.
        let migrated = block_on(async {
            conn.client
                .batch_execute("SET statement_timeout = 0")
                .await?;
            crate::migrations::migrate(&mut conn.client).await
        });
        taken.conn = None;
        migrated.map_err(|e| SessionError::Storage(format!("migrating the database: {e}")))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // Close the idle connections, then stop their tasks without waiting (this may run on an
        // async thread, where a runtime cannot be dropped by blocking).
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .idle
            .clear();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The error of a call cancelled before the database answered it.
fn abandoned() -> Error {
    Error::Session(SessionError::Storage(
        "the call was cancelled (its request ended) before the database answered".into(),
    ))
}

/// Sends the server a cancel request for the statement running on a connection when dropped
/// still holding its token: the future waiting for the statement was dropped before it
/// finished.
struct CancelStatement {
    token: Option<CancelToken>,
    runtime: tokio::runtime::Handle,
}

impl Drop for CancelStatement {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            self.runtime.spawn(async move {
                if let Err(e) = token.cancel_query(NoTls).await {
                    tracing::warn!("cancelling an abandoned statement: {}", describe(&e));
                }
            });
        }
    }
}

enum On<'a> {
    Client(&'a Client),
    Transaction(Transaction<'a>),
}

/// Where the store's statements run: a transaction, or a connection in autocommit. Statements
/// are prepared once per connection and kept (up to [`STATEMENT_CACHE_CAPACITY`]).
pub(crate) struct Tx<'a> {
    on: On<'a>,
    statements: &'a RefCell<StatementCache>,
}

/// Parameters of a statement.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

impl Tx<'_> {
    async fn statement(&self, sql: &str) -> R<Statement> {
        let cached = self.statements.borrow_mut().get(sql);
        if let Some(s) = cached {
            return Ok(s);
        }
        let prepared = match &self.on {
            On::Client(c) => c.prepare(sql).await?,
            On::Transaction(t) => t.prepare(sql).await?,
        };
        self.statements.borrow_mut().insert(sql, prepared.clone());
        Ok(prepared)
    }

    /// Every row a statement answers.
    pub(crate) async fn query(&self, sql: &str, params: &Params<'_>) -> R<Vec<Row>> {
        let s = self.statement(sql).await?;
        Ok(match &self.on {
            On::Client(c) => c.query(&s, params).await?,
            On::Transaction(t) => t.query(&s, params).await?,
        })
    }

    /// The row a statement answers, if any (an error if more).
    pub(crate) async fn query_opt(&self, sql: &str, params: &Params<'_>) -> R<Option<Row>> {
        let s = self.statement(sql).await?;
        Ok(match &self.on {
            On::Client(c) => c.query_opt(&s, params).await?,
            On::Transaction(t) => t.query_opt(&s, params).await?,
        })
    }

    /// The one row a statement answers.
    pub(crate) async fn query_one(&self, sql: &str, params: &Params<'_>) -> R<Row> {
        let s = self.statement(sql).await?;
        Ok(match &self.on {
            On::Client(c) => c.query_one(&s, params).await?,
            On::Transaction(t) => t.query_one(&s, params).await?,
        })
    }

    /// Runs a statement; answers how many rows it changed.
    pub(crate) async fn execute(&self, sql: &str, params: &Params<'_>) -> R<u64> {
        let s = self.statement(sql).await?;
        Ok(match &self.on {
            On::Client(c) => c.execute(&s, params).await?,
            On::Transaction(t) => t.execute(&s, params).await?,
        })
    }

    /// Several statements without parameters, in one round trip.
    pub(crate) async fn batch(&self, sql: &str) -> R<()> {
        match &self.on {
            On::Client(c) => c.batch_execute(sql).await?,
            On::Transaction(t) => t.batch_execute(sql).await?,
        }
        Ok(())
    }

    async fn commit(self) -> R<()> {
        if let On::Transaction(t) = self.on {
            t.commit().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchPostgres;
    use std::str::FromStr;

    #[test]
    fn the_statement_cache_stays_within_its_bound_after_many_distinct_sql_texts() {
        let url = ScratchPostgres::shared()
            .new_database("statement_cache")
            .unwrap();
        let db = Db::new(Config::from_str(&url).unwrap(), 1, None).unwrap();
        let hot = "SELECT 'hot'::text";
        let distinct = STATEMENT_CACHE_CAPACITY + 100;
        for i in 0..distinct {
            let n: i64 = db
                .run(async |tx| {
                    Ok(tx
                        .query_one(&format!("SELECT {i}::int8"), &[])
                        .await?
                        .get(0))
                })
                .unwrap();
            assert_eq!(n, i as i64);
            if i % 10 == 0 {
                db.run(async |tx| tx.query_one(hot, &[]).await.map(drop))
                    .unwrap();
            }
        }
        let (cached, hot_cached, on_server) = db
            .run(async |tx| {
                let on_server: i64 = tx
                    .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
                    .await?
                    .get(0);
                let cache = tx.statements.borrow();
                Ok((cache.len(), cache.entries.contains_key(hot), on_server))
            })
            .unwrap();
        assert_eq!(cached, STATEMENT_CACHE_CAPACITY);
        assert!(hot_cached, "a statement in use is not the one evicted");
        // Evicted statements were closed on the server too.
        assert!(
            on_server <= STATEMENT_CACHE_CAPACITY as i64,
            "{on_server} statements prepared on the server"
        );
    }
}
