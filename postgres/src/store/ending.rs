//! Ending sessions, the one path every removal, logout, realm sign-out, eviction and expiry
//! takes: in one transaction per batch, the records go with their index rows and counts, their
//! token grants (and their subjects' consents) are revoked and their logout notifications
//! queued, so for each session either all of it happened or none of it did.
//!
//! Concurrency comes from row locks: the `DELETE ... RETURNING` (or, keeping the record,
//! `SELECT ... FOR UPDATE`) answers only the sessions this transaction ended, so two removals of
//! one session count it once; a grant is added under a session only with the session's row
//! locked (`FOR SHARE`), so no grant can slip in between the session's end and its grants' list.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sessions::model::{EndAllSessions, EndOutcome, EndSessions};
use sessions::signal::ending_targets;
use sessions::stats::Metric;
use sessions::store::shared::{
    end_all_entry, end_all_flags, end_entry, end_flags, end_outcome, from_ms,
    offline_tokens_subject, words, Filters, Flags, REMOVE_ALL_BATCH,
};
use sessions::AuditEntry;
use uuid::Uuid;

use super::counters::{Counted, Deltas};
use super::db::{db_run, db_write, Params, Tx, R};
use super::ended::{self, Gone, GONE};
use super::rows::{RealmRow, CONSENT};
use super::{accounts, audit, realms, PostgresStore};

/// Sessions ended per transaction.
const END_BATCH: usize = 512;

/// What ending a batch of sessions did.
#[derive(Default)]
pub(crate) struct Ended {
    pub outcome: EndOutcome,
    /// Subjects whose consents it revoked (once per request).
    pub consents_of: Vec<String>,
}

/// A session about to end, as selected.
pub(crate) struct Target {
    pub sid: Uuid,
    pub client_ids: Vec<String>,
}

/// The client scope as a statement parameter: `None` for every client.
fn scope(flags: &Flags) -> Option<Vec<String>> {
    flags
        .client_scope
        .as_ref()
        .map(|s| s.iter().cloned().collect())
}

/// Deletes the grants `which` (a `WHERE` clause over `params`) selects, or counts them for a dry
/// run; answers how many.
async fn revoke_grants(tx: &Tx<'_>, which: &str, params: &Params<'_>, dry_run: bool) -> R<u64> {
    if dry_run {
        let sql = format!("SELECT count(*) FROM grants {which}");
        let n: i64 = tx.query_one(&sql, params).await?.try_get(0)?;
        Ok(n as u64)
    } else {
        tx.execute(&format!("DELETE FROM grants {which}"), params)
            .await
    }
}

