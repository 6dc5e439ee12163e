//! The SQL Duende IdentityServer's Entity Framework stores issue, on a pool of connections:
//! `GetAsync` by key, the renewal's update, `CreateAsync`, `QuerySessionsAsync` (a `COUNT`, a
//! keyset page by `Id`, a second `COUNT` for the page number, `LIKE '%x%'` filters),
//! `DeleteSessionsAsync`, the session management service's `RemoveSessionsAsync` (grants,
//! notifications and sessions), and the cleanup job's expired-session batches.

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::ticket;

/// Duende's default page size (`CountRequested <= 0`).
const DEFAULT_PAGE: i64 = 25;
/// The cleanup job's batch (`ServerSideSessionCleanupBatchSize`).
pub const CLEANUP_BATCH: i64 = 100;
const COLUMNS: &str = r#""Id", "Key", "Scheme", "SubjectId", "SessionId", "DisplayName", "Created", "Renewed", "Expires", "Data""#;

/// Any failure of the store; the endpoint answers it as a 500.
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// A row of `ServerSideSessions`.
#[derive(Debug, serde::Serialize)]
pub struct ServerSideSession {
    pub id: i64,
    pub key: String,
    pub scheme: String,
    pub subject_id: String,
    pub session_id: Option<String>,
    pub display_name: Option<String>,
    pub created: DateTime<Utc>,
    pub renewed: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
    pub data: String,
}

impl From<&Row> for ServerSideSession {
    fn from(r: &Row) -> Self {
        ServerSideSession {
            id: r.get(0),
            key: r.get(1),
            scheme: r.get(2),
            subject_id: r.get(3),
            session_id: r.get(4),
            display_name: r.get(5),
            created: r.get(6),
            renewed: r.get(7),
            expires: r.get(8),
            data: r.get(9),
        }
    }
}

/// A new row, as `CreateAsync` receives it.
pub struct NewServerSideSession<'a> {
    pub key: &'a str,
    pub subject_id: &'a str,
    pub session_id: &'a str,
    pub display_name: Option<&'a str>,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub data: &'a str,
}

/// What [`DuendeStore::remove_sessions`] did.
#[derive(Debug, serde::Serialize)]
pub struct Removed {
    pub sessions: u64,
    pub grants: u64,
    pub notifications: u64,
}

/// `SessionQuery`: substring filters (AND-ed), a page size and the `"first,last"` token.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SessionQuery {
    pub subject_id: Option<String>,
    pub sid: Option<String>,
    pub display_name: Option<String>,
    pub count: Option<i64>,
    pub results_token: Option<String>,
    #[serde(default)]
    pub prior: bool,
}

/// `QueryResult`.
#[derive(Debug, serde::Serialize)]
pub struct QueryResult {
    pub results_token: String,
    pub has_prev_results: bool,
    pub has_next_results: bool,
    pub total_count: i64,
    pub total_pages: i64,
    pub current_page: i64,
    pub results: Vec<ServerSideSession>,
}

/// The store over a connection pool.
#[derive(Clone)]
pub struct DuendeStore {
    pool: Pool,
}

