//! Ended-session history on PostgreSQL (`ended_sessions`): a row per ended session, written in
//! the transaction that ends it ([`record`]), listed newest end first with an exact count, each
//! client's notice worked out from its delivery, and pruned oldest first.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sessions::stats::EndReason;
use sessions::store::shared::{notice, EndedBy, EndedFilter};
use sessions::{
    ClientNotice, Device, EndedCursor, EndedPage, EndedQuery, EndedSession, SessionError,
};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::db::{db_run, db_write, Tx, R};
use super::rows::{self, RealmRow};
use super::PostgresStore;

/// Separates list items in one text parameter (identifiers hold no control characters).
const SEP: &str = "\u{1f}";

/// The stored number of a way of ending: its place in [`EndReason::ALL`].
pub(crate) fn how_number(how: EndReason) -> i16 {
    EndReason::ALL.iter().position(|r| *r == how).unwrap_or(0) as i16
}

fn how_of(n: i16) -> R<EndReason> {
    usize::try_from(n)
        .ok()
        .and_then(|i| EndReason::ALL.get(i).copied())
        .ok_or_else(|| SessionError::Storage(format!("unknown way of ending {n}")).into())
}

/// A session as it ended, for its history row.
pub(crate) struct Gone {
    pub sid: Uuid,
    pub subject_id: String,
    pub display_name: Option<String>,
    pub client_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_access_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub device: Option<i32>,
    pub network: Option<serde_json::Value>,
    pub last_ip: Option<String>,
    pub last_network: Option<serde_json::Value>,
}

/// The session columns [`Gone::read`] reads, in order.
pub(crate) const GONE: &str = "sid, subject_id, display_name, client_ids, created_at, \
     last_access_at, ip, device, network, last_ip, last_network";

impl Gone {
    pub(crate) fn read(r: &tokio_postgres::Row) -> R<Gone> {
        Ok(Gone {
            sid: r.try_get(0)?,
            subject_id: r.try_get(1)?,
            display_name: r.try_get(2)?,
            client_ids: r.try_get(3)?,
            created_at: r.try_get(4)?,
            last_access_at: r.try_get(5)?,
            ip: r.try_get(6)?,
            device: r.try_get(7)?,
            network: r.try_get(8)?,
            last_ip: r.try_get(9)?,
            last_network: r.try_get(10)?,
        })
    }
}

