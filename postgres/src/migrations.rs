//! The schema as an ordered list of migrations. Each is applied once, in order, inside a
//! transaction that also records it, under an advisory lock so that servers starting together
//! on one database do not race; a database with migrations this build does not know is refused.

use tokio_postgres::Client;

/// The migrations, in order: (version, name, SQL).
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "initial schema",
        include_str!("../migrations/0001_init.sql"),
    ),
    (
        2,
        "administrator roles",
        include_str!("../migrations/0002_admin_roles.sql"),
    ),
    (
        3,
        "activity counters",
        include_str!("../migrations/0003_stats.sql"),
    ),
    (
        4,
        "API key realms",
        include_str!("../migrations/0004_api_key_realms.sql"),
    ),
    (
        5,
        "counter deltas",
        include_str!("../migrations/0005_counter_deltas.sql"),
    ),
    (
        6,
        "session name words",
        include_str!("../migrations/0006_session_name_words.sql"),
    ),
    (
        7,
        "no realm foreign keys on busy tables",
        include_str!("../migrations/0007_no_realm_foreign_keys.sql"),
    ),
    (
        8,
        "session devices",
        include_str!("../migrations/0008_session_devices.sql"),
    ),
    (
        9,
        "ended sessions",
        include_str!("../migrations/0009_ended_sessions.sql"),
    ),
    (
        10,
        "session networks",
        include_str!("../migrations/0010_session_networks.sql"),
    ),
    (
        11,
        "Shared Signals streams",
        include_str!("../migrations/0011_signal_streams.sql"),
    ),
];

/// Key of the advisory lock held while migrating.
const LOCK_KEY: i64 = 0x5e55_1045;

/// What can go wrong while migrating.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("database error: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error(
        "the database is at schema version {found}, newer than this server knows ({known}); \
         run a newer server"
    )]
    Newer { found: i32, known: i32 },
}

/// Brings the database's schema up to date; answers the versions it applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, MigrationError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let applied = apply_pending(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await?;
    applied
}

async fn apply_pending(client: &mut Client) -> Result<Vec<i32>, MigrationError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let current: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(MigrationError::Newer {
            found: current,
            known,
        });
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        if *version == 8 {
            derive_devices(&tx).await?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied schema migration");
        applied.push(*version);
    }
    Ok(applied)
}

/// Fills `sessions.device` from the user agents of the sessions stored before it existed (each
/// distinct agent read once, every session updated in one statement), and their device counts.
async fn derive_devices(tx: &tokio_postgres::Transaction<'_>) -> Result<(), MigrationError> {
    let agents: Vec<String> = tx
        .query(
            "SELECT DISTINCT user_agent FROM sessions WHERE user_agent IS NOT NULL",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let codes: Vec<i32> = agents
        .iter()
        .map(|ua| sessions::Device::of_user_agent(ua).code() as i32)
        .collect();
    tx.execute(
        "UPDATE sessions s SET device = d.code
           FROM unnest($1::text[], $2::integer[]) AS d (user_agent, code)
          WHERE s.user_agent = d.user_agent",
        &[&agents, &codes],
    )
    .await?;
    // Their counts (kind 5: sessions by device kind, browser and OS).
    tx.execute(
        "INSERT INTO counters (realm, kind, key, stripe, count)
         SELECT realm, 5, (device & -65536)::text, 0, count(*) FROM sessions
          WHERE device IS NOT NULL GROUP BY 1, 3",
        &[],
    )
    .await?;
    Ok(())
}