impl DuendeStore {
    /// A pool of at most `connections` connections to `url`.
    pub fn connect(url: &str, connections: usize) -> Result<DuendeStore, StoreError> {
        let config: tokio_postgres::Config = url.parse()?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager).max_size(connections).build()?;
        Ok(DuendeStore { pool })
    }

    /// `GetAsync(key)`.
    pub async fn get(&self, key: &str) -> Result<Option<ServerSideSession>, StoreError> {
        let c = self.pool.get().await?;
        let st = c
            .prepare_cached(&format!(
                r#"SELECT {COLUMNS} FROM "ServerSideSessions" WHERE "Key" = $1 LIMIT 2"#
            ))
            .await?;
        Ok(c.query_opt(&st, &[&key]).await?.as_ref().map(Into::into))
    }

    /// `UpdateAsync` as the cookie handler's renewal calls it: the loaded row written back with
    /// a new `Renewed`, `Expires` and ticket.
    pub async fn renew(
        &self,
        session: &ServerSideSession,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let c = self.pool.get().await?;
        let st = c
            .prepare_cached(
                r#"UPDATE "ServerSideSessions" SET "Data" = $1, "Expires" = $2, "Renewed" = $3 WHERE "Id" = $4"#,
            )
            .await?;
        c.execute(&st, &[&session.data, &expires, &now, &session.id])
            .await?;
        Ok(())
    }

    /// `CreateAsync`: the new row's `Id`.
    pub async fn create(&self, new: &NewServerSideSession<'_>) -> Result<i64, StoreError> {
        let c = self.pool.get().await?;
        let st = c
            .prepare_cached(
                r#"INSERT INTO "ServerSideSessions" ("Key", "Scheme", "SubjectId", "SessionId", "DisplayName", "Created", "Renewed", "Expires", "Data") VALUES ($1, 'idsrv', $2, $3, $4, $5, $5, $6, $7) RETURNING "Id""#,
            )
            .await?;
        let row = c
            .query_one(
                &st,
                &[
                    &new.key,
                    &new.subject_id,
                    &new.session_id,
                    &new.display_name,
                    &new.created,
                    &new.expires,
                    &new.data,
                ],
            )
            .await?;
        Ok(row.get(0))
    }

    /// `QuerySessionsAsync`: total count, the page after (or before) the token's ids, and the
    /// count of rows before the page for its number.
    pub async fn query(&self, q: &SessionQuery) -> Result<QueryResult, StoreError> {
        let page = q.count.filter(|&c| c > 0).unwrap_or(DEFAULT_PAGE);
        let (mut first, mut last) = match q.results_token.as_deref() {
            Some(token) => {
                let (a, b) = token
                    .split_once(',')
                    .ok_or("results token is not first,last")?;
                (a.trim().parse::<i64>()?, b.trim().parse::<i64>()?)
            }
            None => (0, 0),
        };
        let mut filter = String::from("TRUE");
        let mut params: Vec<String> = Vec::new();
        for (column, value) in [
            ("SubjectId", &q.subject_id),
            ("SessionId", &q.sid),
            ("DisplayName", &q.display_name),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                params.push(format!("%{}%", escape_like(v)));
                filter.push_str(&format!(r#" AND "{column}" LIKE ${}"#, params.len()));
            }
        }
        let c = self.pool.get().await?;
        let filters: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let total: i64 = c
            .query_one(
                &format!(r#"SELECT count(*) FROM "ServerSideSessions" WHERE {filter}"#),
                &filters,
            )
            .await?
            .get(0);
        let total_pages = ((total + page - 1) / page).max(1);
        let limit = page + 1;
        let n = filters.len();
        let (comparison, order, bound) = if q.prior {
            ("<", "DESC", first)
        } else {
            (">", "", last)
        };
        let mut rows: Vec<ServerSideSession> = c
            .query(
                &format!(
                    r#"SELECT {COLUMNS} FROM "ServerSideSessions" WHERE {filter} AND "Id" {comparison} ${} ORDER BY "Id" {order} LIMIT ${}"#,
                    n + 1,
                    n + 2
                ),
                &with(&filters, &[&bound, &limit]),
            )
            .await?
            .iter()
            .map(Into::into)
            .collect();
        let more = rows.len() as i64 > page;
        rows.truncate(page as usize);
        let (mut has_prev, has_next) = if q.prior {
            rows.reverse();
            (more, true)
        } else {
            (false, more)
        };
        let mut current_page = 0;
        if let (Some(f), Some(l)) = (rows.first(), rows.last()) {
            (first, last) = (f.id, l.id);
            let prior: i64 = c
                .query_one(
                    &format!(
                        r#"SELECT count(*) FROM "ServerSideSessions" WHERE {filter} AND "Id" < ${}"#,
                        n + 1
                    ),
                    &with(&filters, &[&first]),
                )
                .await?
                .get(0);
            current_page = 1 + (prior + page - 1) / page;
            has_prev = has_prev || current_page > 1;
        }
        Ok(QueryResult {
            results_token: format!("{first},{last}"),
            has_prev_results: has_prev,
            has_next_results: has_next,
            total_count: total,
            total_pages,
            current_page,
            results: rows,
        })
    }

    /// The number of rows (the `TotalCount` of an unfiltered query).
    pub async fn count(&self) -> Result<i64, StoreError> {
        let c = self.pool.get().await?;
        Ok(
            c.query_one(r#"SELECT count(*) FROM "ServerSideSessions""#, &[])
                .await?
                .get(0),
        )
    }

    /// `DeleteSessionsAsync` (what `RemoveSessionsAsync` does with `RemoveServerSideSession`
    /// alone): the rows of a subject (and session id, if given). Duende's store loads them and
    /// deletes each by id in one transaction; one `DELETE` is what that costs at best.
    pub async fn remove(&self, subject_id: &str, sid: Option<&str>) -> Result<u64, StoreError> {
        let c = self.pool.get().await?;
        Ok(match sid {
            Some(sid) => {
                c.execute(
                    r#"DELETE FROM "ServerSideSessions" WHERE "SubjectId" = $1 AND "SessionId" = $2"#,
                    &[&subject_id, &sid],
                )
                .await?
            }
            None => {
                c.execute(
                    r#"DELETE FROM "ServerSideSessions" WHERE "SubjectId" = $1"#,
                    &[&subject_id],
                )
                .await?
            }
        })
    }

    /// `DefaultSessionManagementService.RemoveSessionsAsync` for a subject with every flag on
    /// (`RevokeTokens`, `RevokeConsents`, `SendBackchannelLogoutNotification`,
    /// `RemoveServerSideSession`), in its order, each store call at its best, all in one
    /// transaction (one commit, as our removal makes its work durable at once):
    ///
    /// 1. `IPersistedGrantStore.RemoveAllAsync({ SubjectId })`, one call for the subject (its
    ///    `SessionId` filter is the request's, none here), every type: tokens and consents.
    ///    EF loads the rows and deletes each by key; at best
    ///    `DELETE FROM "PersistedGrants" WHERE "SubjectId" = $1`.
    /// 2. `IServerSideTicketStore.GetSessionsAsync({ SubjectId })`:
    ///    `SELECT ... FROM "ServerSideSessions" WHERE "SubjectId" = $1`, each ticket read for its
    ///    client list ([`ticket`]).
    /// 3. Per session, `IBackChannelLogoutService.SendLogoutNotificationsAsync` for its clients
    ///    (every client has a back-channel URI): Duende signs and POSTs a logout token per client
    ///    there and then; here one row per client is recorded instead, one `INSERT` per session:
    ///    `INSERT INTO "BackChannelLogoutNotifications" (...) SELECT $1, $2, unnest($3), 2, $4`
    ///    (2: `LogoutNotificationReason.Terminated`).
    /// 4. `IServerSideSessionStore.DeleteSessionsAsync({ SubjectId })`: EF loads the rows again
    ///    and deletes each by id; at best `DELETE FROM "ServerSideSessions" WHERE "SubjectId" = $1`.
    pub async fn remove_sessions(&self, subject_id: &str) -> Result<Removed, StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let grants = tx
            .execute(
                r#"DELETE FROM "PersistedGrants" WHERE "SubjectId" = $1"#,
                &[&subject_id],
            )
            .await?;
        let sessions = tx
            .query(
                &format!(r#"SELECT {COLUMNS} FROM "ServerSideSessions" WHERE "SubjectId" = $1"#),
                &[&subject_id],
            )
            .await?;
        let notify = tx
            .prepare_cached(
                r#"INSERT INTO "BackChannelLogoutNotifications" ("SubjectId", "SessionId", "ClientId", "LogoutReason", "Created") SELECT $1, $2, unnest($3::text[]), 2, $4"#,
            )
            .await?;
        let now = Utc::now();
        let mut notifications = 0;
        for session in sessions.iter().map(ServerSideSession::from) {
            let clients = ticket::client_ids(&session.data)?;
            if !clients.is_empty() {
                notifications += tx
                    .execute(
                        &notify,
                        &[&session.subject_id, &session.session_id, &clients, &now],
                    )
                    .await?;
            }
        }
        let removed = tx
            .execute(
                r#"DELETE FROM "ServerSideSessions" WHERE "SubjectId" = $1"#,
                &[&subject_id],
            )
            .await?;
        tx.commit().await?;
        Ok(Removed {
            sessions: removed,
            grants,
            notifications,
        })
    }

    /// One batch of the cleanup job (`GetAndRemoveExpiredSessionsAsync`): up to
    /// [`CLEANUP_BATCH`] rows expired before `now`, oldest id first, loaded then deleted.
    pub async fn remove_expired_batch(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let c = self.pool.get().await?;
        let expired = c
            .query(
                &format!(
                    r#"SELECT {COLUMNS} FROM "ServerSideSessions" WHERE "Expires" < $1 ORDER BY "Id" LIMIT $2"#
                ),
                &[&now, &CLEANUP_BATCH],
            )
            .await?;
        let ids: Vec<i64> = expired.iter().map(|r| r.get(0)).collect();
        if !ids.is_empty() {
            c.execute(
                r#"DELETE FROM "ServerSideSessions" WHERE "Id" = ANY($1)"#,
                &[&ids],
            )
            .await?;
        }
        Ok(ids.len())
    }
}

/// The filters' parameters followed by `extra`.
fn with<'a>(
    filters: &[&'a (dyn ToSql + Sync)],
    extra: &[&'a (dyn ToSql + Sync)],
) -> Vec<&'a (dyn ToSql + Sync)> {
    filters.iter().chain(extra).copied().collect()
}

/// `value` with LIKE's wildcards taken literally.
fn escape_like(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(escape_like("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
