//! `server migrate-store`: copies the embedded store into a PostgreSQL database exactly — the
//! same session ids and token hashes (tokens stay valid), grant ids, delivery and audit ids,
//! realm numbers and results-token key (results tokens stay valid), the ended-session history,
//! and the activity counters still kept (compared bucket by bucket) — in batches, each insert
//! skipping what is there already, so running it again finishes an interrupted copy. At the end
//! the counters are rebuilt from the rows and every count of both stores is compared.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use sessions::stats::Span;
use sessions::store::{AccountStore, SessionStore, SledStore};
use sessions::{DeliveryStatus, EndedQuery};
use store_postgres::{PostgresStore, ROW_COUNTS};

use crate::error::ServerError;
use crate::storage_dir;

/// Items read from the embedded store per batch.
const BATCH: usize = 1000;

/// Copies the store in `from` to the database `to`, reporting progress to `out`; fails if a
/// count differs at the end.
pub async fn run(from: &Path, to: &str, out: &mut impl Write) -> Result<(), ServerError> {
    if !from.join("db").exists() {
        return Err(ServerError::NoStore {
            dir: from.to_owned(),
        });
    }
    let source = storage_dir::unless_in_use(
        from,
        || SledStore::open(from),
        |source| ServerError::OpenStore {
            dir: from.to_owned(),
            source,
        },
    )?;
    let target = PostgresStore::open(to)
        .await
        .map_err(ServerError::OpenPostgres)?;
    let mut copied: BTreeMap<&str, u64> = ROW_COUNTS.iter().map(|n| (*n, 0)).collect();

    let realms = source.export_realms();
    for r in &realms {
        if let Ok(there) = target.get_realm(&r.name).await {
            if there.created_at != r.created_at {
                return Err(ServerError::OtherRealm {
                    realm: r.name.clone(),
                    created_at: there.created_at,
                });
            }
        }
    }
    target
        .import_results_token_key(&source.results_token_key()?)
        .await?;
    for r in &realms {
        target.import_realm(r).await?;
        *copied.get_mut("realms").expect("counted") += 1;
        let clients = source.export_clients(&r.name)?;
        target.import_clients(&r.name, &clients).await?;
        *copied.get_mut("clients").expect("counted") += clients.len() as u64;

        let mut after = None;
        loop {
            let batch = source.export_sessions(&r.name, after, BATCH)?;
            let Some(last) = batch.last() else { break };
            after = Some((
                last.session.created_at.timestamp_millis(),
                id_bytes(&last.session.sid)?,
            ));
            target.import_sessions(&r.name, &batch).await?;
            *copied.get_mut("sessions").expect("counted") += batch.len() as u64;
        }
        let mut after = None;
        loop {
            let batch = source.export_grants(&r.name, after, BATCH)?;
            let Some(last) = batch.last() else { break };
            after = Some(id_bytes(&last.grant.grant_id)?);
            target.import_grants(&r.name, &batch).await?;
            *copied.get_mut("grants").expect("counted") += batch.len() as u64;
        }
        let mut after = None;
        loop {
            let batch = source.export_deliveries(&r.name, after, BATCH)?;
            let Some(last) = batch.last() else { break };
            after = Some(last.id);
            target.import_deliveries(&batch).await?;
            for d in &batch {
                let status = match d.status {
                    DeliveryStatus::Pending => "pending deliveries",
                    DeliveryStatus::Delivered => "delivered deliveries",
                    DeliveryStatus::Failed => "failed deliveries",
                };
                *copied.get_mut(status).expect("counted") += 1;
            }
        }
        // The history, newest end first, as the store lists it.
        let mut after = None;
        loop {
            let query = EndedQuery {
                count: Some(BATCH as u32),
                after: after.take(),
                ..Default::default()
            };
            let page = source.ended_sessions(&r.name, &query).await?;
            target.import_ended(&r.name, &page.results).await?;
            *copied.get_mut("ended sessions").expect("counted") += page.results.len() as u64;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // The activity counters still kept, bucket by bucket.
        let now = Utc::now();
        for span in Span::ALL {
            let from = DateTime::from_timestamp(span.oldest_kept(now), 0).unwrap_or(now);
            let buckets = source.stats(&r.name, span, from, now).await?;
            target.import_stats(&r.name, span, &buckets).await?;
            if target.stats(&r.name, span, from, now).await? != buckets {
                return Err(ServerError::StatsDiffer {
                    realm: r.name.clone(),
                });
            }
        }
        writeln!(out, "copied realm {}", r.name)?;
    }
    let mut after = None;
    loop {
        let batch = source.export_audit(after, BATCH)?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(*last);
        target.import_audit(&batch).await?;
        *copied.get_mut("audit entries").expect("counted") += batch.len() as u64;
    }

    let keys = source.api_keys().await?;
    for k in &keys {
        target.put_api_key(k).await?;
    }
    *copied.get_mut("API keys").expect("counted") = keys.len() as u64;
    let admins = source.admins().await?;
    for a in &admins {
        target.put_admin(a).await?;
    }
    *copied.get_mut("administrators").expect("counted") = admins.len() as u64;
    let signing = source.signing_keys().await?;
    let others: Vec<String> = target
        .signing_keys()
        .await?
        .into_iter()
        .map(|k| k.kid)
        .filter(|kid| !signing.iter().any(|s| &s.kid == kid))
        .collect();
    target.update_signing_keys(&signing, &others).await?;
    *copied.get_mut("signing keys").expect("counted") = signing.len() as u64;
    let streams = source.signal_streams().await?;
    for s in &streams {
        target.put_signal_stream(s).await?;
    }
    *copied.get_mut("signal streams").expect("counted") = streams.len() as u64;

    target.rebuild_counters().await?;
    compare(&source, &target, &copied, out).await
}

/// The bytes of a session or grant id.
fn id_bytes(id: &str) -> Result<[u8; 16], ServerError> {
    sessions::store::parse_sid(id).ok_or_else(|| ServerError::BadId { id: id.to_owned() })
}

/// Prints every count of both stores; fails if one differs.
async fn compare(
    source: &SledStore,
    target: &PostgresStore,
    copied: &BTreeMap<&str, u64>,
    out: &mut impl Write,
) -> Result<(), ServerError> {
    let mut rows: Vec<(String, u64, u64)> = Vec::new();
    for (what, n) in target.row_counts().await? {
        rows.push((what.clone(), copied[what.as_str()], n));
    }
    for realm in source.list_realms().await? {
        let there = target.get_realm(&realm.name).await?.session_count;
        rows.push((
            format!("session count of realm {}", realm.name),
            realm.session_count,
            there,
        ));
    }
    writeln!(out, "{:<40} {:>12} {:>12}", "", "embedded", "PostgreSQL")?;
    let mut differ = Vec::new();
    for (what, here, there) in &rows {
        writeln!(out, "{what:<40} {here:>12} {there:>12}")?;
        if here != there {
            differ.push(what.clone());
        }
    }
    if differ.is_empty() {
        writeln!(out, "every count is equal")?;
        Ok(())
    } else {
        Err(ServerError::CountsDiffer { what: differ })
    }
}
