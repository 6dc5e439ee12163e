//! The schema's migrations against a real PostgreSQL server started for the test.

use store_postgres::migrations::{migrate, MigrationError, MIGRATIONS};
use store_postgres::scratch::ScratchPostgres;

mod common;
use common::connect;

/// Brings an empty database to schema version `version`, as a server of that version left it.
async fn at_version(client: &tokio_postgres::Client, version: usize) {
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());",
        )
        .await
        .unwrap();
    for (version, name, sql) in &MIGRATIONS[..version] {
        client.batch_execute(sql).await.unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_once_in_order_even_from_two_servers_at_once() {
    let pg = ScratchPostgres::start().unwrap();
    pg.create_database("sessions").unwrap();
    let url = pg.url_for("sessions");
    let (mut a, mut b) = (connect(&url).await, connect(&url).await);
    let (ra, rb) = tokio::join!(migrate(&mut a), migrate(&mut b));
    let mut applied: Vec<i32> = ra.unwrap().into_iter().chain(rb.unwrap()).collect();
    applied.sort();
    let all: Vec<i32> = MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(applied, all, "each migration applied exactly once");
    assert!(
        migrate(&mut a).await.unwrap().is_empty(),
        "nothing left to apply"
    );

    // Every table of a realm's data is keyed by the realm first.
    let rows = a
        .query(
            "SELECT tc.table_name, kcu.column_name
               FROM information_schema.table_constraints tc
               JOIN information_schema.key_column_usage kcu
                 ON tc.constraint_name = kcu.constraint_name AND kcu.ordinal_position = 1
              WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public'",
            &[],
        )
        .await
        .unwrap();
    let realm_first: Vec<String> = rows
        .iter()
        .filter(|r| r.get::<_, String>(1) == "realm")
        .map(|r| r.get(0))
        .collect();
    for table in [
        "realms",
        "sessions",
        "session_clients",
        "session_words",
        "counters",
        "clients",
        "grants",
        "deliveries",
        "audit",
        "stats",
    ] {
        assert!(
            realm_first.iter().any(|t| t == table),
            "{table} is keyed by realm first"
        );
    }

    // Clients keep their realm's foreign key; the busy tables dropped theirs (migration 7: the
    // store reads the realm before every write, and realms are never deleted).
    let orphan = a
        .batch_execute(
            "INSERT INTO clients (realm, client_id, registration) VALUES ('nowhere', 'web', '{}')",
        )
        .await;
    assert!(orphan.is_err(), "a client was stored in no realm");
    let keyed: Vec<String> = a
        .query(
            "SELECT conrelid::regclass::text FROM pg_constraint
              WHERE contype = 'f' AND confrelid = 'realms'::regclass ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keyed, ["clients"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_of_a_newer_schema_is_refused() {
    let pg = ScratchPostgres::start().unwrap();
    let mut client = connect(&pg.url()).await;
    migrate(&mut client).await.unwrap();
    client
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')",
            &[],
        )
        .await
        .unwrap();
    match migrate(&mut client).await {
        Err(MigrationError::Newer { found: 999, .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn administrators_stored_before_roles_existed_keep_every_right() {
    let pg = ScratchPostgres::start().unwrap();
    let mut client = connect(&pg.url()).await;
    // A database at schema version 1, with an administrator in it.
    at_version(&client, 1).await;
    client
        .batch_execute(
            "INSERT INTO admins (username, password_hash, created_at)
                  VALUES ('root', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$h', now())",
        )
        .await
        .unwrap();
    assert!(migrate(&mut client).await.unwrap().contains(&2));
    let role: String = client
        .query_one("SELECT role FROM admins WHERE username = 'root'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(role, "admin");
    let unknown = client
        .batch_execute("UPDATE admins SET role = 'superuser'")
        .await;
    assert!(unknown.is_err(), "only the three roles are stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_stored_before_keys_had_realms_reach_every_realm() {
    let pg = ScratchPostgres::start().unwrap();
    let mut client = connect(&pg.url()).await;
    // A database at schema version 3, with an API key in it.
    at_version(&client, 3).await;
    client
        .batch_execute(
            "INSERT INTO api_keys (name, scopes, created_at, hash)
                  VALUES ('old', '{sessions:issue}', now(), decode(repeat('ab', 32), 'hex'))",
        )
        .await
        .unwrap();
    assert!(migrate(&mut client).await.unwrap().contains(&4));
    let realms: Option<Vec<String>> = client
        .query_one("SELECT realms FROM api_keys WHERE name = 'old'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(realms, None, "an old key reaches every realm");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_stored_before_devices_existed_get_the_device_of_their_user_agent() {
    let pg = ScratchPostgres::start().unwrap();
    let mut client = connect(&pg.url()).await;
    // A database at schema version 7, with sessions of two user agents and one without.
    at_version(&client, 7).await;
    let firefox =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                  (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
    client
        .execute(
            "INSERT INTO realms (realm, id, settings, created_at) VALUES ('r', 1, '{}', now());
             ",
            &[],
        )
        .await
        .unwrap();
    for (i, agent) in [Some(firefox), Some(iphone), Some(firefox), None]
        .iter()
        .enumerate()
    {
        client
            .execute(
                "INSERT INTO sessions (realm, sid, subject_id, created_at, last_access_at,
                                       idle_expires_at, expires_at, user_agent, token_hash)
                 VALUES ('r', gen_random_uuid(), $1, now(), now(), now(), now(), $2, '\\x00')",
                &[&format!("s{i}"), agent],
            )
            .await
            .unwrap();
    }
    assert!(migrate(&mut client).await.unwrap().contains(&8));
    let rows = client
        .query(
            "SELECT subject_id, device FROM sessions ORDER BY subject_id",
            &[],
        )
        .await
        .unwrap();
    let devices: Vec<(String, Option<i32>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let code = |ua| Some(sessions::Device::of_user_agent(ua).code() as i32);
    assert_eq!(
        devices,
        vec![
            ("s0".into(), code(firefox)),
            ("s1".into(), code(iphone)),
            ("s2".into(), code(firefox)),
            ("s3".into(), None),
        ]
    );
    let counted: Vec<(String, i64)> = client
        .query(
            "SELECT key, count FROM counters WHERE kind = 5 ORDER BY count",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let key = |ua| ((sessions::Device::of_user_agent(ua).counted_code()) as i32).to_string();
    assert_eq!(counted, vec![(key(iphone), 1), (key(firefox), 2)]);
}
