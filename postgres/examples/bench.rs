//! The PostgreSQL store beside the embedded one, measured in one run on the same machine:
//! `cargo run --release -p store-postgres --example bench -- [SESSIONS]` (default 20,000).
//! PostgreSQL is a scratch server with durable settings (fsync and synchronous commit on), on
//! 127.0.0.1; the embedded store is in a temporary directory. Prints a Markdown table, then, where
//! the scratch server has `pg_stat_statements`, the statements of one more removal by database
//! time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use sessions::grant::{GrantKind, NewGrant};
use sessions::sample::USER_AGENTS;
use sessions::store::{SessionStore, SledStore};
use sessions::{ClientRegistration, EndSessions, NewSession, RealmSettingsUpdate, SessionQuery};
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
    /// `device_type=phone` (two of the five sample agents), counted.
    device_page_p50: Duration,
    /// `device_type=phone` of one subject, counted.
    device_subject_p50: Duration,
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
                        user_agent: Some(USER_AGENTS[i % USER_AGENTS.len()].into()),
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

    let phones = |subject: Option<&str>| SessionQuery {
        filters: sessions::SessionFilters {
            device_type: Some("phone".into()),
            subject_id: subject.map(Into::into),
            ..Default::default()
        },
        ..Default::default()
    };
    let device_page_p50 = timed(&phones(None)).await;
    let device_subject_p50 = timed(&phones(Some("subject-7"))).await;

    bulk(&*store, "bulk", now).await;
    let started = Instant::now();
    let removed = end_subject(&*store, "bulk", now).await;
    let remove_1000 = started.elapsed();
    assert_eq!(removed.records_deleted, 1000);
    Figures {
        create_per_s,
        validate_per_s,
        first_page_p50,
        subject_page_p50,
        device_page_p50,
        device_subject_p50,
        remove_1000,
    }
}

/// The bytes PostgreSQL holds per ended-session history row: the table with its indexes.
async fn history_bytes(url: &str) -> String {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("VACUUM ANALYZE ended_sessions")
        .await
        .unwrap();
    // The table's and its indexes' data files (their free-space and visibility maps, a few
    // fixed pages each, left out: per row they vanish as the table grows).
    let row = client
        .query_one(
            "SELECT sum(pg_relation_size(oid, 'main'))::int8,
                    (SELECT count(*) FROM ended_sessions)
               FROM pg_class
              WHERE oid = 'ended_sessions'::regclass
                 OR oid IN (SELECT indexrelid FROM pg_index
                             WHERE indrelid = 'ended_sessions'::regclass)",
            &[],
        )
        .await
        .unwrap();
    let (bytes, rows): (i64, i64) = (row.get(0), row.get(1));
    // Each relation's share per row.
    let parts = client
        .query(
            "SELECT c.relname, pg_relation_size(c.oid, 'main')::int8
               FROM pg_class c
              WHERE c.oid = 'ended_sessions'::regclass
                 OR c.oid IN (SELECT indexrelid FROM pg_index
                               WHERE indrelid = 'ended_sessions'::regclass)
              ORDER BY 2 DESC",
            &[],
        )
        .await
        .unwrap();
    let parts: Vec<String> = parts
        .iter()
        .map(|r| {
            let (name, size): (String, i64) = (r.get(0), r.get(1));
            format!("{name} {}", size / rows.max(1))
        })
        .collect();
    format!(
        "{} B on disk ({rows} rows: {})",
        bytes / rows.max(1),
        parts.join(", ")
    )
}

/// Ends every session left in the bench realm (each with its client notified), so the history
/// holds as many entries as the run created sessions.
async fn end_everything(store: &dyn SessionStore) {
    let all = sessions::EndAllSessions::default();
    store
        .end_all_sessions("bench", &all, "bench", Utc::now())
        .await
        .unwrap();
}

/// The clients of the bulk sessions, each with a back-channel logout URI.
const BULK_CLIENTS: [&str; 2] = ["crm", "web"];

