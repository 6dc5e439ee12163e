//! No caller holds the store's connections for long: a statement past the statement timeout is
//! cancelled by the server and its connection serves the next call; a call whose future is
//! dropped (its request timed out, its client went away) has its statement cancelled on the
//! server at once and its connection closed, and a call waiting for a free connection simply
//! stops waiting; a display-name filter holds a bounded number of different words.
//!
//! The store's statements are held up here by a lock another connection takes on the sessions
//! table, as a long or stuck query would hold them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sessions::model::SessionQuery;
use sessions::store::shared::MAX_NAME_WORDS;
use sessions::store::SessionStore;
use sessions::NewSession;
use store_postgres::scratch::ScratchPostgres;
use store_postgres::store::PostgresOptions;
use store_postgres::PostgresStore;

/// A connection of the test's own, outside the store.
struct Raw(tokio_postgres::Client);

impl Raw {
    async fn connect(url: &str) -> Raw {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        Raw(client)
    }

    async fn batch(&self, sql: &str) {
        self.0.batch_execute(sql).await.unwrap();
    }

    async fn count(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> i64 {
        self.0.query_one(sql, params).await.unwrap().get(0)
    }

    /// Holds the sessions table until `ROLLBACK`: every statement on it waits.
    async fn lock_sessions(&self) {
        self.batch("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
            .await;
    }

    /// The backends of this database (other than this one): pid, state, wait, query.
    async fn activity(&self) -> Vec<String> {
        self.0
            .query(
                "SELECT format('%s %s %s %s', pid, state, wait_event, query)
                   FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// The backends of this database (other than this one) waiting for a lock. (Asked on a
    /// connection outside any transaction: within one, PostgreSQL answers from a snapshot taken
    /// at its first look.)
    async fn waiting_for_a_lock(&self) -> Vec<i32> {
        self.0
            .query(
                "SELECT pid FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()
                    AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Whether backend `pid` is still there.
    async fn backend_exists(&self, pid: i32) -> bool {
        self.count(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
            > 0
    }
}

/// Whether `check` holds within `limit`, looking every 20 ms.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The one backend waiting for a lock, once there is one (within 10 s).
async fn waiting_backend(observer: &Raw) -> i32 {
    let mut waiting = Vec::new();
    assert!(
        within(Duration::from_secs(10), async || {
            waiting = observer.waiting_for_a_lock().await;
            !waiting.is_empty()
        })
        .await,
        "a statement of the store reached the database: {:?}",
        observer.activity().await
    );
    assert_eq!(waiting.len(), 1, "{:?}", observer.activity().await);
    waiting[0]
}

/// A store of one connection on a fresh database, with realm `r` and one session.
/// Asserts that backend `pid` is gone from the server within 5 s (its statement cancelled, its
/// connection closed).
async fn assert_backend_gone(observer: &Raw, pid: i32) {
    assert!(
        within(Duration::from_secs(5), async || !observer
            .backend_exists(pid)
            .await)
        .await,
        "backend {pid} still there: {:?}",
        observer.activity().await
    );
}

async fn store(statement_timeout: Option<Duration>) -> (Arc<PostgresStore>, String) {
    let url = ScratchPostgres::shared()
        .new_database("statement_limits")
        .unwrap();
    let store = PostgresStore::open_with_options(
        &url,
        &PostgresOptions {
            max_connections: 1,
            statement_timeout,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    store
        .put_realm("r", &Default::default(), "test", Utc::now())
        .await
        .unwrap();
    store
        .create_session("r", &alice(), Utc::now())
        .await
        .unwrap();
    (Arc::new(store), url)
}

fn alice() -> NewSession {
    NewSession {
        subject_id: "alice".into(),
        display_name: Some("Alice Smith".into()),
        ..Default::default()
    }
}

/// How many sessions a listing of realm `r` counts; fails the test if it takes 5 s (a pool
/// pinned by an abandoned call would make it wait for its 30 s).
async fn listed(store: &PostgresStore) -> u64 {
    tokio::time::timeout(
        Duration::from_secs(5),
        store.query("r", &SessionQuery::default()),
    )
    .await
    .expect("the store had a free connection")
    .unwrap()
    .total_count
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statement_past_its_timeout_is_cancelled_and_frees_its_connection() {
    let (store, url) = store(Some(Duration::from_millis(300))).await;
    let raw = Raw::connect(&url).await;
    raw.lock_sessions().await;
    let started = Instant::now();
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        store.query("r", &SessionQuery::default()),
    )
    .await;
    let took = started.elapsed();
    raw.batch("ROLLBACK").await;
    let answer =
        answered.expect("the listing ended at its statement timeout, the table still locked");
    let e = answer.expect_err("the listing could not read the locked table");
    assert!(e.to_string().contains("statement timeout"), "{e}");
    assert_eq!(e.status(), 503, "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // The store's only connection serves the next call.
    assert_eq!(listed(&store).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_whose_future_is_dropped_has_its_statement_cancelled_at_once() {
    // No statement timeout: only the cancellation ends the statement.
    let (store, url) = store(None).await;
    let (raw, observer) = (Raw::connect(&url).await, Raw::connect(&url).await);
    raw.lock_sessions().await;
    // The request's time limit ends the call while its statement waits for the lock.
    let all = SessionQuery::default();
    let (answer, pid) = tokio::join!(
        tokio::time::timeout(Duration::from_millis(500), store.query("r", &all)),
        waiting_backend(&observer),
    );
    assert!(
        answer.is_err(),
        "the call could not end before its time limit"
    );
    // On the server, with the table still locked, the statement was cancelled and its
    // connection closed (a backend waiting for a lock notices neither a closed connection nor
    // anything else but a cancel request).
    assert_backend_gone(&observer, pid).await;
    assert!(observer.waiting_for_a_lock().await.is_empty());
    raw.batch("ROLLBACK").await;
    // The connection given up is replaced: the one-connection pool is not pinned.
    assert_eq!(listed(&store).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_whose_future_is_dropped_is_rolled_back_and_its_connection_closed() {
    let (store, url) = store(None).await;
    let (raw, observer) = (Raw::connect(&url).await, Raw::connect(&url).await);
    raw.lock_sessions().await;
    let new = alice();
    let (answer, pid) = tokio::join!(
        tokio::time::timeout(
            Duration::from_millis(500),
            store.create_session("r", &new, Utc::now())
        ),
        waiting_backend(&observer),
    );
    assert!(
        answer.is_err(),
        "the call could not end before its time limit"
    );
    assert_backend_gone(&observer, pid).await;
    raw.batch("ROLLBACK").await;
    // Nothing of the abandoned transaction stayed: still the one session, counted once.
    assert_eq!(listed(&store).await, 1);
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 1);
    assert_eq!(
        observer.count("SELECT count(*) FROM sessions", &[]).await,
        1
    );
    assert_eq!(store.check().await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_waiting_for_a_free_connection_stops_waiting_when_dropped() {
    let (store, url) = store(None).await;
    let (raw, observer) = (Raw::connect(&url).await, Raw::connect(&url).await);
    raw.lock_sessions().await;
    // The only connection: held by a listing waiting for the lock.
    let holder = tokio::spawn({
        let store = store.clone();
        async move { listed(&store).await }
    });
    let pid = waiting_backend(&observer).await;
    let started = Instant::now();
    let waiter = tokio::time::timeout(
        Duration::from_millis(200),
        store.query("r", &SessionQuery::default()),
    )
    .await;
    let took = started.elapsed();
    assert!(waiter.is_err(), "no connection was free");
    assert!(
        took < Duration::from_secs(2),
        "the waiting call ended with its time limit, not after the pool's 30 s: {took:?}"
    );
    // The holder's statement was left alone.
    assert!(observer.backend_exists(pid).await);
    raw.batch("ROLLBACK").await;
    assert_eq!(holder.await.unwrap(), 1);
    assert_eq!(listed(&store).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_filter_of_too_many_words_is_a_400_and_repeated_words_count_once() {
    let (store, _) = store(Some(Duration::from_secs(30))).await;
    let by_name = async |name: String| {
        store
            .query(
                "r",
                &SessionQuery {
                    filters: sessions::SessionFilters {
                        display_name: Some(name),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await
    };
    // 42 words, of which 2 different ones (display_name is at most 255 bytes).
    let repeated = "smith ALICE Smith ".repeat(14);
    assert_eq!(by_name(repeated).await.unwrap().total_count, 1);
    let at_limit: Vec<String> = (0..MAX_NAME_WORDS).map(|i| format!("w{i}")).collect();
    assert_eq!(by_name(at_limit.join(" ")).await.unwrap().total_count, 0);
    let over = format!("{} alice", at_limit.join(" "));
    let e = by_name(over).await.unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
    assert!(
        e.to_string().contains(&format!("at most {MAX_NAME_WORDS}")),
        "{e}"
    );
}
