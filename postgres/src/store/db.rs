//! Connections: a `deadpool-postgres` pool of `tokio_postgres` clients whose connection tasks run
//! on the caller's tokio runtime, and the two ways the store talks to the database, one statement
//! at a time ([`db_run!`], autocommit) or in a transaction that is retried after a deadlock or a
//! serialization failure ([`db_write!`]). Both are futures: a call awaits its statements and
//! holds no thread meanwhile. Connections found closed are dropped from the pool.
//!
//! They are macros rather than methods taking an async closure: rustc cannot prove a future that
//! holds an async closure's future `Send` ("implementation of `Send` is not general enough"), and
//! the store's futures must be. The statements are an `async` block inlined where they are written.
//!
//! Bounds, so that no caller can hold the pool: every statement runs under PostgreSQL's
//! `statement_timeout` (set on each pooled connection when it opens, [`DEFAULT_STATEMENT_TIMEOUT`]
//! unless configured); a call waits at most [`ACQUIRE_TIMEOUT`] for a free connection; a call
//! whose future is dropped while it holds a connection (its request timed out, its client went
//! away) has the statement running there cancelled on the server (a cancel request, as `psql`'s
//! Ctrl-C sends) and the connection closed rather than given back ([`Taken`]); each connection
//! keeps at most [`STATEMENT_CACHE_CAPACITY`] prepared statements, and closes them all when it
//! has more.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{
    ClientWrapper, Hook, HookError, Manager, ManagerConfig, Object, Pool, PoolError,
    RecyclingMethod, Runtime, StatementCache, TimeoutType, Timeouts,
};
use sessions::SessionError;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement};
use uuid::Uuid;

use super::validated::{self, ValidationCache};

/// Most connections one store opens, unless its configuration says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// Longest a statement runs, unless the store's configuration says otherwise: an API request's
/// time limit, so that a statement does not outlive the request that started it.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening a connection to one host may take, unless the URL says (`connect_timeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most prepared statements a connection keeps; past it, its cache is emptied (and the
/// statements closed on the server). Listings build their SQL from the filters given, so the
/// number of distinct texts is large.
pub(crate) const STATEMENT_CACHE_CAPACITY: usize = 256;
/// How long a call waits for a free connection (or for a new one to open) before it fails.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
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
            Error::Db(e) => from_db(&e),
        }
    }
}

/// A database error as the service's: [`SessionError::Unavailable`] (a 503 the caller may try
/// again) when [`is_transient`], else [`SessionError::Storage`].
pub(crate) fn from_db(e: &tokio_postgres::Error) -> SessionError {
    if is_transient(e) {
        SessionError::Unavailable(describe(e))
    } else {
        SessionError::Storage(describe(e))
    }
}

/// Whether the database could not serve a call for a while that passes: a statement past its
/// timeout; the connection lost, refused or timed out (the server stopped, crashed or is
/// failing over); a server shutting down or starting; a server that no longer takes writes (a
/// primary demoted in a failover: `target_session_attrs=read-write` finds the new one on the
/// next connection).
pub(crate) fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => [
            SqlState::CONNECTION_EXCEPTION,
            SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
            SqlState::CONNECTION_DOES_NOT_EXIST,
            SqlState::SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION,
            SqlState::CONNECTION_FAILURE,
            SqlState::QUERY_CANCELED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ]
        .contains(code),
        // No answer from a server: connecting failed (refused, timed out, or none of the URL's
        // hosts takes writes) or the connection's I/O did. (Not an error encoding a statement
        // or reading a malformed message, which trying again does not mend.)
        None => {
            let text = e.to_string();
            text.starts_with("error connecting to server")
                || text.starts_with("error communicating with the server")
        }
    }
}

/// Whether the server refused a write because it no longer takes any (a primary demoted): the
/// connection is not given back to the pool, so the next call connects to the new primary.
pub(crate) fn is_read_only(e: &Error) -> bool {
    matches!(e, Error::Db(e) if e.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION))
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
pub(crate) enum Outcome<T> {
    /// The connection was lost before the transaction began: nothing happened.
    NotBegun(Error),
    Done(R<T>),
}

impl<T> Outcome<T> {
    /// Whether the server refused the transaction's writes because it no longer takes any.
    pub(crate) fn is_read_only(&self) -> bool {
        matches!(self, Outcome::Done(Err(e)) if is_read_only(e))
    }

