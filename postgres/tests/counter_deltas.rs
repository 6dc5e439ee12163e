//! Counts are exact whether their deltas are folded yet or not: creates append deltas, a
//! background step folds them into the counters, and a count reads both at once.

use std::time::{Duration, Instant};

use chrono::Utc;
use sessions::store::SessionStore;
use sessions::{NewSession, SessionFilters, SessionQuery};
use store_postgres::PostgresStore;

mod common;
use common::count;

/// How many sessions of realm `r` the filters match, as a listing counts them.
async fn total(store: &PostgresStore, filters: &SessionFilters) -> u64 {
    let query = SessionQuery {
        filters: filters.clone(),
        ..Default::default()
    };
    store.query("r", &query).await.unwrap().total_count
}

#[tokio::test(flavor = "multi_thread")]
async fn counts_are_exact_before_and_after_their_deltas_are_folded() {
    let (url, a) = common::store_with_realm("counter_deltas").await;
    let b = PostgresStore::open(&url).await.unwrap();
    let new = |i: usize| NewSession {
        subject_id: format!("user{}", i % 7),
        display_name: Some(format!("Alice Smith{i}")),
        client_ids: vec!["web".into()],
        ..Default::default()
    };
    // Two servers create at once, each folding meanwhile; every count is read right after.
    let creates = (0..200).map(|i| {
        let store = if i % 2 == 0 { &a } else { &b };
        async move {
            store
                .create_session("r", &new(i), Utc::now())
                .await
                .unwrap()
        }
    });
    futures::future::join_all(creates).await;
    let by_name = SessionFilters {
        display_name: Some("smi".into()),
        ..Default::default()
    };
    let by_subject = SessionFilters {
        subject_id: Some("user3".into()),
        ..Default::default()
    };
    assert_eq!(a.get_realm("r").await.unwrap().session_count, 200);
    assert_eq!(total(&b, &by_name).await, 200);
    assert_eq!(total(&a, &by_subject).await, 29);
    // The deltas are folded within moments, and the counts stay the same.
    let start = Instant::now();
    while count(&url, "SELECT count(*) FROM counter_deltas").await > 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "never folded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(count(&url, "SELECT count(*) FROM counters").await > 0);
    assert_eq!(b.get_realm("r").await.unwrap().session_count, 200);
    assert_eq!(total(&a, &by_name).await, 200);
    assert_eq!(total(&b, &by_subject).await, 29);
    assert_eq!(a.check().await.unwrap(), Vec::<String>::new());
}
