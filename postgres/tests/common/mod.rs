//! What the PostgreSQL store's tests share: a connection of the test's own beside the store's,
//! and a store with realm `r` on a fresh database of the shared scratch server. (Each test file
//! uses some of it.)
#![allow(dead_code)]

use chrono::Utc;
use sessions::store::SessionStore;
use store_postgres::scratch::ScratchPostgres;
use store_postgres::PostgresStore;

/// A connection of its own to `url`, its connection task on the test's runtime.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The one number `sql` answers, on a connection of its own to `url`.
pub async fn count(url: &str, sql: &str) -> i64 {
    connect(url).await.query_one(sql, &[]).await.unwrap().get(0)
}

/// Runs `sql` (statements without parameters) on a connection of its own to `url`.
pub async fn run(url: &str, sql: &str) {
    connect(url).await.batch_execute(sql).await.unwrap();
}

/// A fresh database named after `prefix` (its URL), and a store on it with realm `r`.
pub async fn store_with_realm(prefix: &str) -> (String, PostgresStore) {
    let url = ScratchPostgres::shared().new_database(prefix).unwrap();
    let store = PostgresStore::open(&url).await.unwrap();
    store
        .put_realm("r", &Default::default(), "test", Utc::now())
        .await
        .unwrap();
    (url, store)
}