    /// The outcome of a transaction whose `BEGIN` failed so.
    pub(crate) fn not_begun(e: tokio_postgres::Error) -> Self {
        if e.is_closed() {
            Outcome::NotBegun(e.into())
        } else {
            Outcome::Done(Err(e.into()))
        }
    }
}

/// Results inside the store.
pub(crate) type R<T> = std::result::Result<T, Error>;

/// The store's connections.
pub(crate) struct Db {
    pool: Pool,
    /// The database's connection settings, for the connection that listens for changes.
    config: Config,
    /// Sessions validated lately; what a transaction changed leaves it when the transaction ends.
    validations: Arc<ValidationCache>,
}

impl Db {
    /// A pool of up to `max` connections to the database `config` names, each running its
    /// statements under `statement_timeout` (`None`: the database's own setting); none is
    /// opened yet. Connections open on the runtime of the call that needs them.
    pub(crate) fn new(
        config: Config,
        max: usize,
        statement_timeout: Option<Duration>,
        validations: Arc<ValidationCache>,
    ) -> sessions::Result<Db> {
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // Only whether the connection is closed: no round trip before each call.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Whole milliseconds, at least one (0 would mean no limit).
        let timeout_ms = statement_timeout.map(|t| t.as_millis().clamp(1, i32::MAX as u128));
        let mut builder = Pool::builder(manager)
            .max_size(max.max(1))
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(ACQUIRE_TIMEOUT),
                create: Some(ACQUIRE_TIMEOUT),
                recycle: None,
            });
        if let Some(ms) = timeout_ms {
            builder = builder.post_create(Hook::async_fn(move |client: &mut ClientWrapper, _| {
                Box::pin(async move {
                    client
                        .batch_execute(&format!("SET statement_timeout = {ms}"))
                        .await
                        .map_err(HookError::Backend)
                })
            }));
        }
        let pool = builder
            .build()
            .map_err(|e| SessionError::Storage(format!("starting the PostgreSQL pool: {e}")))?;
        Ok(Db {
            pool,
            config,
            validations,
        })
    }

    /// The database's connection settings.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Sessions validated lately.
    pub(crate) fn validations(&self) -> &Arc<ValidationCache> {
        &self.validations
    }

    /// A call's statements are over (committed, rolled back or lost): the sessions they changed
    /// ([`Tx::take_changed`]) leave the validation cache. (Evicting more than needed is
    /// harmless.)
    pub(crate) fn forget(&self, changed: Vec<Uuid>) {
        self.validations.forget(&changed);
    }

    /// A connection: an idle one, a new one if fewer than the maximum are open, or the next one
    /// freed, waiting at most [`ACQUIRE_TIMEOUT`].
    pub(crate) async fn take(&self) -> R<Taken> {
        let conn = self.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(TimeoutType::Wait) => SessionError::Unavailable(format!(
                "no PostgreSQL connection was free within {ACQUIRE_TIMEOUT:?} ({} in use)",
                self.pool.status().max_size
            )),
            PoolError::Timeout(_) => SessionError::Unavailable(format!(
                "connecting to PostgreSQL took longer than {ACQUIRE_TIMEOUT:?}"
            )),
            PoolError::Backend(e) | PoolError::PostCreateHook(HookError::Backend(e)) => {
                match from_db(&e) {
                    SessionError::Unavailable(m) => {
                        SessionError::Unavailable(format!("connecting to PostgreSQL: {m}"))
                    }
                    _ => {
                        SessionError::Storage(format!("connecting to PostgreSQL: {}", describe(&e)))
                    }
                }
            }
            e => SessionError::Storage(format!("connecting to PostgreSQL: {e}")),
        })?;
        Ok(Taken { conn: Some(conn) })
    }

    /// Brings the database's schema up to date ([`crate::migrations`]), on a connection of its
    /// own, outside the pool: a migration may rewrite large tables, and waits for other servers'
    /// migrations, so it runs without the statement timeout.
    pub(crate) async fn migrate(&self) -> sessions::Result<Vec<i32>> {
        let failed = |e: &dyn std::fmt::Display| {
            SessionError::Storage(format!("migrating the database: {e}"))
        };
        let (mut client, connection) = self.config.connect(NoTls).await.map_err(|e| {
            SessionError::Storage(format!("connecting to PostgreSQL: {}", describe(&e)))
        })?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("the migrating connection ended: {}", describe(&e));
            }
        });
        let migrated = async {
            client.batch_execute("SET statement_timeout = 0").await?;
            crate::migrations::migrate(&mut client).await
        }
        .await;
        // Closes the connection (and ends its task).
        drop(client);
        let _ = connection.await;
        migrated.map_err(|e| failed(&e))
    }

    /// Connections open (idle or in use), and idle, for tests.
    #[cfg(test)]
    fn open_and_idle(&self) -> (usize, usize) {
        let s = self.pool.status();
        (s.size, s.available)
    }
}

