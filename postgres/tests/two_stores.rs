//! Two stores on one database, as two servers: a quota holds when both create for one subject at
//! once, and two reapers together remove each expired session once.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use sessions::store::SessionStore;
use sessions::{NewSession, RealmSettingsUpdate, SessionError};
use store_postgres::scratch::ScratchPostgres;
use store_postgres::PostgresStore;

async fn two_stores() -> (Arc<PostgresStore>, Arc<PostgresStore>) {
    let url = ScratchPostgres::shared()
        .new_database("two_stores")
        .unwrap();
    (
        Arc::new(PostgresStore::open(&url).await.unwrap()),
        Arc::new(PostgresStore::open(&url).await.unwrap()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quota_holds_when_two_servers_create_for_one_subject_at_once() {
    let (a, b) = two_stores().await;
    let quota = RealmSettingsUpdate {
        max_sessions_per_subject: Some(Some(3)),
        ..Default::default()
    };
    a.put_realm("r", &quota, "test", Utc::now()).await.unwrap();
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let new = NewSession {
                    subject_id: "alice".into(),
                    ..Default::default()
                };
                let mut outcomes = Vec::new();
                for _ in 0..3 {
                    outcomes.push(store.create_session("r", &new, Utc::now()).await.map(drop));
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes: Vec<Result<(), SessionError>> = Vec::new();
    for w in workers {
        outcomes.extend(w.await.unwrap());
    }
    let created = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(created, 3, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .all(|e| matches!(e, SessionError::QuotaExceeded(_))));
    assert_eq!(b.get_realm("r").await.unwrap().session_count, 3);
    assert_eq!(a.check().await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_reapers_at_once_remove_each_expired_session_once() {
    let (a, b) = two_stores().await;
    let short = RealmSettingsUpdate {
        idle_timeout_secs: Some(60),
        backchannel_logout_on_expiry: Some(true),
        ..Default::default()
    };
    let t0 = Utc::now();
    a.put_realm("r", &short, "test", t0).await.unwrap();
    let crm = sessions::ClientRegistration {
        backchannel_logout_uri: Some("https://crm.example.com/logout".into()),
        ..Default::default()
    };
    a.put_client("r", "crm", &crm, "test", t0).await.unwrap();
    for i in 0..600 {
        let new = NewSession {
            subject_id: format!("user{i}"),
            client_ids: vec!["crm".into()],
            ..Default::default()
        };
        a.create_session("r", &new, t0).await.unwrap();
    }
    let later = t0 + TimeDelta::seconds(61);
    let reapers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|store| {
            tokio::spawn(async move {
                let mut total = 0;
                loop {
                    let n = store.reap_expired(later, 50).await.unwrap();
                    if n == 0 {
                        return total;
                    }
                    total += n;
                }
            })
        })
        .collect();
    let mut reaped = 0;
    for r in reapers {
        reaped += r.await.unwrap();
    }
    assert_eq!(reaped, 600, "each expired session reaped once");
    assert_eq!(a.get_realm("r").await.unwrap().session_count, 0);
    let deliveries = b.list_deliveries("r", None, None, 1).await.unwrap();
    assert_eq!(
        deliveries.counts.pending, 600,
        "one logout per expired session"
    );
    assert_eq!(b.check().await.unwrap(), Vec::<String>::new());
}
