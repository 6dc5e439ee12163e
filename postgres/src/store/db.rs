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

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use sessions::SessionError;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement, Transaction};

/// Most connections one store opens, unless its configuration says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
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
    statements: RefCell<HashMap<String, Statement>>,
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
    /// A pool of up to `max` connections to the database `config` names; none is opened yet.
    pub(crate) fn new(config: Config, max: usize) -> std::io::Result<Db> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sessions-postgres")
            .enable_all()
            .build()?;
        Ok(Db {
            config,
            max: max.max(1),
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
        let opened = runtime.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!("PostgreSQL connection ended: {}", describe(&e));
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = block_on(opened)
            .map_err(|e| SessionError::Storage(format!("connecting to PostgreSQL: {e}")))??;
        Ok(Conn {
            client,
            statements: RefCell::new(HashMap::new()),
        })
    }

    /// A connection: an idle one, a new one if fewer than the maximum are open, or the next one
    /// freed.
    fn take(&self) -> R<Taken<'_>> {
        let deadline = Instant::now() + ACQUIRE_TIMEOUT;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
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
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Runs `f` with statements in autocommit (each durable on its own). Not tried again: a
    /// statement whose connection was lost may have run.
    pub(crate) fn run<T>(&self, f: impl AsyncFn(&Tx<'_>) -> R<T>) -> sessions::Result<T> {
        let mut taken = self.take()?;
        let conn = taken.conn.as_mut().expect("a taken connection");
        block_on(async {
            let tx = Tx {
                on: On::Client(&conn.client),
                statements: &conn.statements,
            };
            f(&tx).await
        })
        .map_err(Into::into)
    }

    /// Runs `f` in a transaction and commits it; tries again (from the start) after a deadlock
    /// or a serialization failure (the database rolled it back), or on another connection when
    /// the one it took was lost before the transaction began. A connection lost later is an
    /// error: the commit may have happened.
    pub(crate) fn write<T>(&self, f: impl AsyncFn(&Tx<'_>) -> R<T>) -> sessions::Result<T> {
        let mut attempt = 0;
        loop {
            let mut taken = self.take()?;
            let conn = taken.conn.as_mut().expect("a taken connection");
            let outcome = block_on(async {
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
        let mut taken = self.take()?;
        let conn = taken.conn.as_mut().expect("a taken connection");
        block_on(crate::migrations::migrate(&mut conn.client))
            .map_err(|e| SessionError::Storage(format!("migrating the database: {e}")))
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

enum On<'a> {
    Client(&'a Client),
    Transaction(Transaction<'a>),
}

/// Where the store's statements run: a transaction, or a connection in autocommit. Statements
/// are prepared once per connection and kept.
pub(crate) struct Tx<'a> {
    on: On<'a>,
    statements: &'a RefCell<HashMap<String, Statement>>,
}

/// Parameters of a statement.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

impl Tx<'_> {
    async fn statement(&self, sql: &str) -> R<Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let prepared = match &self.on {
            On::Client(c) => c.prepare(sql).await?,
            On::Transaction(t) => t.prepare(sql).await?,
        };
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), prepared.clone());
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