/// Ends the sessions `sids` names (those still there, and for the reaper still expired) as
/// `flags` say, within the caller's transaction; with `dry_run`, only counts what it would do.
/// The consents of subjects in `consents_done` were revoked by an earlier batch.
pub(crate) async fn end(
    tx: &Tx<'_>,
    realm: &RealmRow,
    sids: &[Uuid],
    flags: &Flags,
    consents_done: &HashSet<String>,
    dry_run: bool,
    now: DateTime<Utc>,
) -> R<Ended> {
    let mut ended = Ended::default();
    if sids.is_empty() {
        return Ok(ended);
    }
    let name = &realm.name;
    let expired_at = flags.expired_at.map(from_ms);
    let which = "WHERE realm = $1 AND sid = ANY($2)
                   AND ($3::timestamptz IS NULL OR ends_at <= $3)";
    let columns = GONE;
    let sql = if dry_run {
        format!("SELECT {columns} FROM sessions {which}")
    } else if flags.remove_server_side_session {
        format!("DELETE FROM sessions {which} RETURNING {columns}")
    } else {
        format!("SELECT {columns} FROM sessions {which} ORDER BY sid FOR UPDATE")
    };
    let mut found = tx.query(&sql, &[name, &sids, &expired_at]).await?;
    // In the order asked for, so notifications are queued in it.
    let order: HashMap<&Uuid, usize> = sids.iter().enumerate().map(|(i, s)| (s, i)).collect();
    found.sort_by_key(|r| order.get(&r.get::<_, Uuid>(0)).copied());
    let gone: Vec<Gone> = found.iter().map(Gone::read).collect::<R<_>>()?;
    if gone.is_empty() {
        return Ok(ended);
    }
    if !dry_run && flags.expired_at.is_none() {
        // Expired sessions are refused by what validation caches kept of them too.
        let sids: Vec<Uuid> = gone.iter().map(|g| g.sid).collect();
        tx.sessions_changed(&sids).await?;
    }
    let out = &mut ended.outcome;
    let mut deltas = Deltas::default();
    if flags.remove_server_side_session {
        out.records_deleted = gone.len() as u64;
        if !dry_run {
            deltas.stat(name, now, Metric::Ended(flags.reason), gone.len() as u64);
            let (mut c_ids, mut c_at, mut c_sid) = (Vec::new(), Vec::new(), Vec::new());
            let (mut w_words, mut w_at, mut w_sid) = (Vec::new(), Vec::new(), Vec::new());
            for g in &gone {
                for c in &g.client_ids {
                    c_ids.push(c.clone());
                    c_at.push(g.created_at);
                    c_sid.push(g.sid);
                }
                if let Some(n) = &g.display_name {
                    for w in words(n).collect::<BTreeSet<_>>() {
                        w_words.push(w);
                        w_at.push(g.created_at);
                        w_sid.push(g.sid);
                    }
                }
                deltas.session(
                    name,
                    &Counted {
                        subject_id: &g.subject_id,
                        client_ids: &g.client_ids,
                        display_name: g.display_name.as_deref(),
                        device: g.device,
                    },
                    -1,
                );
            }
            let clients: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [name, &c_ids, &c_at, &c_sid];
            let words: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [name, &w_words, &w_at, &w_sid];
            futures::try_join!(
                tx.execute(
                    "DELETE FROM session_clients c
                      USING unnest($2::text[], $3::timestamptz[], $4::uuid[]) AS x(client_id, created_at, sid)
                      WHERE c.realm = $1 AND c.client_id = x.client_id
                        AND c.created_at = x.created_at AND c.sid = x.sid",
                    &clients,
                ),
                tx.execute(
                    "DELETE FROM session_words w
                      USING unnest($2::text[], $3::timestamptz[], $4::uuid[]) AS x(word, created_at, sid)
                      WHERE w.realm = $1 AND w.word = x.word
                        AND w.created_at = x.created_at AND w.sid = x.sid",
                    &words,
                ),
            )?;
        }
    }
    let clients = scope(flags);
    if flags.revoke_tokens {
        let ended_sids: Vec<Uuid> = gone.iter().map(|g| g.sid).collect();
        let which = "WHERE realm = $1 AND sid = ANY($2) AND kind <> $3
                       AND ($4::text[] IS NULL OR client_id = ANY($4))";
        out.tokens_revoked =
            revoke_grants(tx, which, &[name, &ended_sids, &CONSENT, &clients], dry_run).await?;
    }
    if flags.revoke_consents {
        let mut subjects: Vec<String> = Vec::new();
        for g in &gone {
            if !consents_done.contains(&g.subject_id) && !subjects.contains(&g.subject_id) {
                subjects.push(g.subject_id.clone());
            }
        }
        if !subjects.is_empty() {
            let which = "WHERE realm = $1 AND subject_id = ANY($2) AND kind = $3
                           AND ($4::text[] IS NULL OR client_id = ANY($4))";
            out.consents_revoked =
                revoke_grants(tx, which, &[name, &subjects, &CONSENT, &clients], dry_run).await?;
        }
        ended.consents_of = subjects;
    }
    let out = &mut ended.outcome;
    let mut queued: HashMap<(Uuid, &str), i64> = HashMap::new();
    if flags.notify {
        let uris = realms::backchannel_uris(tx, name).await?;
        let mut queue = Queue::default();
        for g in &gone {
            for c in g.client_ids.iter().filter(|c| flags.in_scope(c)) {
                if let Some(uri) = uris.get(c) {
                    queue.push(c, uri, g);
                }
            }
        }
        out.clients_notified = queue.len() as u64;
        if !dry_run && queue.len() > 0 {
            let ids = queue.insert(tx, name, flags, now, &mut deltas).await?;
            for ((sid, client), id) in queue.sids.iter().zip(&queue.clients).zip(&ids) {
                let client = gone
                    .iter()
                    .find(|g| g.sid == *sid)
                    .and_then(|g| g.client_ids.iter().find(|c| *c == client))
                    .expect("notified clients are the gone sessions' own");
                queued.insert((*sid, client.as_str()), *id);
            }
        }
    }
    if flags.remove_server_side_session {
        // Shared Signals streams hear of every ended session, whatever the flags say.
        let streams = accounts::streams(tx).await?;
        let signals: Vec<(String, String)> = ending_targets(&streams, name).collect();
        out.signals_queued = (gone.len() * signals.len()) as u64;
        if !dry_run && !signals.is_empty() {
            let mut queue = Queue::default();
            for g in &gone {
                for (client, target) in &signals {
                    queue.push(client, target, g);
                }
            }
            queue.insert(tx, name, flags, now, &mut deltas).await?;
        }
    }
    if flags.remove_server_side_session && !dry_run {
        ended::record(
            tx,
            name,
            &gone,
            flags.reason,
            flags.by.as_ref(),
            &queued,
            now,
        )
        .await?;
    }
    deltas.apply(tx).await?;
    Ok(ended)
}