/// Runs `$body`, statements on `$tx` (a [`&Tx`](Tx)) in autocommit, each durable on its own, on
/// a connection of `$db` (a [`Db`]): a future of `sessions::Result<T>` for a body of [`R<T>`].
/// Not tried again: a statement whose connection was lost may have run.
macro_rules! db_run {
    ($db:expr, async |$tx:ident| $body:expr) => {
        $crate::store::db::call(async {
            let db: &$crate::store::db::Db = &$db;
            let taken = db.take().await?;
            let tx = taken.autocommit();
            let result = $crate::store::db::body(async {
                let $tx = &tx;
                $body
            })
            .await;
            db.forget(tx.take_changed());
            drop(tx);
            let read_only = result.as_ref().is_err_and($crate::store::db::is_read_only);
            taken.give_back_unless(read_only);
            Ok(result?)
        })
    };
}

/// Runs `$body`, statements on `$tx` (a [`&Tx`](Tx)), in a transaction on a connection of `$db`
/// (a [`Db`]) and commits it: a future of `sessions::Result<T>` for a body of [`R<T>`]. Tried
/// again from the start after a deadlock or a serialization failure (the database rolled it
/// back), or on another connection when the one it took was lost before the transaction began
/// ([`Retry`]); so the body may run more than once. A connection lost later is an error: the
/// commit may have happened.
macro_rules! db_write {
    ($db:expr, async |$tx:ident| $body:expr) => {
        $crate::store::db::call(async {
            let db: &$crate::store::db::Db = &$db;
            let mut retry = $crate::store::db::Retry::default();
            loop {
                let mut taken = db.take().await?;
                let outcome = match taken.begin().await {
                    Err(e) => $crate::store::db::Outcome::not_begun(e),
                    Ok(tx) => {
                        let result = $crate::store::db::body(async {
                            let $tx = &tx;
                            $body
                        })
                        .await;
                        let changed = tx.take_changed();
                        let done = match result {
                            Ok(value) => tx.commit().await.map(|()| value),
                            // Dropped, the transaction is rolled back.
                            Err(e) => Err(e),
                        };
                        db.forget(changed);
                        $crate::store::db::Outcome::Done(done)
                    }
                };
                // A connection found closed leaves the pool when next taken.
                taken.give_back_unless(outcome.is_read_only());
                if let Some(result) = retry.after(outcome) {
                    break result;
                }
            }
        })
    };
}

pub(crate) use {db_run, db_write};

/// The future of a call: a `sessions::Result`. (Fixes the type the `?` of a macro's block
/// converts to.)
pub(crate) fn call<T>(
    f: impl Future<Output = sessions::Result<T>>,
) -> impl Future<Output = sessions::Result<T>> {
    f
}

/// The future of a call's statements: an [`R`]. (Fixes the type the `?` of its body converts
/// to.)
pub(crate) fn body<T>(f: impl Future<Output = R<T>>) -> impl Future<Output = R<T>> {
    f
}

/// Counts the attempts of a transaction ([`db_write!`]) and decides whether to try again.
#[derive(Default)]
pub(crate) struct Retry {
    attempt: usize,
}

impl Retry {
    /// The result to answer after an attempt that ended so, or `None` to try again.
    pub(crate) fn after<T>(&mut self, outcome: Outcome<T>) -> Option<sessions::Result<T>> {
        let result = match outcome {
            Outcome::NotBegun(e) if self.attempt < MAX_RETRIES => {
                self.attempt += 1;
                tracing::debug!(
                    attempt = self.attempt,
                    "connection lost before a transaction: {e:?}"
                );
                return None;
            }
            Outcome::NotBegun(e) => Err(e),
            Outcome::Done(result) => result,
        };
        match result {
            Err(e) if retryable(&e) && self.attempt < MAX_RETRIES => {
                self.attempt += 1;
                if let Error::Db(e) = &e {
                    tracing::debug!(
                        attempt = self.attempt,
                        "transaction tried again: {}",
                        describe(e)
                    );
                }
                None
            }
            other => Some(other.map_err(Into::into)),
        }
    }
}

