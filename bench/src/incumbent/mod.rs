//! The incumbent: Duende IdentityServer's server-side sessions (its `ServerSideSessions` and
//! `PersistedGrants` tables, indexes and SQL) on a scratch PostgreSQL 15 with durable settings,
//! loaded with the same data set by `COPY`, served by [`endpoint`].

pub mod endpoint;
pub mod store;
pub mod ticket;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::SinkExt;
use store_postgres::scratch::ScratchPostgres;

use crate::dataset::{expired_session, Dataset, SeedGrant, SeedSession, IDLE_TIMEOUT};

const DATABASE: &str = "duende";
const TABLE_SQL: &str = include_str!("table.sql");
const INDEXES_SQL: &str = include_str!("indexes.sql");
/// Rows per `COPY` message.
const COPY_CHUNK: usize = 2000;

/// A scratch PostgreSQL holding Duende's table; stopped and deleted when dropped.
pub struct Incumbent {
    client: tokio_postgres::Client,
    runtime: tokio::runtime::Runtime,
    // Dropped last: the connection above goes first.
    postgres: ScratchPostgres,
}

impl Incumbent {
    /// Starts PostgreSQL (fsync and synchronous commit on, as in production) and creates the
    /// tables.
    pub fn start() -> Result<Incumbent, String> {
        let postgres = ScratchPostgres::start_durable().map_err(|e| e.to_string())?;
        postgres
            .create_database(DATABASE)
            .map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let client = runtime.block_on(connect(&postgres.url_for(DATABASE)))?;
        let incumbent = Incumbent {
            client,
            runtime,
            postgres,
        };
        incumbent.execute(TABLE_SQL)?;
        Ok(incumbent)
    }

    /// Stops PostgreSQL, runs `between` (the page cache is dropped there), starts it again and
    /// reconnects.
    pub fn restart_with(&mut self, between: impl FnOnce()) -> Result<(), String> {
        self.postgres
            .restart_with(between)
            .map_err(|e| e.to_string())?;
        self.client = self.runtime.block_on(connect(&self.url()))?;
        Ok(())
    }

    /// The database's connection string.
    pub fn url(&self) -> String {
        self.postgres.url_for(DATABASE)
    }

    /// Creates another database on the same server (our server's, on PostgreSQL); answers its
    /// connection string.
    pub fn another_database(&self, name: &str) -> Result<String, String> {
        self.postgres
            .create_database(name)
            .map_err(|e| e.to_string())?;
        Ok(self.postgres.url_for(name))
    }

    /// Bytes of a database of this server, everything in it included.
    pub fn database_bytes(&self, name: &str) -> Result<u64, String> {
        let bytes: i64 = self.query_one("SELECT pg_database_size($1)", &[&name])?;
        Ok(bytes as u64)
    }

    /// The server's port (to find its processes).
    pub fn port(&self) -> u16 {
        self.postgres.port()
    }