/// Deliveries to queue, one per index of the parallel columns.
#[derive(Default)]
struct Queue {
    clients: Vec<String>,
    targets: Vec<String>,
    subjects: Vec<String>,
    sids: Vec<Uuid>,
}

impl Queue {
    /// A delivery to `client` at `target` about the ended session `g`.
    fn push(&mut self, client: &str, target: &str, g: &Gone) {
        self.clients.push(client.to_owned());
        self.targets.push(target.to_owned());
        self.subjects.push(g.subject_id.clone());
        self.sids.push(g.sid);
    }

    fn len(&self) -> usize {
        self.clients.len()
    }

    /// Inserts the deliveries, pending and due now, in one statement and counts them; answers
    /// their ids.
    async fn insert(
        &self,
        tx: &Tx<'_>,
        realm: &str,
        flags: &Flags,
        now: DateTime<Utc>,
        deltas: &mut Deltas,
    ) -> R<Vec<i64>> {
        let ids: Vec<i64> = tx
            .query(
                "SELECT nextval('delivery_ids') FROM generate_series(1, $1)",
                &[&(self.len() as i32)],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        tx.execute(
            "INSERT INTO deliveries (realm, id, client_id, uri, subject_id, sid, reason, status,
                                     created_at, retry_window_start, next_attempt_at)
             SELECT $1, id, c, u, s, sid, $2, 0, $3, $3, $3
               FROM unnest($4::int8[], $5::text[], $6::text[], $7::text[], $8::uuid[])
                    AS x(id, c, u, s, sid)",
            &[
                &realm,
                &flags.reason.as_str(),
                &now,
                &ids,
                &self.clients,
                &self.targets,
                &self.subjects,
                &self.sids,
            ],
        )
        .await?;
        deltas.delivery(realm, sessions::DeliveryStatus::Pending, ids.len() as i64);
        Ok(ids)
    }
}

/// Adds what a batch did to a request's outcome.
fn add(outcome: &mut EndOutcome, done: &EndOutcome) {
    outcome.records_deleted += done.records_deleted;
    outcome.tokens_revoked += done.tokens_revoked;
    outcome.consents_revoked += done.consents_revoked;
    outcome.clients_notified += done.clients_notified;
    outcome.signals_queued += done.signals_queued;
}

impl PostgresStore {
    /// Ends `targets` in batches of [`END_BATCH`], one transaction each, adding to `outcome` as
    /// each commits.
    async fn end_targets(
        &self,
        realm: &RealmRow,
        targets: &[Target],
        flags: &Flags,
        consents_done: &mut HashSet<String>,
        outcome: &mut EndOutcome,
        now: DateTime<Utc>,
    ) -> sessions::Result<()> {
        let mut clients = HashSet::new();
        for t in targets {
            clients.extend(t.client_ids.iter().filter(|c| flags.in_scope(c)).cloned());
        }
        outcome.clients_affected += clients.len() as u64;
        let dry_run = outcome.dry_run;
        for chunk in targets.chunks(END_BATCH) {
            let sids: Vec<Uuid> = chunk.iter().map(|t| t.sid).collect();
            let done = db_write!(self.db, async |tx| {
                end(tx, realm, &sids, flags, consents_done, dry_run, now).await
            })
            .await?;
            if done.outcome.records_deleted > 0 {
                self.sessions_changed(&realm.name);
            }
            add(outcome, &done.outcome);
            consents_done.extend(done.consents_of);
        }
        Ok(())
    }

    /// Records a removal in the audit log, also when `ended` says it stopped part way; a dry
    /// run leaves no trace.
    async fn finish_ending(
        &self,
        outcome: &EndOutcome,
        mut entry: AuditEntry,
        ended: sessions::Result<()>,
    ) -> sessions::Result<()> {
        if outcome.dry_run {
            return ended;
        }
        entry.outcome = end_outcome(outcome, &ended);
        db_run!(self.db, async |tx| audit::insert(tx, &entry).await).await?;
        ended
    }

