//! No caller holds the store's connections for long: a statement past the statement timeout is
//! cancelled by the server and its connection serves the next call; a call whose request was
//! dropped has its statement cancelled at once; a display-name filter holds a bounded number of
//! different words.
//!
//! The store's listing is held up here by a lock another connection takes on the sessions table,
//! as a long or stuck query would hold it.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sessions::model::SessionQuery;
use sessions::store::shared::{CallCancel, MAX_NAME_WORDS};
use sessions::store::SessionStore;
use sessions::NewSession;
use store_postgres::scratch::ScratchPostgres;
use store_postgres::store::PostgresOptions;
use store_postgres::PostgresStore;

/// A connection of the test's own, outside the store.
struct Raw {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Raw {
    fn connect(url: &str) -> Raw {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
        });
        Raw { runtime, client }
    }

    fn batch(&self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap();
    }

    fn count(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> i64 {
        self.runtime
            .block_on(self.client.query_one(sql, params))
            .unwrap()
            .get(0)
    }

    /// Holds the sessions table until `ROLLBACK`: every listing waits.
    fn lock_sessions(&self) {
        self.batch("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE");
    }

    /// The backends of this database (other than this one): pid, state, wait, query.
    fn activity(&self) -> Vec<String> {
        self.runtime
            .block_on(self.client.query(
                "SELECT format('%s %s %s %s', pid, state, wait_event, query)
                   FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            ))
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// The backends of this database (other than this one) waiting for a lock. (Asked on a
    /// connection outside any transaction: within one, PostgreSQL answers from a snapshot taken
    /// at its first look.)
    fn waiting_for_a_lock(&self) -> Vec<i32> {
        self.runtime
            .block_on(self.client.query(
                "SELECT pid FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()
                    AND wait_event_type = 'Lock'",
                &[],
            ))
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

/// Whether `check` holds within `limit`, looking every 20 ms.
fn within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A store of one connection on a fresh database, with realm `r` and one session.
fn store(statement_timeout: Option<Duration>) -> (Arc<PostgresStore>, String) {
    let url = ScratchPostgres::shared()
        .new_database("statement_limits")
        .unwrap();
    let store = PostgresStore::open_with_options(
        &url,
        &PostgresOptions {
            max_connections: 1,
            statement_timeout,
        },
    )
    .unwrap();
    store
        .put_realm("r", &Default::default(), "test", Utc::now())
        .unwrap();
    let new = NewSession {
        subject_id: "alice".into(),
        display_name: Some("Alice Smith".into()),
        ..Default::default()
    };
    store.create_session("r", &new, Utc::now()).unwrap();
    (Arc::new(store), url)
}

/// Lists realm `r` on another thread, within `scope` if given; the answer and how long it took
/// arrive on the channel.
fn list_in_background(
    store: &Arc<PostgresStore>,
    scope: Option<CallCancel>,
) -> mpsc::Receiver<(sessions::Result<u64>, Duration)> {
    let (sender, answers) = mpsc::channel();
    let store = store.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        let list = || {
            store
                .query("r", &SessionQuery::default())
                .map(|page| page.total_count)
        };
        let answer = match scope {
            Some(scope) => scope.enter(list),
            None => list(),
        };
        let _ = sender.send((answer, started.elapsed()));
    });
    answers
}

#[test]
fn a_statement_past_its_timeout_is_cancelled_and_frees_its_connection() {
    let (store, url) = store(Some(Duration::from_millis(300)));
    let raw = Raw::connect(&url);
    raw.lock_sessions();
    let answers = list_in_background(&store, None);
    let answered = answers.recv_timeout(Duration::from_secs(10));
    raw.batch("ROLLBACK");
    let (answer, took) =
        answered.expect("the listing ended at its statement timeout, the table still locked");
    let e = answer.expect_err("the listing could not read the locked table");
    assert!(e.to_string().contains("statement timeout"), "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // The store's only connection serves the next call.
    let started = Instant::now();
    assert_eq!(
        store
            .query("r", &SessionQuery::default())
            .unwrap()
            .total_count,
        1
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_call_whose_request_is_dropped_has_its_statement_cancelled_at_once() {
    // No statement timeout: only the cancellation ends the statement.
    let (store, url) = store(None);
    let (raw, observer) = (Raw::connect(&url), Raw::connect(&url));
    raw.lock_sessions();
    let scope = CallCancel::new();
    let request = scope.on_drop();
    let answers = list_in_background(&store, Some(scope));
    let mut waiting = Vec::new();
    assert!(
        within(Duration::from_secs(10), || {
            waiting = observer.waiting_for_a_lock();
            !waiting.is_empty()
        }),
        "the listing reached the database"
    );
    let pid = waiting[0];
    // The request ends (its time limit, or its client went away): its guard is dropped.
    drop(request);
    let (answer, _) = answers
        .recv_timeout(Duration::from_secs(5))
        .expect("the call ended with its request");
    let e = answer.expect_err("a cancelled call has no answer");
    assert!(e.to_string().contains("cancelled"), "{e}");
    // On the server, with the table still locked, the statement was cancelled and its
    // connection closed.
    assert!(
        within(Duration::from_secs(5), || observer.count(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&pid]
        ) == 0),
        "backend {pid} still there: {:?}",
        observer.activity()
    );
    raw.batch("ROLLBACK");
    // The connection given up is replaced.
    assert_eq!(
        store
            .query("r", &SessionQuery::default())
            .unwrap()
            .total_count,
        1
    );
}

#[test]
fn a_call_waiting_for_a_free_connection_stops_waiting_when_cancelled() {
    let (store, url) = store(None);
    let (raw, observer) = (Raw::connect(&url), Raw::connect(&url));
    raw.lock_sessions();
    // The only connection: held by a listing waiting for the lock.
    let holder = list_in_background(&store, None);
    assert!(within(Duration::from_secs(10), || !observer
        .waiting_for_a_lock()
        .is_empty()));
    let scope = CallCancel::new();
    let request = scope.on_drop();
    let waiter = list_in_background(&store, Some(scope));
    std::thread::sleep(Duration::from_millis(200));
    drop(request);
    let (answer, took) = waiter
        .recv_timeout(Duration::from_secs(5))
        .expect("the waiting call ended with its request, not after the pool's 30 s");
    assert!(answer.unwrap_err().to_string().contains("cancelled"));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    raw.batch("ROLLBACK");
    let (held, _) = holder.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(held.unwrap(), 1);
}

#[test]
fn a_name_filter_of_too_many_words_is_a_400_and_repeated_words_count_once() {
    let (store, _) = store(Some(Duration::from_secs(30)));
    let by_name = |name: String| {
        store.query(
            "r",
            &SessionQuery {
                filters: sessions::SessionFilters {
                    display_name: Some(name),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
    };
    // 42 words, of which 2 different ones (display_name is at most 255 bytes).
    let repeated = "smith ALICE Smith ".repeat(14);
    assert_eq!(by_name(repeated).unwrap().total_count, 1);
    let at_limit: Vec<String> = (0..MAX_NAME_WORDS).map(|i| format!("w{i}")).collect();
    assert_eq!(by_name(at_limit.join(" ")).unwrap().total_count, 0);
    let over = format!("{} alice", at_limit.join(" "));
    let e = by_name(over).unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
    assert!(
        e.to_string().contains(&format!("at most {MAX_NAME_WORDS}")),
        "{e}"
    );
}