/// Writes the history rows of sessions that ended `how` at `now`; `queued` names the delivery
/// of each (sid, client) notified.
pub(crate) async fn record(
    tx: &Tx<'_>,
    realm: &str,
    gone: &[Gone],
    how: EndReason,
    by: Option<&EndedBy>,
    queued: &HashMap<(Uuid, &str), i64>,
    now: DateTime<Utc>,
) -> R<()> {
    if gone.is_empty() {
        return Ok(());
    }
    let sids: Vec<Uuid> = gone.iter().map(|g| g.sid).collect();
    let subjects: Vec<&str> = gone.iter().map(|g| g.subject_id.as_str()).collect();
    let names: Vec<Option<&str>> = gone.iter().map(|g| g.display_name.as_deref()).collect();
    let ips: Vec<Option<&str>> = gone.iter().map(|g| g.ip.as_deref()).collect();
    let devices: Vec<Option<i32>> = gone.iter().map(|g| g.device).collect();
    let created: Vec<DateTime<Utc>> = gone.iter().map(|g| g.created_at).collect();
    let used: Vec<DateTime<Utc>> = gone.iter().map(|g| g.last_access_at).collect();
    let clients: Vec<String> = gone.iter().map(|g| g.client_ids.join(SEP)).collect();
    let deliveries: Vec<String> = gone
        .iter()
        .map(|g| {
            g.client_ids
                .iter()
                .map(|c| {
                    queued
                        .get(&(g.sid, c.as_str()))
                        .map_or(String::new(), |id| id.to_string())
                })
                .collect::<Vec<_>>()
                .join(SEP)
        })
        .collect();
    let networks: Vec<Option<&serde_json::Value>> =
        gone.iter().map(|g| g.network.as_ref()).collect();
    let last_ips: Vec<Option<&str>> = gone.iter().map(|g| g.last_ip.as_deref()).collect();
    let last_networks: Vec<Option<&serde_json::Value>> =
        gone.iter().map(|g| g.last_network.as_ref()).collect();
    let actor = by.map(|b| b.actor.as_str());
    let reason = by.and_then(|b| b.reason.as_deref());
    let params: [&(dyn ToSql + Sync); 18] = [
        &realm,
        &now,
        &how_number(how),
        &actor,
        &reason,
        &sids,
        &subjects,
        &names,
        &ips,
        &devices,
        &created,
        &used,
        &clients,
        &deliveries,
        &SEP,
        &networks,
        &last_ips,
        &last_networks,
    ];
    tx.execute(
        "INSERT INTO ended_sessions (realm, sid, subject_id, display_name, ip, device, created_at,
                                     last_access_at, ended_at, how, actor, reason, client_ids,
                                     delivery_ids, network, last_ip, last_network)
         SELECT $1, sid, subject_id, display_name, ip, device, created_at, last_access_at, $2, $3,
                $4, $5,
                CASE WHEN c = '' THEN '{}' ELSE string_to_array(c, $15) END,
                CASE WHEN replace(d, $15, '') = '' THEN NULL
                     ELSE string_to_array(d, $15, '')::int8[] END,
                network, last_ip, last_network
           FROM unnest($6::uuid[], $7::text[], $8::text[], $9::text[], $10::int4[],
                       $11::timestamptz[], $12::timestamptz[], $13::text[], $14::text[],
                       $16::jsonb[], $17::text[], $18::jsonb[])
                AS x(sid, subject_id, display_name, ip, device, created_at, last_access_at, c, d,
                     network, last_ip, last_network)
         ON CONFLICT (realm, sid) DO NOTHING",
        &params,
    )
    .await?;
    Ok(())
}