    pub(crate) async fn end_sessions_impl(
        &self,
        realm: &str,
        request: &EndSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> sessions::Result<EndOutcome> {
        let now = super::rows::ms(now);
        let realm = db_run!(self.db, async |tx| self.realms.get(tx, realm).await).await?;
        let (flags, filter) = end_flags(request, actor)?;
        let mut outcome = EndOutcome {
            dry_run: request.dry_run,
            ..Default::default()
        };
        // The same rule as every backend: filters (never a blank one) or sids, not both.
        let targets = match &filter {
            Some(filter) => {
                let filters = Filters::from_query(filter)?;
                db_run!(self.db, async |tx| {
                    let found =
                        super::query::matching(tx, &realm.name, &filters, "s.sid, s.client_ids")
                            .await?;
                    found
                        .iter()
                        .map(|r| {
                            Ok(Target {
                                sid: r.try_get(0)?,
                                client_ids: r.try_get(1)?,
                            })
                        })
                        .collect::<R<Vec<_>>>()
                })
                .await?
            }
            None => self.selected(&realm, &request.sids, &mut outcome).await?,
        };
        outcome.ended = targets
            .iter()
            .map(|t| t.sid.hyphenated().to_string())
            .collect();
        let mut consents_done = HashSet::new();
        let ended = async {
            self.end_targets(
                &realm,
                &targets,
                &flags,
                &mut consents_done,
                &mut outcome,
                now,
            )
            .await?;
            if let Some(subject) = offline_tokens_subject(filter.as_ref()) {
                if flags.revoke_tokens {
                    outcome.tokens_revoked += self
                        .revoke_offline_tokens(&realm, subject, &flags, request.dry_run)
                        .await?;
                }
            }
            Ok(())
        }
        .await;
        let entry = end_entry(&realm.name, request, filter.as_ref(), actor, now);
        self.finish_ending(&outcome, entry, ended).await?;
        Ok(outcome)
    }

    /// The sessions a removal selects by sid, in the order given, each once (sids compare as
    /// parsed values); the others go to `not_found`.
    async fn selected(
        &self,
        realm: &RealmRow,
        sids: &[String],
        outcome: &mut EndOutcome,
    ) -> sessions::Result<Vec<Target>> {
        let parsed: Vec<Uuid> = sids
            .iter()
            .filter_map(|s| sessions::store::parse_sid(s).map(Uuid::from_bytes))
            .collect();
        let found: HashMap<Uuid, Vec<String>> = db_run!(self.db, async |tx| {
            let rows = tx
                .query(
                    "SELECT sid, client_ids FROM sessions WHERE realm = $1 AND sid = ANY($2)",
                    &[&realm.name, &parsed],
                )
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<R<_>>()
        })
        .await?;
        let mut seen_sids = HashSet::new();
        let mut seen_unknown = HashSet::new();
        let mut targets = Vec::new();
        for sid in sids {
            let first = match sessions::store::parse_sid(sid).map(Uuid::from_bytes) {
                Some(u) => seen_sids.insert(u).then_some(Some(u)),
                None => seen_unknown.insert(sid.as_str()).then_some(None),
            };
            let Some(parsed) = first else { continue };
            match parsed.and_then(|u| found.get(&u).map(|c| (u, c))) {
                Some((sid, client_ids)) => targets.push(Target {
                    sid,
                    client_ids: client_ids.clone(),
                }),
                None => outcome.not_found.push(sid.clone()),
            }
        }
        Ok(targets)
    }

    /// Revokes (or counts, for a dry run) the subject's tokens issued under no session, within
    /// the client scope.
    async fn revoke_offline_tokens(
        &self,
        realm: &RealmRow,
        subject: &str,
        flags: &Flags,
        dry_run: bool,
    ) -> sessions::Result<u64> {
        let clients = scope(flags);
        let which = "WHERE realm = $1 AND subject_id = $2 AND sid IS NULL AND kind <> $3
                       AND ($4::text[] IS NULL OR client_id = ANY($4))";
        db_run!(self.db, async |tx| {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&realm.name, &subject, &CONSENT, &clients];
            if dry_run {
                let sql = format!("SELECT count(*) FROM grants {which}");
                let n: i64 = tx.query_one(&sql, &params).await?.try_get(0)?;
                Ok(n as u64)
            } else {
                tx.execute(&format!("DELETE FROM grants {which}"), &params)
                    .await
            }
        })
        .await
    }