/// A connection taken from the pool for one call. The call gives it back when it is done with it
/// ([`Taken::give_back_unless`]). Dropped still holding it, the call's future was dropped mid-statement:
/// a cancel request for the statement running is sent, and the connection leaves the pool and is
/// closed once the request was sent. A cancel request names a connection, not a statement, and
/// may arrive late: it must not end a later caller's statement on the same connection.
pub(crate) struct Taken {
    conn: Option<Object>,
}

impl Taken {
    fn client(&self) -> &ClientWrapper {
        self.conn.as_ref().expect("a taken connection")
    }

    /// Statements in autocommit.
    pub(crate) fn autocommit(&self) -> Tx<'_> {
        Tx {
            on: On::Client(self.client()),
            changed: Mutex::default(),
        }
    }

    /// A transaction begun.
    pub(crate) async fn begin(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        Ok(Tx {
            on: On::Transaction(
                self.conn
                    .as_mut()
                    .expect("a taken connection")
                    .transaction()
                    .await?,
            ),
            changed: Mutex::default(),
        })
    }

    /// Back to the pool, for the next call, unless `discard`: then the connection is closed.
    pub(crate) fn give_back_unless(mut self, discard: bool) {
        match self.conn.take() {
            Some(conn) if discard => drop(Object::take(conn)),
            conn => drop(conn),
        }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let token = conn.cancel_token();
        let client = Object::take(conn);
        tracing::debug!("a store call was dropped mid-statement: cancelling its statement");
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = token.cancel_query(NoTls).await {
                        tracing::warn!("cancelling an abandoned statement: {}", describe(&e));
                    }
                    drop(client);
                });
            }
            // Outside a runtime (the runtime is gone): closing the connection is all there is.
            Err(_) => drop(client),
        }
    }
}

enum On<'a> {
    Client(&'a ClientWrapper),
    Transaction(deadpool_postgres::Transaction<'a>),
}

/// Where the store's statements run: a transaction, or a connection in autocommit. Statements
/// are prepared once per connection and kept (up to [`STATEMENT_CACHE_CAPACITY`]).
pub(crate) struct Tx<'a> {
    on: On<'a>,
    /// Sessions its statements changed, announced ([`Tx::sessions_changed`]).
    changed: Mutex<Vec<Uuid>>,
}

/// Parameters of a statement.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

