//! The incumbent: Duende IdentityServer's server-side sessions (its `ServerSideSessions` table,
//! indexes and SQL) on a scratch PostgreSQL 15 with durable settings, loaded with the same data
//! set by `COPY`, served by [`endpoint`].

pub mod endpoint;
pub mod store;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::SinkExt;
use store_postgres::scratch::ScratchPostgres;

use crate::dataset::{expired_session, Dataset, SeedSession, IDLE_TIMEOUT};

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
    /// table.
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

    /// Loads the data set in `Id` order, builds the indexes and vacuums, as a table that has been
    /// in use would be.
    pub fn load(&self, data: &Dataset) -> Result<(), String> {
        self.copy((0..data.size).map(|i| data.session(i)), |s| {
            s.created + IDLE_TIMEOUT
        })?;
        self.execute(INDEXES_SQL)?;
        self.execute(r#"VACUUM ANALYZE "ServerSideSessions""#)
    }

    /// Adds `count` sessions that expired an hour before `now`, for the cleanup job.
    pub fn load_expired(&self, count: usize, now: DateTime<Utc>) -> Result<(), String> {
        self.copy((0..count).map(|i| expired_session(i, now)), |s| {
            s.created + IDLE_TIMEOUT
        })?;
        self.execute(r#"VACUUM ANALYZE "ServerSideSessions""#)
    }

    /// Bytes of the table with its indexes and TOAST data.
    pub fn table_bytes(&self) -> Result<u64, String> {
        let bytes: i64 = self.query_one(
            r#"SELECT pg_total_relation_size('"ServerSideSessions"')"#,
            &[],
        )?;
        Ok(bytes as u64)
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

    /// `COPY`s sessions into the table, in text format.
    fn copy(
        &self,
        sessions: impl Iterator<Item = SeedSession>,
        expires: impl Fn(&SeedSession) -> DateTime<Utc>,
    ) -> Result<(), String> {
        self.runtime.block_on(async {
            let sink = self
                .client
                .copy_in(
                    r#"COPY "ServerSideSessions" ("Key", "Scheme", "SubjectId", "SessionId", "DisplayName", "Created", "Renewed", "Expires", "Data") FROM STDIN"#,
                )
                .await
                .map_err(pg_error)?;
            futures::pin_mut!(sink);
            let mut chunk = String::new();
            let mut rows: usize = 0;
            for s in sessions {
                let created = s.created.to_rfc3339_opts(SecondsFormat::Micros, true);
                let fields = [
                    s.key.as_str(),
                    "idsrv",
                    &s.subject_id,
                    &s.session_id,
                    &s.display_name,
                    &created,
                    &created,
                    &expires(&s).to_rfc3339_opts(SecondsFormat::Micros, true),
                    &s.ticket,
                ];
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        chunk.push('\t');
                    }
                    push_copy_text(&mut chunk, field);
                }
                chunk.push('\n');
                rows += 1;
                if rows.is_multiple_of(COPY_CHUNK) {
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
