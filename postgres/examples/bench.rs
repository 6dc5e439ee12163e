//! The PostgreSQL store beside the embedded one, measured in one run on the same machine:
//! `cargo run --release -p store-postgres --example bench -- [SESSIONS]` (default 20,000).
//! PostgreSQL is a scratch server with durable settings (fsync and synchronous commit on), on
//! 127.0.0.1; the embedded store is in a temporary directory. Prints a Markdown table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use sessions::store::{SessionStore, SledStore};
use sessions::{EndSessions, NewSession, RealmSettingsUpdate, SessionQuery};
use store_postgres::scratch::ScratchPostgres;
use store_postgres::PostgresStore;

/// Calls in flight at once for create and validate, each in a task of its own.
const THREADS: usize = 2;

/// One backend's figures.
struct Figures {
    create_per_s: f64,
    validate_per_s: f64,
    first_page_p50: Duration,
    subject_page_p50: Duration,
    remove_1000: Duration,
}

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn measure(store: Arc<dyn SessionStore>, sessions: usize) -> Figures {
    let now = Utc::now();
    let long = RealmSettingsUpdate {
        idle_timeout_secs: Some(86_400),
        ..Default::default()
    };
    store.put_realm("bench", &long, "bench", now).await.unwrap();
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tokens = Vec::new();
                for i in (t..sessions).step_by(THREADS) {
                    let new = NewSession {
                        subject_id: format!("subject-{}", i % 1000),
                        display_name: Some(format!("Person{i} Smith")),
                        client_ids: vec!["crm".into()],
                        ..Default::default()
                    };
                    tokens.push(
                        store
                            .create_session("bench", &new, now)
                            .await
                            .unwrap()
                            .token,
                    );
                }
                tokens
            })
        })
        .collect();
    let mut tokens: Vec<String> = Vec::with_capacity(sessions);
    for w in workers {
        tokens.extend(w.await.unwrap());
    }
    let create_per_s = sessions as f64 / started.elapsed().as_secs_f64();

    let validations = sessions.min(20_000);
    let tokens = Arc::new(tokens);
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, tokens) = (store.clone(), tokens.clone());
            tokio::spawn(async move {
                for i in (t..validations).step_by(THREADS) {
                    let token = &tokens[(i * 7919) % tokens.len()];
                    assert!(store
                        .validate("bench", token, false, now)
                        .await
                        .unwrap()
                        .is_some());
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let validate_per_s = validations as f64 / started.elapsed().as_secs_f64();

    let timed = async |q: &SessionQuery| {
        let mut samples = Vec::with_capacity(200);
        for _ in 0..200 {
            let started = Instant::now();
            store.query("bench", q).await.unwrap();
            samples.push(started.elapsed());
        }
        p50(samples)
    };
    let first_page_p50 = timed(&SessionQuery::default()).await;
    let subject_page_p50 = timed(&SessionQuery {
        filters: sessions::SessionFilters {
            subject_id: Some("subject-7".into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;

    for _ in 0..1000 {
        let new = NewSession {
            subject_id: "bulk".into(),
            ..Default::default()
        };
        store
            .create_session("bench", &new, now + TimeDelta::seconds(1))
            .await
            .unwrap();
    }
    let request = EndSessions {
        subject_id: Some("bulk".into()),
        ..Default::default()
    };
    let started = Instant::now();
    let removed = store
        .end_sessions("bench", &request, "bench", now)
        .await
        .unwrap();
    let remove_1000 = started.elapsed();
    assert_eq!(removed.records_deleted, 1000);
    Figures {
        create_per_s,
        validate_per_s,
        first_page_p50,
        subject_page_p50,
        remove_1000,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let sessions: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("a number of sessions"))
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let sled = measure(Arc::new(SledStore::open(dir.path()).unwrap()), sessions).await;
    let pg = ScratchPostgres::start_durable().unwrap();
    let postgres = measure(
        Arc::new(PostgresStore::open(&pg.url()).await.unwrap()),
        sessions,
    )
    .await;
    println!("sessions: {sessions}; {THREADS} tasks for create and validate\n");
    println!("| measure | embedded (sled) | PostgreSQL |");
    println!("|---|---|---|");
    let rate = |f: f64| format!("{f:.0} /s");
    let rows: [(&str, String, String); 5] = [
        (
            "create",
            rate(sled.create_per_s),
            rate(postgres.create_per_s),
        ),
        (
            "validate, refresh=false",
            rate(sled.validate_per_s),
            rate(postgres.validate_per_s),
        ),
        (
            "first page of all (p50)",
            format!("{:.2?}", sled.first_page_p50),
            format!("{:.2?}", postgres.first_page_p50),
        ),
        (
            "subject page (p50)",
            format!("{:.2?}", sled.subject_page_p50),
            format!("{:.2?}", postgres.subject_page_p50),
        ),
        (
            "remove 1,000 sessions of one subject (durable)",
            format!("{:.2?}", sled.remove_1000),
            format!("{:.2?}", postgres.remove_1000),
        ),
    ];
    for (what, a, b) in rows {
        println!("| {what} | {a} | {b} |");
    }
}
