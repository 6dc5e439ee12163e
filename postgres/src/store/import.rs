//! Filling the store with another store's contents exactly ([`sessions::store::export`]): the
//! same session ids, token hashes, grant ids, delivery and audit ids, realm numbers and
//! results-token key. Every insert skips what is there already, so an interrupted copy is
//! finished by running it again; the counters are rebuilt from the rows at the end.

use sessions::delivery::Delivery;
use sessions::model::{AuditEntry, ClientRegistration};
use sessions::stats::{Metric, Span, StatsBucket};
use sessions::store::export::{ExportedGrant, ExportedRealm, ExportedSession};
use sessions::{EndedSession, Result, SessionError};
use uuid::Uuid;

use super::check::RECOUNTS;
use super::db::{db_run, db_write, R};
use super::ended;
use super::rows::{self, kind_number, status_number};
use super::sessions::{insert, Arrival};
use super::PostgresStore;

fn uuid(s: &str) -> R<Uuid> {
    Uuid::parse_str(s).map_err(|e| SessionError::Storage(format!("bad id {s}: {e}")).into())
}

fn json<T: serde::Serialize>(v: &T) -> R<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| SessionError::Storage(e.to_string()).into())
}

impl PostgresStore {
    /// Adds a realm with its number, unless one of that name exists.
    pub async fn import_realm(&self, r: &ExportedRealm) -> Result<()> {
        db_write!(self.db, async |tx| {
            tx.execute(
                "INSERT INTO realms (realm, id, settings, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (realm) DO NOTHING",
                &[&r.name, &(r.id as i32), &json(&r.settings)?, &r.created_at],
            )
            .await?;
            // New realms get numbers after every imported one.
            tx.execute(
                "SELECT setval('realm_ids', greatest((SELECT max(id) FROM realms), 1))",
                &[],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Signs results tokens with `key` from now on (every server reads it at its next start),
    /// so that tokens the other store handed out stay valid.
    pub async fn import_results_token_key(&self, key: &[u8; 32]) -> Result<()> {
        db_run!(self.db, async |tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('results_token_key', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&&key[..]],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Registers clients, unless registered.
    pub async fn import_clients(
        &self,
        realm: &str,
        clients: &[(String, ClientRegistration)],
    ) -> Result<()> {
        db_write!(self.db, async |tx| {
            for (id, reg) in clients {
                tx.execute(
                    "INSERT INTO clients (realm, client_id, registration) VALUES ($1, $2, $3)
                     ON CONFLICT (realm, client_id) DO NOTHING",
                    &[&realm, id, &json(reg)?],
                )
                .await?;
            }
            Ok(())
        })
        .await
    }

    /// Adds sessions with their client and word rows, skipping those there already. The
    /// inserts are sent together (pipelined on the transaction's connection), not one round trip
    /// each: a million sessions copied in 250 s that way took about a quarter of that.
    pub async fn import_sessions(&self, realm: &str, sessions: &[ExportedSession]) -> Result<()> {
        db_write!(self.db, async |tx| {
            futures::future::try_join_all(sessions.iter().map(|e| {
                let arrival = Arrival::Copied {
                    found_by_hash: e.found_by_hash,
                };
                insert(tx, realm, &e.session, &e.token_hash, arrival)
            }))
            .await?;
            Ok(())
        })
        .await
    }

    /// Adds grants, skipping those there already.
    pub async fn import_grants(&self, realm: &str, grants: &[ExportedGrant]) -> Result<()> {
        db_write!(self.db, async |tx| {
            for e in grants {
                let g = &e.grant;
                let sid = g.sid.as_deref().map(uuid).transpose()?;
                let hash = e.token_hash.map(|h| h.to_vec());
                tx.execute(
                    "INSERT INTO grants (realm, id, kind, subject_id, sid, client_id, scopes,
                                         created_at, expires_at, token_hash)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (realm, id) DO NOTHING",
                    &[
                        &realm,
                        &uuid(&g.grant_id)?,
                        &kind_number(g.kind),
                        &g.subject_id,
                        &sid,
                        &g.client_id,
                        &g.scopes,
                        &g.created_at,
                        &g.expires_at,
                        &hash,
                    ],
                )
                .await?;
            }
            Ok(())
        })
        .await
    }

    /// Adds deliveries with their ids, skipping those there already.
    pub async fn import_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        db_write!(self.db, async |tx| {
            for d in deliveries {
                tx.execute(
                    "INSERT INTO deliveries (realm, id, client_id, uri, subject_id, sid, reason,
                                             status, attempts, window_attempts, created_at,
                                             retry_window_start, next_attempt_at, last_attempt_at,
                                             delivered_at, last_error, last_jti)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                             $16, $17)
                     ON CONFLICT (realm, id) DO NOTHING",
                    &[
                        &d.realm,
                        &(d.id as i64),
                        &d.client_id,
                        &d.uri,
                        &d.subject_id,
                        &uuid(&d.sid)?,
                        &d.reason,
                        &status_number(d.status),
                        &(d.attempts as i32),
                        &(d.window_attempts as i32),
                        &d.created_at,
                        &d.retry_window_start,
                        &d.next_attempt_at,
                        &d.last_attempt_at,
                        &d.delivered_at,
                        &d.last_error,
                        &d.last_jti,
                    ],
                )
                .await?;
            }
            tx.execute(
                "SELECT setval('delivery_ids', greatest((SELECT max(id) FROM deliveries), 1))",
                &[],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Adds audit entries with their ids, skipping those there already.
    pub async fn import_audit(&self, entries: &[(u64, AuditEntry)]) -> Result<()> {
        db_write!(self.db, async |tx| {
            for (id, e) in entries {
                tx.execute(
                    "INSERT INTO audit (realm, id, at, actor, action, target, reason, outcome)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (realm, id) DO NOTHING",
                    &[
                        &e.realm.as_deref().unwrap_or(""),
                        &(*id as i64),
                        &e.at,
                        &e.actor,
                        &e.action,
                        &e.target,
                        &e.reason,
                        &e.outcome,
                    ],
                )
                .await?;
            }
            tx.execute(
                "SELECT setval('audit_id_seq', greatest((SELECT max(id) FROM audit), 1))",
                &[],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Replaces the realm's activity counters of `span` with `buckets` (another store's), in one
    /// transaction, so copying them again gives the same counts.
    pub async fn import_stats(
        &self,
        realm: &str,
        span: Span,
        buckets: &[StatsBucket],
    ) -> Result<()> {
        let (mut starts, mut metrics, mut counts) = (Vec::new(), Vec::new(), Vec::new());
        for b in buckets {
            for metric in Metric::all() {
                let n = b.get(metric);
                if n > 0 {
                    starts.push(b.start);
                    metrics.push(metric.name());
                    counts.push(n as i64);
                }
            }
        }
        let span = i16::from(span.code());
        db_write!(self.db, async |tx| {
            // What the copied sessions appended is replaced too.
            super::counters::fold(tx, true).await?;
            tx.execute(
                "DELETE FROM stats WHERE realm = $1 AND span = $2",
                &[&realm, &span],
            )
            .await?;
            tx.execute(
                "INSERT INTO stats (realm, span, bucket, metric, stripe, count)
                 SELECT $1, $2, b, m, 0, n
                   FROM unnest($3::timestamptz[], $4::text[], $5::int8[]) AS x(b, m, n)",
                &[&realm, &span, &starts, &metrics, &counts],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Replaces every counter by a recount of the rows it counts, in one transaction.
    pub async fn rebuild_counters(&self) -> Result<()> {
        db_write!(self.db, async |tx| {
            // Recounting every row takes what it takes (an operator's copy, not a request).
            tx.batch("SET LOCAL statement_timeout = 0").await?;
            tx.batch("DELETE FROM counters; DELETE FROM counter_deltas")
                .await?;
            for (kind, _, recount) in RECOUNTS {
                let sql = format!(
                    "INSERT INTO counters (realm, kind, key, stripe, count)
                     SELECT realm, $1, key, 0, n FROM ({recount}) AS r (realm, key, n)"
                );
                tx.execute(&sql, &[&kind]).await?;
            }
            Ok(())
        })
        .await
    }

    /// Rows per table: sessions, grants, deliveries (and per status), audit entries, clients,
    /// API keys, administrators, signing keys and Shared Signals streams, for comparing a copy with its source.
    /// Adds ended sessions' history rows as listed by another store (each client's delivery
    /// id kept: its notice is read from the delivery, copied too), skipping those there.
    pub async fn import_ended(&self, realm: &str, entries: &[EndedSession]) -> Result<()> {
        db_write!(self.db, async |tx| {
            for e in entries {
                let delivery_ids: Vec<Option<i64>> = e
                    .clients
                    .iter()
                    .map(|c| c.delivery_id.map(|id| id as i64))
                    .collect();
                let delivery_ids = delivery_ids
                    .iter()
                    .any(Option::is_some)
                    .then_some(delivery_ids);
                let client_ids: Vec<&str> =
                    e.clients.iter().map(|c| c.client_id.as_str()).collect();
                let moved = e.last_ip.is_some() && e.last_ip != e.ip;
                tx.execute(
                    "INSERT INTO ended_sessions (realm, sid, subject_id, display_name, ip, device,
                                                 created_at, last_access_at, ended_at, how, actor,
                                                 reason, client_ids, delivery_ids, network,
                                                 last_ip, last_network)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                             $16, $17)
                     ON CONFLICT (realm, sid) DO NOTHING",
                    &[
                        &realm,
                        &uuid(&e.sid)?,
                        &e.subject_id,
                        &e.display_name,
                        &e.ip,
                        &e.device.map(|d| d.code() as i32),
                        &e.created_at,
                        &e.last_access_at,
                        &e.ended_at,
                        &ended::how_number(e.how),
                        &e.actor,
                        &e.reason,
                        &client_ids,
                        &delivery_ids,
                        &rows::network_json(e.network.as_ref()),
                        &e.last_ip.as_ref().filter(|_| moved),
                        &rows::network_json(e.last_network.as_ref()).filter(|_| moved),
                    ],
                )
                .await?;
            }
            Ok(())
        })
        .await
    }

    pub async fn row_counts(&self) -> Result<Vec<(String, u64)>> {
        db_run!(self.db, async |tx| {
            let row = tx
                .query_one(
                    "SELECT (SELECT count(*) FROM realms), (SELECT count(*) FROM clients),
                            (SELECT count(*) FROM sessions), (SELECT count(*) FROM grants),
                            (SELECT count(*) FROM deliveries WHERE status = 0),
                            (SELECT count(*) FROM deliveries WHERE status = 1),
                            (SELECT count(*) FROM deliveries WHERE status = 2),
                            (SELECT count(*) FROM audit), (SELECT count(*) FROM api_keys),
                            (SELECT count(*) FROM admins), (SELECT count(*) FROM signing_keys),
                            (SELECT count(*) FROM ended_sessions),
                            (SELECT count(*) FROM signal_streams)",
                    &[],
                )
                .await?;
            ROW_COUNTS
                .iter()
                .enumerate()
                .map(|(i, name)| Ok(((*name).to_owned(), row.try_get::<_, i64>(i)? as u64)))
                .collect()
        })
        .await
    }
}

/// What [`PostgresStore::row_counts`] counts, in its order.
pub const ROW_COUNTS: [&str; 13] = [
    "realms",
    "clients",
    "sessions",
    "grants",
    "pending deliveries",
    "delivered deliveries",
    "failed deliveries",
    "audit entries",
    "API keys",
    "administrators",
    "signing keys",
    "ended sessions",
    "signal streams",
];