    pub(crate) async fn end_all_sessions_impl(
        &self,
        realm: &str,
        request: &EndAllSessions,
        actor: &str,
        now: DateTime<Utc>,
    ) -> sessions::Result<EndOutcome> {
        let now = super::rows::ms(now);
        let realm = db_run!(self.db, async |tx| self.realms.get(tx, realm).await).await?;
        let flags = end_all_flags(request, actor)?;
        let mut outcome = EndOutcome {
            dry_run: request.dry_run,
            ..Default::default()
        };
        let ended = self.end_realm(&realm, &flags, &mut outcome, now).await;
        let entry = end_all_entry(&realm.name, request, actor, now);
        self.finish_ending(&outcome, entry, ended).await?;
        Ok(outcome)
    }

    /// Ends every session of the realm, in batches along creation order.
    async fn end_realm(
        &self,
        realm: &RealmRow,
        flags: &Flags,
        outcome: &mut EndOutcome,
        now: DateTime<Utc>,
    ) -> sessions::Result<()> {
        let mut after: Option<(DateTime<Utc>, Uuid)> = None;
        let mut consents_done = HashSet::new();
        let mut clients = HashSet::new();
        loop {
            let batch: Vec<(DateTime<Utc>, Target)> = db_run!(self.db, async |tx| {
                let found = match &after {
                    None => {
                        tx.query(
                            "SELECT created_at, sid, client_ids FROM sessions WHERE realm = $1
                              ORDER BY created_at, sid LIMIT $2",
                            &[&realm.name, &(REMOVE_ALL_BATCH as i64)],
                        )
                        .await?
                    }
                    Some((at, sid)) => {
                        tx.query(
                            "SELECT created_at, sid, client_ids FROM sessions
                              WHERE realm = $1 AND (created_at, sid) > ($3, $4)
                              ORDER BY created_at, sid LIMIT $2",
                            &[&realm.name, &(REMOVE_ALL_BATCH as i64), at, sid],
                        )
                        .await?
                    }
                };
                found
                    .iter()
                    .map(|r| {
                        Ok((
                            r.try_get(0)?,
                            Target {
                                sid: r.try_get(1)?,
                                client_ids: r.try_get(2)?,
                            },
                        ))
                    })
                    .collect::<R<_>>()
            })
            .await?;
            let Some((at, last)) = batch.last() else {
                break;
            };
            after = Some((*at, last.sid));
            let targets: Vec<Target> = batch.into_iter().map(|(_, t)| t).collect();
            for t in &targets {
                clients.extend(t.client_ids.iter().cloned());
            }
            let mut done = EndOutcome {
                dry_run: outcome.dry_run,
                ..Default::default()
            };
            let ended = self
                .end_targets(realm, &targets, flags, &mut consents_done, &mut done, now)
                .await;
            add(outcome, &done);
            ended?;
        }
        outcome.clients_affected = clients.len() as u64;
        Ok(())
    }

    pub(crate) async fn reap_expired_impl(
        &self,
        now: DateTime<Utc>,
        batch: usize,
    ) -> sessions::Result<usize> {
        let now = super::rows::ms(now);
        let realms: Vec<RealmRow> = db_run!(self.db, async |tx| {
            let found = tx
                .query(
                    &format!(
                        "SELECT {} FROM realms r ORDER BY r.realm",
                        super::rows::REALM
                    ),
                    &[],
                )
                .await?;
            found.iter().map(|r| super::rows::realm(r, 0)).collect()
        })
        .await?;
        let mut removed = 0;
        for realm in &realms {
            if removed >= batch {
                break;
            }
            let flags = Flags::expiry(&realm.settings, now);
            let left = (batch - removed) as i64;
            // Rows another server's reaper holds are passed over, not waited for.
            let ended = db_write!(self.db, async |tx| {
                let sids: Vec<Uuid> = tx
                    .query(
                        "SELECT sid FROM sessions WHERE realm = $1 AND ends_at <= $2
                          ORDER BY ends_at, sid LIMIT $3 FOR UPDATE SKIP LOCKED",
                        &[&realm.name, &now, &left],
                    )
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
                end(tx, realm, &sids, &flags, &HashSet::new(), false, now).await
            })
            .await?;
            if ended.outcome.records_deleted > 0 {
                self.sessions_changed(&realm.name);
            }
            removed += ended.outcome.records_deleted as usize;
            let left = (batch.saturating_sub(removed)) as i64;
            if left > 0 {
                removed += db_run!(self.db, async |tx| {
                    tx.execute(
                        "WITH picked AS MATERIALIZED (
                            SELECT id FROM grants WHERE realm = $1 AND expires_at < $2
                             ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                         DELETE FROM grants g USING picked p WHERE g.realm = $1 AND g.id = p.id",
                        &[&realm.name, &now, &left],
                    )
                    .await
                })
                .await? as usize;
            }
        }
        Ok(removed)
    }
}