    /// Loads the data set's sessions in `Id` order and its grants, builds the indexes and
    /// vacuums, as tables that have been in use would be.
    pub fn load(&self, data: &Dataset) -> Result<(), String> {
        self.copy_sessions((0..data.size).map(|i| data.session(i)))?;
        self.copy(GRANTS_COPY, data.grants().map(|g| grant_fields(&g)))?;
        self.execute(INDEXES_SQL)?;
        self.execute(r#"VACUUM ANALYZE "ServerSideSessions", "PersistedGrants""#)
    }

    /// Adds `count` sessions that expired an hour before `now`, for the cleanup job.
    pub fn load_expired(&self, count: usize, now: DateTime<Utc>) -> Result<(), String> {
        self.copy_sessions((0..count).map(|i| expired_session(i, now)))?;
        self.execute(r#"VACUUM ANALYZE "ServerSideSessions""#)
    }

    /// Bytes of the sessions and grants tables with their indexes and TOAST data.
    pub fn table_bytes(&self) -> Result<u64, String> {
        let bytes: i64 = self.query_one(
            r#"SELECT pg_total_relation_size('"ServerSideSessions"') + pg_total_relation_size('"PersistedGrants"')"#,
            &[],
        )?;
        Ok(bytes as u64)
    }

    /// Rows of the notifications table (what the removals recorded).
    pub fn notifications(&self) -> Result<u64, String> {
        let rows: i64 = self.query_one(
            r#"SELECT count(*) FROM "BackChannelLogoutNotifications""#,
            &[],
        )?;
        Ok(rows as u64)
    }

    /// The results token Duende hands out with page `page - 1` (1-based), which asks for page
    /// `page`: `"first,last"` of that page's ids. `None` for the first page.
    pub fn results_token_before(&self, page: usize) -> Result<Option<String>, String> {
        if page <= 1 {
            return Ok(None);
        }
        let id_at = |offset: i64| -> Result<i64, String> {
            self.query_one(
                r#"SELECT "Id" FROM "ServerSideSessions" ORDER BY "Id" OFFSET $1 LIMIT 1"#,
                &[&offset],
            )
        };
        let previous = (page - 2) as i64 * 25;
        Ok(Some(format!(
            "{},{}",
            id_at(previous)?,
            id_at(previous + 24)?
        )))
    }

    fn execute(&self, sql: &str) -> Result<(), String> {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .map_err(|e| format!("{sql}: {}", pg_error(e)))
    }

    fn query_one<T: for<'a> tokio_postgres::types::FromSql<'a>>(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<T, String> {
        self.runtime
            .block_on(self.client.query_one(sql, params))
            .map(|r| r.get(0))
            .map_err(|e| format!("{sql}: {}", pg_error(e)))
    }

    /// `COPY`s sessions into their table, each expiring [`IDLE_TIMEOUT`] after its creation.
    fn copy_sessions(&self, sessions: impl Iterator<Item = SeedSession>) -> Result<(), String> {
        self.copy(
            SESSIONS_COPY,
            sessions.map(|s| {
                let created = timestamp(s.created);
                let expires = timestamp(s.created + IDLE_TIMEOUT);
                [
                    Some(s.key),
                    Some("idsrv".into()),
                    Some(s.subject_id),
                    Some(s.session_id),
                    Some(s.display_name),
                    Some(created.clone()),
                    Some(created),
                    Some(expires),
                    Some(s.ticket),
                ]
            }),
        )
    }

    /// Runs `statement` (a `COPY ... FROM STDIN`) with `rows`, in text format (`None` is NULL).
    fn copy<const N: usize>(
        &self,
        statement: &str,
        rows: impl Iterator<Item = [Option<String>; N]>,
    ) -> Result<(), String> {
        self.runtime.block_on(async {
            let sink = self.client.copy_in(statement).await.map_err(pg_error)?;
            futures::pin_mut!(sink);
            let mut chunk = String::new();
            for (n, fields) in rows.enumerate() {
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        chunk.push('\t');
                    }
                    match field {
                        Some(text) => push_copy_text(&mut chunk, text),
                        None => chunk.push_str("\\N"),
                    }
                }
                chunk.push('\n');
                if (n + 1).is_multiple_of(COPY_CHUNK) {
                    sink.send(Bytes::from(std::mem::take(&mut chunk)))
                        .await
                        .map_err(pg_error)?;
                }
            }
            if !chunk.is_empty() {
                sink.send(Bytes::from(chunk)).await.map_err(pg_error)?;
            }
            sink.finish().await.map_err(pg_error)?;
            Ok(())
        })
    }
}

const SESSIONS_COPY: &str = r#"COPY "ServerSideSessions" ("Key", "Scheme", "SubjectId", "SessionId", "DisplayName", "Created", "Renewed", "Expires", "Data") FROM STDIN"#;
const GRANTS_COPY: &str = r#"COPY "PersistedGrants" ("Key", "Type", "SubjectId", "SessionId", "ClientId", "CreationTime", "Expiration", "Data") FROM STDIN"#;

/// A grant's row as Duende's persisted grant store writes it (`Type` as its constants name it).
fn grant_fields(g: &SeedGrant) -> [Option<String>; 8] {
    let kind = match g.kind {
        sessions::GrantKind::RefreshToken => "refresh_token",
        sessions::GrantKind::AccessToken => "reference_token",
        sessions::GrantKind::AuthorizationCode => "authorization_code",
        sessions::GrantKind::Consent => "user_consent",
    };
    [
        Some(g.key.clone()),
        Some(kind.into()),
        Some(g.subject_id.clone()),
        g.session_id.clone(),
        Some(g.client_id.clone()),
        Some(timestamp(g.created)),
        Some(timestamp(g.expires)),
        Some(g.data.clone()),
    ]
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// A PostgreSQL error with the server's message, when it sent one.
fn pg_error(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

/// A field in `COPY`'s text format: backslash, tab and line breaks escaped.
fn push_copy_text(out: &mut String, field: &str) {
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_separators() {
        let mut out = String::new();
        push_copy_text(&mut out, "a\tb\\c\nd");
        assert_eq!(out, "a\\tb\\\\c\\nd");
    }
}
