//! The store's connections: lost ones (a database restart, an administrator ending them) are
//! replaced, and the store's calls go on.

use chrono::Utc;
use sessions::store::SessionStore;
use sessions::NewSession;
use store_postgres::scratch::ScratchPostgres;
use store_postgres::PostgresStore;

/// Ends every other connection to the database, as a restart of the server would.
fn end_connections(url: &str) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    })
}

#[test]
fn calls_go_on_after_the_database_ends_the_stores_connections() {
    let pg = ScratchPostgres::shared();
    pg.create_database("connections").unwrap();
    let url = pg.url_for("connections");
    let store = PostgresStore::open(&url).unwrap();
    store
        .put_realm("r", &Default::default(), "test", Utc::now())
        .unwrap();
    let new = NewSession {
        subject_id: "alice".into(),
        ..Default::default()
    };
    let created = store.create_session("r", &new, Utc::now()).unwrap();
    assert!(
        end_connections(&url) >= 1,
        "the store had a connection open"
    );
    // Reads and writes both find a working connection again.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let valid = store.validate("r", &created.token, false, Utc::now());
    assert!(valid.unwrap().is_some());
    end_connections(&url);
    std::thread::sleep(std::time::Duration::from_millis(200));
    store.create_session("r", &new, Utc::now()).unwrap();
    assert_eq!(store.get_realm("r").unwrap().session_count, 2);
}