/// Stores 1,000 sessions of `subject` in two clients, a refresh token per session and client, and
/// the subject's consent to each client: what a removal with every flag revokes and notifies.
async fn bulk(store: &dyn SessionStore, subject: &str, now: chrono::DateTime<Utc>) {
    for client in BULK_CLIENTS {
        let registration = ClientRegistration {
            backchannel_logout_uri: Some(format!("http://127.0.0.1:9/{client}/logout")),
            ..Default::default()
        };
        store
            .put_client("bench", client, &registration, "bench", now)
            .await
            .unwrap();
    }
    let grant = |kind, sid: Option<&str>, client: &str| NewGrant {
        kind,
        subject_id: subject.into(),
        sid: sid.map(str::to_owned),
        client_id: client.into(),
        expires_at: now + TimeDelta::days(30),
        // A refresh token carries its (secret) token; a consent none.
        token: (kind == GrantKind::RefreshToken).then(|| uuid::Uuid::new_v4().simple().to_string()),
        scopes: vec!["openid".into()],
    };
    for client in BULK_CLIENTS {
        let consent = grant(GrantKind::Consent, None, client);
        store.create_grant("bench", &consent, now).await.unwrap();
    }
    for _ in 0..1000 {
        let new = NewSession {
            subject_id: subject.into(),
            client_ids: BULK_CLIENTS.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        };
        let created = store
            .create_session("bench", &new, now + TimeDelta::seconds(1))
            .await
            .unwrap();
        for client in BULK_CLIENTS {
            let token = grant(GrantKind::RefreshToken, Some(&created.session.sid), client);
            store.create_grant("bench", &token, now).await.unwrap();
        }
    }
}

/// Ends every session of `subject` with every flag: records deleted, tokens and consents
/// revoked, back-channel logouts queued.
async fn end_subject(
    store: &dyn SessionStore,
    subject: &str,
    now: chrono::DateTime<Utc>,
) -> sessions::EndOutcome {
    let request = EndSessions {
        subject_id: Some(subject.into()),
        ..Default::default()
    };
    store
        .end_sessions("bench", &request, "bench", now)
        .await
        .unwrap()
}

/// One more removal on `store`, with PostgreSQL's statement statistics reset before it: prints
/// its statements by database time.
async fn profile_removal(store: &PostgresStore, url: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let now = Utc::now();
    bulk(store, "profiled", now).await;
    client
        .batch_execute(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let removed = end_subject(store, "profiled", now).await;
    let took = started.elapsed();
    println!(
        "\nOne more removal on PostgreSQL: {} sessions, {} tokens, {} logouts queued in {took:.2?}; \
         its statements by database time:\n",
        removed.records_deleted, removed.tokens_revoked, removed.clients_notified
    );
    println!("| ms | calls | statement |\n|---:|---:|---|");
    let rows = client
        .query(
            "SELECT round(total_exec_time::numeric, 2)::text, calls,
                    left(regexp_replace(query, '\\s+', ' ', 'g'), 100)
               FROM pg_stat_statements
              WHERE query NOT LIKE '%pg_stat_statements%'
              ORDER BY total_exec_time DESC LIMIT 12",
            &[],
        )
        .await
        .unwrap();
    for r in rows {
        let (ms, calls, sql): (String, i64, String) = (r.get(0), r.get(1), r.get(2));
        println!("| {ms} | {calls} | `{sql}` |");
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let sessions: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("a number of sessions"))
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let sled_store = Arc::new(SledStore::open(dir.path()).unwrap());
    let sled = measure(sled_store.clone(), sessions).await;
    end_everything(&*sled_store).await;
    let (entries, bytes) = sled_store.ended_history_bytes().unwrap();
    let sled_history = format!(
        "{} B as written ({entries} entries)",
        bytes / entries.max(1)
    );
    let pg = ScratchPostgres::start_durable().unwrap();
    let pg_store = Arc::new(PostgresStore::open(&pg.url()).await.unwrap());
    let postgres = measure(pg_store.clone(), sessions).await;
    end_everything(&*pg_store).await;
    let pg_history = history_bytes(&pg.url()).await;
    println!("sessions: {sessions}; {THREADS} tasks for create and validate\n");
    println!("| measure | embedded (sled) | PostgreSQL |");
    println!("|---|---|---|");
    let rate = |f: f64| format!("{f:.0} /s");
    let rows: [(&str, String, String); 8] = [
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
            "remove 1,000 sessions of one subject, 2,000 tokens, 2,000 logouts (durable)",
            format!("{:.2?}", sled.remove_1000),
            format!("{:.2?}", postgres.remove_1000),
        ),
        (
            "ended-session history, per ended session",
            sled_history,
            pg_history,
        ),
        (
            "device filter alone, first page with its count (p50)",
            format!("{:.2?}", sled.device_page_p50),
            format!("{:.2?}", postgres.device_page_p50),
        ),
        (
            "device filter with a subject, first page with its count (p50)",
            format!("{:.2?}", sled.device_subject_p50),
            format!("{:.2?}", postgres.device_subject_p50),
        ),
    ];
    for (what, a, b) in rows {
        println!("| {what} | {a} | {b} |");
    }
    if pg.has_statement_statistics() {
        profile_removal(&pg_store, &pg.url()).await;
    }
}
