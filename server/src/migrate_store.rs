//! `server migrate-store`: copies the embedded store into a PostgreSQL database exactly — the
//! same session ids and token hashes (tokens stay valid), grant ids, delivery and audit ids,
//! realm numbers and results-token key (results tokens stay valid), and the activity counters
//! still kept (compared bucket by bucket) — in batches, each insert
//! skipping what is there already, so running it again finishes an interrupted copy. At the end
//! the counters are rebuilt from the rows and every count of both stores is compared.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use sessions::stats::Span;
use sessions::store::{AccountStore, SessionStore, SledStore};
use sessions::DeliveryStatus;
use store_postgres::{PostgresStore, ROW_COUNTS};

/// Items read from the embedded store per batch.
const BATCH: usize = 1000;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Copies the store in `from` to the database `to`, reporting progress to `out`; fails if a
/// count differs at the end.
pub fn run(from: &Path, to: &str, out: &mut impl Write) -> Result<(), String> {
    if !from.join("db").exists() {
        return Err(format!("{} holds no store", from.display()));
    }
    let source = SledStore::open(from).map_err(|e| {
        if e.to_string().contains("lock") || e.to_string().contains("WouldBlock") {
            format!(
                "{} is in use by another process (a running server?): stop it first",
                from.display()
            )
        } else {
            format!("cannot open the store in {}: {e}", from.display())
        }
    })?;
    let target =
        PostgresStore::open(to).map_err(|e| format!("cannot open the PostgreSQL store: {e}"))?;
    let mut copied: BTreeMap<&str, u64> = ROW_COUNTS.iter().map(|n| (*n, 0)).collect();

    let realms = source.export_realms();
    for r in &realms {
        if let Ok(there) = target.get_realm(&r.name) {
            if there.created_at != r.created_at {
                return Err(format!(
                    "the database holds another realm '{}' (created {}); copy into an empty database",
                    r.name, there.created_at
                ));
            }
        }
    }
    target
        .import_results_token_key(&source.results_token_key().map_err(err)?)
        .map_err(err)?;
    for r in &realms {
        target.import_realm(r).map_err(err)?;
        *copied.get_mut("realms").expect("counted") += 1;
        let clients = source.export_clients(&r.name).map_err(err)?;
        target.import_clients(&r.name, &clients).map_err(err)?;
        *copied.get_mut("clients").expect("counted") += clients.len() as u64;

        let mut after = None;
        loop {
            let batch = source.export_sessions(&r.name, after, BATCH).map_err(err)?;
            let Some(last) = batch.last() else { break };
            after = Some((
                last.session.created_at.timestamp_millis(),
                id_bytes(&last.session.sid)?,
            ));
            target.import_sessions(&r.name, &batch).map_err(err)?;
            *copied.get_mut("sessions").expect("counted") += batch.len() as u64;
        }
        let mut after = None;
        loop {
            let batch = source.export_grants(&r.name, after, BATCH).map_err(err)?;
            let Some(last) = batch.last() else { break };
            after = Some(id_bytes(&last.grant.grant_id)?);
            target.import_grants(&r.name, &batch).map_err(err)?;
            *copied.get_mut("grants").expect("counted") += batch.len() as u64;
        }
        let mut after = None;
        loop {
            let batch = source
                .export_deliveries(&r.name, after, BATCH)
                .map_err(err)?;
            let Some(last) = batch.last() else { break };
            after = Some(last.id);
            target.import_deliveries(&batch).map_err(err)?;
            for d in &batch {
                let status = match d.status {
                    DeliveryStatus::Pending => "pending deliveries",
                    DeliveryStatus::Delivered => "delivered deliveries",
                    DeliveryStatus::Failed => "failed deliveries",
                };
                *copied.get_mut(status).expect("counted") += 1;
            }
        }
        // The activity counters still kept, bucket by bucket.
        let now = Utc::now();
        for span in Span::ALL {
            let from = DateTime::from_timestamp(span.oldest_kept(now), 0).unwrap_or(now);
            let buckets = source.stats(&r.name, span, from, now).map_err(err)?;
            target.import_stats(&r.name, span, &buckets).map_err(err)?;
            if target.stats(&r.name, span, from, now).map_err(err)? != buckets {
                return Err(format!(
                    "the activity counters of realm {} differ after copying them",
                    r.name
                ));
            }
        }
        writeln!(out, "copied realm {}", r.name).map_err(err)?;
    }
    let mut after = None;
    loop {
        let batch = source.export_audit(after, BATCH).map_err(err)?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(*last);
        target.import_audit(&batch).map_err(err)?;
        *copied.get_mut("audit entries").expect("counted") += batch.len() as u64;
    }

    let keys = source.api_keys().map_err(err)?;
    for k in &keys {
        target.put_api_key(k).map_err(err)?;
    }
    *copied.get_mut("API keys").expect("counted") = keys.len() as u64;
    let admins = source.admins().map_err(err)?;
    for a in &admins {
        target.put_admin(a).map_err(err)?;
    }
    *copied.get_mut("administrators").expect("counted") = admins.len() as u64;
    let signing = source.signing_keys().map_err(err)?;
    let others: Vec<String> = target
        .signing_keys()
        .map_err(err)?
        .into_iter()
        .map(|k| k.kid)
        .filter(|kid| !signing.iter().any(|s| &s.kid == kid))
        .collect();
    target.update_signing_keys(&signing, &others).map_err(err)?;
    *copied.get_mut("signing keys").expect("counted") = signing.len() as u64;

    target.rebuild_counters().map_err(err)?;
    compare(&source, &target, &copied, out)
}

/// The bytes of a session or grant id.
fn id_bytes(id: &str) -> Result<[u8; 16], String> {
    sessions::store::parse_sid(id).ok_or_else(|| format!("bad id {id}"))
}

/// Prints every count of both stores; fails if one differs.
fn compare(
    source: &SledStore,
    target: &PostgresStore,
    copied: &BTreeMap<&str, u64>,
    out: &mut impl Write,
) -> Result<(), String> {
    let mut rows: Vec<(String, u64, u64)> = Vec::new();
    for (what, n) in target.row_counts().map_err(err)? {
        rows.push((what.clone(), copied[what.as_str()], n));
    }
    for realm in source.list_realms().map_err(err)? {
        let there = target.get_realm(&realm.name).map_err(err)?.session_count;
        rows.push((
            format!("session count of realm {}", realm.name),
            realm.session_count,
            there,
        ));
    }
    writeln!(out, "{:<40} {:>12} {:>12}", "", "embedded", "PostgreSQL").map_err(err)?;
    let mut differ = Vec::new();
    for (what, here, there) in &rows {
        writeln!(out, "{what:<40} {here:>12} {there:>12}").map_err(err)?;
        if here != there {
            differ.push(what.clone());
        }
    }
    if differ.is_empty() {
        writeln!(out, "every count is equal").map_err(err)?;
        Ok(())
    } else {
        Err(format!("counts differ: {}", differ.join(", ")))
    }
}
