//! Validations answered from memory stay coherent across servers: two stores on one database,
//! as two servers. A session ended, or changed, through one is refused (or seen changed) by the
//! other once PostgreSQL delivers the notification, and by the one that ended it at once; a
//! server that cannot hear notifications answers from the database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sessions::store::SessionStore;
use sessions::{EndSessions, NewSession};
use store_postgres::scratch::ScratchPostgres;
use store_postgres::PostgresStore;

mod common;
use common::run;

async fn two_stores() -> (String, Arc<PostgresStore>, Arc<PostgresStore>) {
    let (url, a) = common::store_with_realm("validation_cache").await;
    let b = Arc::new(PostgresStore::open(&url).await.unwrap());
    (url, Arc::new(a), b)
}

async fn create(store: &PostgresStore, subject: &str) -> String {
    let new = NewSession {
        subject_id: subject.into(),
        client_ids: vec!["web".into()],
        ..Default::default()
    };
    store
        .create_session("r", &new, Utc::now())
        .await
        .unwrap()
        .token
}

async fn valid(store: &PostgresStore, token: &str) -> bool {
    store
        .validate("r", token, false, Utc::now())
        .await
        .unwrap()
        .is_some()
}

/// Validates `token` through `store` until it is refused; answers how long that took, or panics
/// after 5 s.
async fn refused_within(store: &PostgresStore, token: &str) -> Duration {
    let start = Instant::now();
    while valid(store, token).await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still valid 5 s after it ended"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_validations_are_answered_from_memory() {
    let (_, a, _) = two_stores().await;
    let token = create(&a, "alice").await;
    assert!(valid(&a, &token).await, "read from the database, kept");
    let before = a.validations_from_memory();
    for _ in 0..10 {
        assert!(valid(&a, &token).await);
    }
    assert_eq!(a.validations_from_memory() - before, 10);
    // A wrong secret for a kept session is refused, without the database.
    let mut wrong = token.clone().into_bytes();
    let last = wrong.len() - 1;
    wrong[last] = if wrong[last] == b'A' { b'B' } else { b'A' };
    assert!(!valid(&a, std::str::from_utf8(&wrong).unwrap()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_ended_through_one_server_is_refused_by_both() {
    let (_, a, b) = two_stores().await;
    let token = create(&a, "alice").await;
    // Both servers keep it.
    for store in [&a, &b] {
        assert!(valid(store, &token).await);
        assert!(valid(store, &token).await);
    }
    assert!(b.validations_from_memory() > 0);
    assert!(a.logout("r", &token, Utc::now()).await.unwrap());
    assert!(
        !valid(&a, &token).await,
        "the ending server refuses it at once"
    );
    refused_within(&b, &token).await;

    // Ending by filter, through the other server, many at once (more than one notification's
    // worth).
    let tokens = futures::future::join_all((0..450).map(|_| create(&b, "bob"))).await;
    for t in &tokens {
        assert!(valid(&a, t).await && valid(&b, t).await);
    }
    let request = EndSessions {
        subject_id: Some("bob".into()),
        ..Default::default()
    };
    let outcome = b
        .end_sessions("r", &request, "test", Utc::now())
        .await
        .unwrap();
    assert_eq!(outcome.records_deleted, 450);
    for t in &tokens {
        assert!(!valid(&b, t).await, "the ending server refuses it at once");
        refused_within(&a, t).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_added_through_one_server_is_seen_by_the_other() {
    let (_, a, b) = two_stores().await;
    let token = create(&a, "alice").await;
    let session = b.validate("r", &token, false, Utc::now()).await.unwrap();
    let sid = session.unwrap().sid;
    assert!(valid(&b, &token).await, "kept");
    a.add_client("r", &sid, "crm").await.unwrap();
    let start = Instant::now();
    loop {
        let seen = b.validate("r", &token, false, Utc::now()).await.unwrap();
        if seen.unwrap().client_ids.contains(&"crm".to_owned()) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "never seen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_cannot_hear_notifications_answers_from_the_database() {
    let (url, a, _) = two_stores().await;
    let token = create(&a, "alice").await;
    assert!(valid(&a, &token).await);
    assert!(valid(&a, &token).await);
    // The listening connections go (as in a failover), then the session goes behind the
    // store's back, so no notification is sent at all.
    run(
        &url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name LIKE '%: changes'",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    run(&url, "DELETE FROM sessions").await;
    // Deaf, or listening again with what it kept dropped: either way the database answers.
    assert!(!valid(&a, &token).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!valid(&a, &token).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_told_to_keep_nothing_always_asks_the_database() {
    let url = ScratchPostgres::shared()
        .new_database("validation_cache")
        .unwrap();
    let options = store_postgres::store::PostgresOptions {
        validation_cache: 0,
        ..Default::default()
    };
    let a = PostgresStore::open_with_options(&url, &options)
        .await
        .unwrap();
    a.put_realm("r", &Default::default(), "test", Utc::now())
        .await
        .unwrap();
    let token = create(&a, "alice").await;
    assert!(valid(&a, &token).await && valid(&a, &token).await);
    run(&url, "DELETE FROM sessions").await;
    assert!(!valid(&a, &token).await);
    assert_eq!(a.validations_from_memory(), 0);
}
