//! The PostgreSQL store beside the embedded one, measured in one run on the same machine:
//! `cargo run --release -p store-postgres --example bench -- [SESSIONS]` (default 20,000).
//! PostgreSQL is a scratch server with durable settings (fsync and synchronous commit on), on
//! 127.0.0.1; the embedded store is in a temporary directory. Prints a Markdown table.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use sessions::store::{SessionStore, SledStore};
use sessions::{EndSessions, NewSession, RealmSettingsUpdate, SessionQuery};
use store_postgres::scratch::ScratchPostgres;
use store_postgres::PostgresStore;

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

fn measure(store: &dyn SessionStore, sessions: usize) -> Figures {
    let now = Utc::now();
    let long = RealmSettingsUpdate {
        idle_timeout_secs: Some(86_400),
        ..Default::default()
    };
    store.put_realm("bench", &long, "bench", now).unwrap();
    let started = Instant::now();
    let tokens: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    (t..sessions)
                        .step_by(THREADS)
                        .map(|i| {
                            let new = NewSession {
                                subject_id: format!("subject-{}", i % 1000),
                                display_name: Some(format!("Person{i} Smith")),
                                client_ids: vec!["crm".into()],
                                ..Default::default()
                            };
                            store.create_session("bench", &new, now).unwrap().token
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let create_per_s = sessions as f64 / started.elapsed().as_secs_f64();

    let validations = sessions.min(20_000);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let tokens = &tokens;
            scope.spawn(move || {
                for i in (t..validations).step_by(THREADS) {
                    let token = &tokens[(i * 7919) % tokens.len()];
                    assert!(store
                        .validate("bench", token, false, now)
                        .unwrap()
                        .is_some());
                }
            });
        }
    });
    let validate_per_s = validations as f64 / started.elapsed().as_secs_f64();

    let timed = |q: &SessionQuery| {
        let samples = (0..200)
            .map(|_| {
                let started = Instant::now();
                store.query("bench", q).unwrap();
                started.elapsed()
            })
            .collect();
        p50(samples)
    };
    let first_page_p50 = timed(&SessionQuery::default());
    let subject_page_p50 = timed(&SessionQuery {
        filters: sessions::SessionFilters {
            subject_id: Some("subject-7".into()),
            ..Default::default()
        },
        ..Default::default()
    });

    for _ in 0..1000 {
        let new = NewSession {
            subject_id: "bulk".into(),
            ..Default::default()
        };
        store
            .create_session("bench", &new, now + TimeDelta::seconds(1))
            .unwrap();
    }
    let request = EndSessions {
        subject_id: Some("bulk".into()),
        ..Default::default()
    };
    let started = Instant::now();
    let removed = store.end_sessions("bench", &request, "bench", now).unwrap();
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

fn main() {
    let sessions: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("a number of sessions"))
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let sled = measure(&SledStore::open(dir.path()).unwrap(), sessions);
    let pg = ScratchPostgres::start_durable().unwrap();
    let postgres = measure(&PostgresStore::open(&pg.url()).unwrap(), sessions);
    println!("sessions: {sessions}; {THREADS} threads for create and validate\n");
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