impl Tx<'_> {
    fn client(&self) -> &Client {
        match &self.on {
            On::Client(c) => c,
            On::Transaction(t) => t.client(),
        }
    }

    fn statements(&self) -> &Arc<StatementCache> {
        match &self.on {
            On::Client(c) => &c.statement_cache,
            On::Transaction(t) => &t.statement_cache,
        }
    }

    async fn statement(&self, sql: &str) -> R<Statement> {
        let statements = self.statements();
        let statement = statements.prepare(self.client(), sql).await?;
        if statements.size() > STATEMENT_CACHE_CAPACITY {
            // Dropping the last handle of a statement closes it on the server.
            statements.clear();
        }
        Ok(statement)
    }

    /// Every row a statement answers.
    pub(crate) async fn query(&self, sql: &str, params: &Params<'_>) -> R<Vec<Row>> {
        let s = self.statement(sql).await?;
        Ok(self.client().query(&s, params).await?)
    }

    /// The row a statement answers, if any (an error if more).
    pub(crate) async fn query_opt(&self, sql: &str, params: &Params<'_>) -> R<Option<Row>> {
        let s = self.statement(sql).await?;
        Ok(self.client().query_opt(&s, params).await?)
    }

    /// The one row a statement answers.
    pub(crate) async fn query_one(&self, sql: &str, params: &Params<'_>) -> R<Row> {
        let s = self.statement(sql).await?;
        Ok(self.client().query_one(&s, params).await?)
    }

    /// Runs a statement; answers how many rows it changed.
    pub(crate) async fn execute(&self, sql: &str, params: &Params<'_>) -> R<u64> {
        let s = self.statement(sql).await?;
        Ok(self.client().execute(&s, params).await?)
    }

    /// Several statements without parameters, in one round trip.
    pub(crate) async fn batch(&self, sql: &str) -> R<()> {
        Ok(self.client().batch_execute(sql).await?)
    }

    /// Announces to every server that these sessions changed in a way validations answer with
    /// (they ended, their clients or properties changed): when the transaction commits, each
    /// server's validation cache evicts them ([`validated`](super::validated)); this server's
    /// evicts them when the call's statements are over, whatever their outcome.
    pub(crate) async fn sessions_changed(&self, sids: &[Uuid]) -> R<()> {
        if sids.is_empty() {
            return Ok(());
        }
        self.changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(sids);
        self.execute(
            "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
            &[&validated::CHANNEL, &validated::payloads(sids)],
        )
        .await
        .map(drop)
    }

    /// The sessions announced so far ([`Tx::sessions_changed`]), for [`Db::forget`] once the
    /// statements are over.
    pub(crate) fn take_changed(&self) -> Vec<Uuid> {
        std::mem::take(&mut *self.changed.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) async fn commit(self) -> R<()> {
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

    fn db(max: usize, statement_timeout: Option<Duration>) -> Db {
        let url = ScratchPostgres::shared().new_database("db").unwrap();
        Db::new(
            Config::from_str(&url).unwrap(),
            max,
            statement_timeout,
            Arc::new(ValidationCache::new(0)),
        )
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_statement_cache_stays_within_its_bound_after_many_distinct_sql_texts() {
        let db = db(1, None);
        let distinct = STATEMENT_CACHE_CAPACITY * 2 + 10;
        let mut largest = 0;
        for i in 0..distinct {
            let n: i64 = db_run!(db, async |tx| {
                Ok(tx
                    .query_one(&format!("SELECT {i}::int8"), &[])
                    .await?
                    .get(0))
            })
            .await
            .unwrap();
            assert_eq!(n, i as i64);
            largest = largest.max(
                db_run!(db, async |tx| Ok(tx.statements().size()))
                    .await
                    .unwrap(),
            );
        }
        assert!(largest >= STATEMENT_CACHE_CAPACITY, "the cache was used");
        assert!(largest <= STATEMENT_CACHE_CAPACITY, "cached {largest}");
        // Dropped statements were closed on the server too (on the one connection).
        let on_server: i64 = db_run!(db, async |tx| {
            Ok(tx
                .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
                .await?
                .get(0))
        })
        .await
        .unwrap();
        assert!(
            on_server <= STATEMENT_CACHE_CAPACITY as i64 + 1,
            "{on_server} statements prepared on the server"
        );
        assert_eq!(db.open_and_idle(), (1, 1), "one connection, reused");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pooled_connections_run_under_the_statement_timeout_and_migrations_without_it() {
        let url = ScratchPostgres::shared().new_database("db").unwrap();
        // A timeout the URL sets, too short for any migration.
        let url = format!("{url}?options=-c%20statement_timeout%3D1");
        let db = Db::new(
            Config::from_str(&url).unwrap(),
            2,
            Some(Duration::from_millis(1500)),
            Arc::new(ValidationCache::new(0)),
        )
        .unwrap();
        let setting: String = db_run!(db, async |tx| {
            Ok(tx.query_one("SHOW statement_timeout", &[]).await?.get(0))
        })
        .await
        .unwrap();
        assert_eq!(setting, "1500ms", "the store's, not the URL's");
        let e = db_run!(db, async |tx| tx.batch("SELECT pg_sleep(5)").await)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, SessionError::Unavailable(m) if m.contains("statement timeout")),
            "{e:?}"
        );
        assert_eq!(db.open_and_idle(), (1, 1), "the connection serves again");
        db.migrate().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_deadlocked_transaction_is_tried_again() {
        let db = db(2, None);
        db_run!(db, async |tx| {
            tx.batch(
                "CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t VALUES (1, 0), (2, 0)",
            )
            .await
        })
        .await
        .unwrap();
        let tries = std::sync::atomic::AtomicUsize::new(0);
        let both = tokio::sync::Barrier::new(2);
        // Each locks one row, then, once the other holds its row, asks for the other's.
        let crossed = async |first: i32, second: i32| {
            let first_try = std::sync::atomic::AtomicBool::new(true);
            db_write!(db, async |tx| {
                tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tx.execute("UPDATE t SET n = n + 1 WHERE id = $1", &[&first])
                    .await?;
                if first_try.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    both.wait().await;
                }
                tx.execute("UPDATE t SET n = n + 1 WHERE id = $1", &[&second])
                    .await?;
                Ok(())
            })
            .await
        };
        let (a, b) = tokio::join!(crossed(1, 2), crossed(2, 1));
        a.unwrap();
        b.unwrap();
        assert_eq!(
            tries.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "one of the two was rolled back and tried again"
        );
        let total: i64 = db_run!(db, async |tx| Ok(tx
            .query_one("SELECT sum(n)::int8 FROM t", &[])
            .await?
            .get(0)))
        .await
        .unwrap();
        assert_eq!(total, 4, "each transaction's two updates, once");
    }
}