impl PostgresStore {
    pub(crate) async fn ended_sessions_impl(
        &self,
        realm: &str,
        q: &EndedQuery,
    ) -> sessions::Result<EndedPage> {
        let f = EndedFilter::from_query(q)?;
        db_run!(self.db, async |tx| {
            let realm: RealmRow = self.realms.get(tx, realm).await?;
            let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(realm.name.clone())];
            let mut sql = String::new();
            let param = |v: Box<dyn ToSql + Sync + Send>, params: &mut Vec<_>| {
                params.push(v);
                params.len()
            };
            if let Some(s) = &f.subject {
                let n = param(Box::new(s.clone()), &mut params);
                sql.push_str(&format!(" AND e.subject_id = ${n}"));
            }
            if let Some(sid) = &f.sid {
                let n = param(Box::new(Uuid::from_bytes(*sid)), &mut params);
                sql.push_str(&format!(" AND e.sid = ${n}"));
            }
            if let Some(how) = f.how {
                let n = param(Box::new(how_number(how)), &mut params);
                sql.push_str(&format!(" AND e.how = ${n}"));
            }
            let counted: i64 = tx
                .query_one(
                    &format!("SELECT count(*) FROM ended_sessions e WHERE e.realm = $1{sql}"),
                    &refs(&params),
                )
                .await?
                .try_get(0)?;
            let mut page_sql = sql.clone();
            if let Some(a) = f.after {
                let t = param(
                    Box::new(sessions::store::shared::from_ms(a.ended_ms)),
                    &mut params,
                );
                let s = param(Box::new(Uuid::from_bytes(a.sid)), &mut params);
                page_sql.push_str(&format!(" AND (e.ended_at, e.sid) < (${t}, ${s})"));
            }
            let limit = param(Box::new(f.count as i64 + 1), &mut params);
            let found = tx
                .query(
                    &format!(
                        "SELECT e.sid, e.subject_id, e.display_name, e.ip, e.device, e.created_at,
                                e.last_access_at, e.ended_at, e.how, e.actor, e.reason,
                                e.client_ids, e.delivery_ids, e.network, e.last_ip,
                                e.last_network
                           FROM ended_sessions e WHERE e.realm = $1{page_sql}
                          ORDER BY e.ended_at DESC, e.sid DESC LIMIT ${limit}"
                    ),
                    &refs(&params),
                )
                .await?;
            let ids: Vec<i64> = found
                .iter()
                .map(|r| r.try_get::<_, Option<Vec<Option<i64>>>>(12))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .flatten()
                .flatten()
                .collect();
            let statuses: HashMap<i64, i16> = tx
                .query(
                    "SELECT id, status FROM deliveries WHERE realm = $1 AND id = ANY($2)",
                    &[&realm.name, &ids],
                )
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<R<_>>()?;
            let mut results = Vec::with_capacity(found.len());
            for r in &found {
                let sid: Uuid = r.try_get(0)?;
                let client_ids: Vec<String> = r.try_get(11)?;
                let delivery_ids: Vec<Option<i64>> =
                    r.try_get::<_, Option<_>>(12)?.unwrap_or_default();
                let mut clients = Vec::with_capacity(client_ids.len());
                for (i, client_id) in client_ids.into_iter().enumerate() {
                    let id = delivery_ids.get(i).copied().flatten();
                    let status = match id {
                        Some(id) => {
                            Some(statuses.get(&id).map(|n| rows::status_of(*n)).transpose()?)
                        }
                        None => None,
                    };
                    clients.push(ClientNotice {
                        client_id,
                        notice: notice(status),
                        delivery_id: id.map(|i| i as u64),
                    });
                }
                results.push(EndedSession {
                    sid: sid.hyphenated().to_string(),
                    realm: realm.name.clone(),
                    subject_id: r.try_get(1)?,
                    display_name: r.try_get(2)?,
                    last_ip: r
                        .try_get::<_, Option<String>>(14)?
                        .or_else(|| r.try_get(3).ok().flatten()),
                    network: rows::network(r.try_get(13)?)?,
                    last_network: match r.try_get::<_, Option<String>>(14)? {
                        Some(_) => rows::network(r.try_get(15)?)?,
                        None => rows::network(r.try_get(13)?)?,
                    },
                    ip: r.try_get(3)?,
                    device: r
                        .try_get::<_, Option<i32>>(4)?
                        .map(|c| Device::from_code(c as u32)),
                    created_at: r.try_get(5)?,
                    last_access_at: r.try_get(6)?,
                    ended_at: r.try_get(7)?,
                    how: how_of(r.try_get(8)?)?,
                    actor: r.try_get(9)?,
                    reason: r.try_get(10)?,
                    clients,
                });
            }
            let next = (results.len() > f.count).then(|| {
                results.truncate(f.count);
                let last = results.last().expect("a full page");
                EndedCursor {
                    ended_ms: last.ended_at.timestamp_millis(),
                    sid: *Uuid::parse_str(&last.sid)
                        .expect("read from a uuid")
                        .as_bytes(),
                }
                .encode()
            });
            Ok(EndedPage {
                results,
                total_count: counted as u64,
                next,
            })
        })
        .await
    }

    pub(crate) async fn prune_ended_impl(
        &self,
        cutoff: DateTime<Utc>,
        batch: usize,
    ) -> sessions::Result<usize> {
        self.each_realm_up_to(batch, async |realm, left| {
            let n = db_write!(self.db, async |tx| {
                tx.execute(
                    "DELETE FROM ended_sessions WHERE ctid = ANY(ARRAY(
                         SELECT ctid FROM ended_sessions WHERE realm = $1 AND ended_at < $2
                          ORDER BY ended_at LIMIT $3 FOR UPDATE SKIP LOCKED))",
                    &[&realm, &cutoff, &left],
                )
                .await
            })
            .await?;
            Ok(n as usize)
        })
        .await
    }
}

/// Statement parameters as `query` takes them.
fn refs(params: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}
