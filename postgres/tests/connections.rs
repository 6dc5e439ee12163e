//! The store's connections: lost ones (a database restart, an administrator ending them) are
//! replaced, and the store's calls go on.

use std::time::Duration;

use chrono::Utc;
use sessions::store::SessionStore;
use sessions::NewSession;

mod common;
use common::count;

/// Ends every other connection to the database, as a restart of the server would; answers how
/// many it ended.
async fn end_connections(url: &str) -> i64 {
    let sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()";
    count(url, sql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_go_on_after_the_database_ends_the_stores_connections() {
    let (url, store) = common::store_with_realm("connections").await;
    let new = NewSession {
        subject_id: "alice".into(),
        ..Default::default()
    };
    let created = store.create_session("r", &new, Utc::now()).await.unwrap();
    assert!(
        end_connections(&url).await >= 2,
        "the store had a pooled connection and its listening one open"
    );
    // Reads and writes both find a working connection again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let valid = store.validate("r", &created.token, false, Utc::now()).await;
    assert!(valid.unwrap().is_some());
    end_connections(&url).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.create_session("r", &new, Utc::now()).await.unwrap();
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 2);
}

/// The store's backends on the database: its pool's and its listening connection.
async fn store_backends(url: &str) -> i64 {
    let sql = "SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND application_name LIKE 'sessions%'";
    count(url, sql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_store_closes_its_connections_on_the_runtime_that_goes_on() {
    let (url, store) = common::store_with_realm("connections").await;
    assert!(store_backends(&url).await >= 2, "pooled and listening");
    drop(store);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while store_backends(&url).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped store's connections stayed open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
