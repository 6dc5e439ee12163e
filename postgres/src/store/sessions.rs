//! A session's life: creation within its subject's quota, validation (one indexed point read),
//! refresh, properties, clients, logout.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use sessions::address::address_bytes;
use sessions::model::{CreatedSession, NewSession, QuotaPolicy, Session};
use sessions::stats::{EndReason, Metric};
use sessions::store::shared::{random_bytes, words, Flags, MAX_TOKEN_LEN};
use sessions::{validate, LastAddress, Network, SessionError};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::counters::{self, Counted, Deltas, Kind};
use super::db::{db_run, db_write, Tx, R};
use super::ending;
use super::rows::{self, RealmRow, StoredSession, REALM, SESSION};
use super::{realms, PostgresStore};

/// What a secret token names: a session by its id (and the hash of its secret), or, for a token
/// of the embedded store's first layout, a session by the token's hash.
enum TokenKey {
    Sid(Uuid, [u8; 32]),
    Hash([u8; 32]),
    Nothing,
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Equality of two hashes that takes as long whatever they hold.
fn same_hash(a: &[u8], b: &[u8; 32]) -> bool {
    a.len() == 32 && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn token_key(token: &str) -> TokenKey {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return TokenKey::Nothing;
    }
    match URL_SAFE_NO_PAD.decode(token) {
        Ok(raw) if raw.len() == 48 => TokenKey::Sid(
            Uuid::from_slice(&raw[..16]).expect("16 bytes"),
            sha256(&raw[16..]),
        ),
        Ok(raw) if raw.len() == 32 => TokenKey::Hash(sha256(token.as_bytes())),
        _ => TokenKey::Nothing,
    }
}

/// The session a token belongs to, if the token matches it.
fn matching(key: &TokenKey, s: Option<StoredSession>) -> Option<StoredSession> {
    let s = s?;
    let hash = match key {
        TokenKey::Sid(_, h) | TokenKey::Hash(h) => h,
        TokenKey::Nothing => return None,
    };
    same_hash(&s.token_hash, hash).then_some(s)
}

/// The realm and the session a token belongs to (valid or not), in one read.
async fn find(tx: &Tx<'_>, realm: &str, token: &str) -> R<(RealmRow, Option<StoredSession>)> {
    find_key(tx, realm, &token_key(token)).await
}

/// The realm and the session a token's key names (valid or not), in one read.
async fn find_key(
    tx: &Tx<'_>,
    realm: &str,
    key: &TokenKey,
) -> R<(RealmRow, Option<StoredSession>)> {
    let row = match key {
        TokenKey::Sid(sid, _) => {
            tx.query_opt(
                &format!(
                    "SELECT {REALM}, {SESSION} FROM realms r
                       LEFT JOIN sessions s ON s.realm = r.realm AND s.sid = $2
                      WHERE r.realm = $1"
                ),
                &[&realm, sid],
            )
            .await?
        }
        TokenKey::Hash(hash) => {
            tx.query_opt(
                &format!(
                    "SELECT {REALM}, {SESSION} FROM realms r
                       LEFT JOIN sessions s ON s.realm = r.realm AND s.token_lookup
                                           AND s.token_hash = $2
                      WHERE r.realm = $1"
                ),
                &[&realm, &&hash[..]],
            )
            .await?
        }
        TokenKey::Nothing => return Ok((realms::load(tx, realm).await?, None)),
    };
    let row = row.ok_or_else(|| SessionError::RealmNotFound(realm.to_owned()))?;
    let realm = rows::realm(&row, 0)?;
    let session = match row.try_get::<_, Option<Uuid>>(4)? {
        Some(_) => Some(rows::session(&row, 4, &realm.name)?),
        None => None,
    };
    Ok((realm, matching(key, session)))
}

/// How often a refreshing validation writes the session's last access, at most.
fn refresh_interval(realm: &RealmRow) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(realm.settings.latest_access_update_interval_secs as i64)
}

/// Whether a validation with `refresh` must write the session's last access: it was written
/// longer than the realm's interval ago.
fn needs_refresh(realm: &RealmRow, s: &StoredSession, refresh: bool, now: DateTime<Utc>) -> bool {
    refresh && now - s.session.last_access_at >= refresh_interval(realm)
}

/// The session a token belongs to (valid or not), locked until the transaction ends.
async fn lock_by_token(tx: &Tx<'_>, realm: &str, token: &str) -> R<Option<StoredSession>> {
    let key = token_key(token);
    let row = match &key {
        TokenKey::Sid(sid, _) => {
            tx.query_opt(
                &format!(
                    "SELECT {SESSION} FROM sessions s WHERE s.realm = $1 AND s.sid = $2 FOR UPDATE"
                ),
                &[&realm, sid],
            )
            .await?
        }
        TokenKey::Hash(hash) => {
            tx.query_opt(
                &format!(
                    "SELECT {SESSION} FROM sessions s
                      WHERE s.realm = $1 AND s.token_lookup AND s.token_hash = $2 FOR UPDATE"
                ),
                &[&realm, &&hash[..]],
            )
            .await?
        }
        TokenKey::Nothing => None,
    };
    let session = row.map(|r| rows::session(&r, 0, realm)).transpose()?;
    Ok(matching(&key, session))
}

/// A session by id, locked until the transaction ends.
pub(crate) async fn lock_by_sid(tx: &Tx<'_>, realm: &str, sid: &Uuid) -> R<Option<StoredSession>> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT {SESSION} FROM sessions s WHERE s.realm = $1 AND s.sid = $2 FOR UPDATE"
            ),
            &[&realm, sid],
        )
        .await?;
    row.map(|r| rows::session(&r, 0, realm)).transpose()
}

/// A time-ordered session id (UUIDv7) for a creation time; a random one (v4) for a time outside
/// v7's 48 bits of milliseconds.
fn new_sid(created_ms: i64, random: &[u8; 16]) -> Uuid {
    match u64::try_from(created_ms) {
        Ok(ms) if ms < 1 << 48 => {
            uuid::Builder::from_unix_timestamp_millis(ms, random[..10].try_into().expect("10"))
                .into_uuid()
        }
        _ => uuid::Builder::from_random_bytes(*random).into_uuid(),
    }
}

/// How a session row arrives.
#[derive(Clone, Copy)]
pub(crate) enum Arrival {
    /// A session created here: counted at once.
    Created,
    /// A session copied from another store with its ids: skipped if it is there already, counted
    /// when the copy rebuilds the counters. `found_by_hash`: its token is of the embedded store's
    /// first layout, found by its hash.
    Copied { found_by_hash: bool },
}

/// Stores a session with its client and word index rows (counted, if [`Arrival::Created`]), in
/// one round trip; answers whether it was stored (a copy of one there already is not).
pub(crate) async fn insert(
    tx: &Tx<'_>,
    realm: &str,
    s: &Session,
    token_hash: &[u8; 32],
    arrival: Arrival,
) -> R<bool> {
    let sid = Uuid::parse_str(&s.sid)
        .map_err(|e| SessionError::Storage(format!("bad session id {}: {e}", s.sid)))?;
    let properties =
        serde_json::to_value(&s.properties).map_err(|e| SessionError::Storage(e.to_string()))?;
    let name_words: Vec<String> = s
        .display_name
        .as_deref()
        .map(|n| words(n).collect::<BTreeSet<_>>().into_iter().collect())
        .unwrap_or_default();
    let device = sessions::Device::of(s.user_agent.as_deref()).map(|d| d.code() as i32);
    let mut deltas = Deltas::default();
    if let Arrival::Created = arrival {
        deltas.session(
            realm,
            &Counted {
                subject_id: &s.subject_id,
                client_ids: &s.client_ids,
                display_name: s.display_name.as_deref(),
                device,
            },
            1,
        );
    }
    let found_by_hash = matches!(
        arrival,
        Arrival::Copied {
            found_by_hash: true
        }
    );
    deltas.stat(realm, s.created_at, Metric::SignIns, 1);
    let token_hash = &token_hash[..];
    let address = s.ip.as_deref().and_then(address_bytes).map(|a| a.to_vec());
    let network = rows::network_json(s.network.as_ref());
    // The last address is kept only once it differs from the sign-in's.
    let last_ip = s.last_ip.as_ref().filter(|l| s.ip.as_ref() != Some(*l));
    let last_network = last_ip.and_then(|_| rows::network_json(s.last_network.as_ref()));
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 20] = [
        &realm,
        &sid,
        &s.subject_id,
        &s.display_name,
        &s.created_at,
        &s.last_access_at,
        &s.idle_expires_at,
        &s.expires_at,
        &s.client_ids,
        &properties,
        &s.ip,
        &s.user_agent,
        &token_hash,
        &found_by_hash,
        &address,
        &name_words,
        &device,
        &network,
        &last_ip,
        &last_network,
    ];
    let session = tx.execute(
        "INSERT INTO sessions (realm, sid, subject_id, display_name, created_at, last_access_at,
                               idle_expires_at, expires_at, client_ids, properties, ip, user_agent,
                               token_hash, token_lookup, address, name_words, device, network,
                               last_ip, last_network)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                 nullif($16::text[], '{}'), $17, $18, $19, $20)
         ON CONFLICT (realm, sid) DO NOTHING",
        &params,
    );
    // A copy's index rows are there already if its session is.
    let clients = async {
        if !s.client_ids.is_empty() {
            index_clients(tx, realm, &s.client_ids, s.created_at, &sid).await?;
        }
        Ok::<_, super::db::Error>(())
    };
    let words = async {
        if !name_words.is_empty() {
            tx.execute(
                "INSERT INTO session_words (realm, word, created_at, sid)
                 SELECT $1, w, $3, $4 FROM unnest($2::text[]) AS w
                 ON CONFLICT DO NOTHING",
                &[&realm, &name_words, &s.created_at, &sid],
            )
            .await?;
        }
        Ok(())
    };
    // Sent together: one round trip.
    let (stored, (), (), ()) = futures::try_join!(session, clients, words, deltas.apply(tx))?;
    if stored == 0 {
        if let Arrival::Created = arrival {
            // A fresh time-ordered id with 80 random bits; the transaction is rolled back.
            return Err(SessionError::Storage(format!("session id {sid} is taken")).into());
        }
    }
    Ok(stored == 1)
}

/// Index rows of clients a session joined.
async fn index_clients(
    tx: &Tx<'_>,
    realm: &str,
    client_ids: &[String],
    created_at: DateTime<Utc>,
    sid: &Uuid,
) -> R<()> {
    tx.execute(
        "INSERT INTO session_clients (realm, client_id, created_at, sid)
         SELECT $1, c, $3, $4 FROM unnest($2::text[]) AS c
         ON CONFLICT DO NOTHING",
        &[&realm, &client_ids, &created_at, sid],
    )
    .await?;
    Ok(())
}

/// Makes room for one more session of the subject under the realm's quota: nothing without one;
/// else, with the subject locked until the transaction ends, refuses (deny) or ends its oldest
/// sessions (evict oldest).
async fn within_quota(tx: &Tx<'_>, realm: &RealmRow, subject: &str, now: DateTime<Utc>) -> R<()> {
    let Some(max) = realm.settings.max_sessions_per_subject.map(u64::from) else {
        return Ok(());
    };
    realms::lock(tx, "subject", &format!("{}\0{subject}", realm.name)).await?;
    let held = counters::count(tx, &realm.name, Kind::Subject, subject).await?;
    if held < max {
        return Ok(());
    }
    if realm.settings.quota_policy == QuotaPolicy::Deny {
        return Err(SessionError::QuotaExceeded(subject.to_owned()).into());
    }
    let oldest: Vec<Uuid> = tx
        .query(
            "SELECT sid FROM sessions WHERE realm = $1 AND subject_id = $2
              ORDER BY created_at, sid LIMIT $3",
            &[&realm.name, &subject, &((held - max + 1) as i64)],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let flags = Flags::everything(EndReason::Evicted);
    ending::end(tx, realm, &oldest, &flags, &HashSet::new(), false, now).await?;
    Ok(())
}

impl PostgresStore {
    pub(crate) async fn create_session_impl(
        &self,
        realm: &str,
        new: &NewSession,
        network: Option<Network>,
        now: DateTime<Utc>,
    ) -> sessions::Result<CreatedSession> {
        let now = rows::ms(now);
        let network = network.filter(|n| !n.is_empty());
        let random: [u8; 48] = random_bytes()?;
        let sid = new_sid(now.timestamp_millis(), random[..16].try_into().expect("16"));
        let secret = &random[16..];
        let token = URL_SAFE_NO_PAD.encode([sid.as_bytes(), secret].concat());
        let token_hash = sha256(secret);
        let created = db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            validate::new_session(new)?;
            let mut client_ids: Vec<String> = Vec::with_capacity(new.client_ids.len());
            for c in &new.client_ids {
                if !client_ids.contains(c) {
                    client_ids.push(c.clone());
                }
            }
            let settings = &realm.settings;
            let session = Session {
                sid: sid.hyphenated().to_string(),
                realm: realm.name.clone(),
                subject_id: new.subject_id.clone(),
                display_name: new.display_name.clone().filter(|n| !n.trim().is_empty()),
                created_at: now,
                last_access_at: now,
                idle_expires_at: rows::ms(
                    now + chrono::TimeDelta::seconds(settings.idle_timeout_secs as i64),
                ),
                expires_at: rows::ms(
                    now + chrono::TimeDelta::seconds(settings.absolute_lifetime_secs as i64),
                ),
                client_ids,
                properties: new.properties.clone(),
                ip: new.ip.clone(),
                user_agent: new.user_agent.clone(),
                device: sessions::Device::of(new.user_agent.as_deref()),
                last_ip: new.ip.clone(),
                last_network: network.clone(),
                network: network.clone(),
            };
            within_quota(tx, &realm, &session.subject_id, now).await?;
            insert(tx, &realm.name, &session, &token_hash, Arrival::Created).await?;
            Ok(CreatedSession {
                session,
                token: token.clone(),
            })
        })
        .await?;
        self.sessions_changed(&created.session.realm);
        Ok(created)
    }

    pub(crate) async fn validate_impl(
        &self,
        realm: &str,
        token: &str,
        refresh: bool,
        now: DateTime<Utc>,
    ) -> sessions::Result<Option<Session>> {
        let now = rows::ms(now);
        let key = token_key(token);
        let validations = self.db.validations();
        if let TokenKey::Sid(sid, hash) = &key {
            if let Some((realm, kept)) = validations.get(realm, sid) {
                // A session's token never changes: a wrong one is wrong in the database too.
                if !same_hash(&kept.token_hash, hash) {
                    return Ok(None);
                }
                if kept.is_valid_at(now) && !needs_refresh(&realm, &kept, refresh, now) {
                    return Ok(Some(realm.settings.as_seen_by_holder(kept.session)));
                }
                // Expired by what was kept (another server may have extended it), or due a
                // refresh: the database decides.
            }
        }
        let epoch = validations.epoch();
        let found = db_run!(self.db, async |tx| {
            let (realm, found) = find_key(tx, realm, &key).await?;
            let valid = found.as_ref().filter(|s| s.is_valid_at(now));
            validations.keep(epoch, &realm, valid);
            let Some(s) = found.filter(|s| s.is_valid_at(now)) else {
                return Ok(None);
            };
            if !needs_refresh(&realm, &s, refresh, now) {
                return Ok(Some((realm, s)));
            }
            // One conditional write: a concurrent refresh or removal makes it match nothing.
            let interval = refresh_interval(&realm);
            let idle = chrono::TimeDelta::seconds(realm.settings.idle_timeout_secs as i64);
            let refreshed = tx
                .query_opt(
                    &format!(
                        "UPDATE sessions s SET last_access_at = $3, idle_expires_at = $4
                          WHERE s.realm = $1 AND s.sid = $2 AND s.ends_at > $3
                            AND s.last_access_at <= $5
                         RETURNING {SESSION}"
                    ),
                    &[
                        &realm.name,
                        &s.sid(),
                        &now,
                        &rows::ms(now + idle),
                        &(now - interval),
                    ],
                )
                .await?;
            let epoch = validations.epoch();
            let current = match refreshed {
                Some(row) => Some(rows::session(&row, 0, &realm.name)?),
                None => find_key(tx, &realm.name, &key).await?.1,
            };
            let current = current.filter(|s| s.is_valid_at(now));
            validations.keep(epoch, &realm, current.as_ref());
            Ok(current.map(|s| (realm, s)))
        })
        .await?;
        Ok(found.map(|(realm, s)| realm.settings.as_seen_by_holder(s.session)))
    }

    pub(crate) async fn logout_impl(
        &self,
        realm: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> sessions::Result<bool> {
        let now = rows::ms(now);
        let ended = db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let Some(s) = lock_by_token(tx, &realm.name, token).await? else {
                return Ok(false);
            };
            let flags = Flags::everything(EndReason::Logout);
            let ended =
                ending::end(tx, &realm, &[s.sid()], &flags, &HashSet::new(), false, now).await?;
            Ok(ended.outcome.records_deleted > 0)
        })
        .await?;
        if ended {
            self.sessions_changed(realm);
        }
        Ok(ended)
    }

    pub(crate) async fn add_client_impl(
        &self,
        realm: &str,
        sid: &str,
        client_id: &str,
    ) -> sessions::Result<Session> {
        let not_found = || SessionError::SessionNotFound(sid.to_owned());
        db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            validate::identifier("client_id", client_id)?;
            let parsed = sessions::store::parse_sid(sid).ok_or_else(not_found)?;
            let parsed = Uuid::from_bytes(parsed);
            let mut s = lock_by_sid(tx, &realm.name, &parsed)
                .await?
                .ok_or_else(not_found)?;
            if s.session.client_ids.iter().any(|c| c == client_id) {
                return Ok(s.session);
            }
            if s.session.client_ids.len() >= 64 {
                return Err(
                    SessionError::invalid("a session may name at most 64 client_ids").into(),
                );
            }
            s.session.client_ids.push(client_id.to_owned());
            let mut deltas = Deltas::default();
            deltas.add(&realm.name, Kind::Client, client_id, 1);
            let added = [client_id.to_owned()];
            futures::try_join!(
                async {
                    tx.execute(
                        "UPDATE sessions SET client_ids = $3 WHERE realm = $1 AND sid = $2",
                        &[&realm.name, &parsed, &s.session.client_ids],
                    )
                    .await
                    .map(drop)
                },
                index_clients(tx, &realm.name, &added, s.session.created_at, &parsed),
                deltas.apply(tx),
                tx.sessions_changed(std::slice::from_ref(&parsed)),
            )?;
            Ok(s.session)
        })
        .await
    }

    pub(crate) async fn note_address_impl(
        &self,
        realm: &str,
        sid: &str,
        last: &LastAddress,
    ) -> sessions::Result<Option<Session>> {
        let Some(parsed) = sessions::store::parse_sid(sid).map(Uuid::from_bytes) else {
            return Ok(None);
        };
        let network = rows::network_json(last.network.as_ref());
        db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            validate::text("ip", &last.ip)?;
            // Back at the sign-in's address: the last one is the sign-in's again.
            let row = tx
                .query_opt(
                    &format!(
                        "UPDATE sessions s
                            SET last_ip = CASE WHEN s.ip = $3 THEN NULL ELSE $3 END,
                                last_network = CASE WHEN s.ip = $3 THEN NULL ELSE $4::jsonb END
                          WHERE s.realm = $1 AND s.sid = $2
                            AND coalesce(s.last_ip, s.ip) IS DISTINCT FROM $3
                      RETURNING {SESSION}"
                    ),
                    &[&realm.name, &parsed, &last.ip, &network],
                )
                .await?;
            let s = match row {
                Some(row) => {
                    tx.sessions_changed(std::slice::from_ref(&parsed)).await?;
                    Some(rows::session(&row, 0, &realm.name)?)
                }
                // Not there, or there already at this address.
                None => tx
                    .query_opt(
                        &format!(
                            "SELECT {SESSION} FROM sessions s WHERE s.realm = $1 AND s.sid = $2"
                        ),
                        &[&realm.name, &parsed],
                    )
                    .await?
                    .map(|row| rows::session(&row, 0, &realm.name))
                    .transpose()?,
            };
            Ok(s.map(|s| realm.settings.as_seen_by_holder(s.session)))
        })
        .await
    }

    pub(crate) async fn get_session_impl(
        &self,
        realm: &str,
        sid: &str,
    ) -> sessions::Result<Session> {
        let parsed = sessions::store::parse_sid(sid).map(Uuid::from_bytes);
        let found = db_run!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let Some(parsed) = parsed else {
                return Ok(None);
            };
            let row = tx
                .query_opt(
                    &format!("SELECT {SESSION} FROM sessions s WHERE s.realm = $1 AND s.sid = $2"),
                    &[&realm.name, &parsed],
                )
                .await?;
            row.map(|r| rows::session(&r, 0, &realm.name).map(|s| s.session))
                .transpose()
        })
        .await?;
        found.ok_or_else(|| SessionError::SessionNotFound(sid.to_owned()))
    }

    pub(crate) async fn get_properties_impl(
        &self,
        realm: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> sessions::Result<BTreeMap<String, String>> {
        db_run!(self.db, async |tx| {
            let (realm, found) = find(tx, realm, token).await?;
            let s = found
                .filter(|s| s.is_valid_at(now))
                .ok_or_else(|| SessionError::SessionNotFound("(token)".into()))?;
            Ok(realm.settings.holder_properties(s.session.properties))
        })
        .await
    }

    pub(crate) async fn set_properties_impl(
        &self,
        realm: &str,
        token: &str,
        properties: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> sessions::Result<BTreeMap<String, String>> {
        db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let allowed = &realm.settings.property_whitelist;
            for (k, v) in properties {
                validate::identifier("property name", k)?;
                validate::text("property value", v)?;
                if !allowed.contains(k) {
                    return Err(SessionError::PropertyNotAllowed(k.clone()).into());
                }
            }
            let mut s = lock_by_token(tx, &realm.name, token)
                .await?
                .filter(|s| s.is_valid_at(now))
                .ok_or_else(|| SessionError::SessionNotFound("(token)".into()))?;
            for (k, v) in properties {
                if v.is_empty() {
                    s.session.properties.remove(k);
                } else {
                    s.session.properties.insert(k.clone(), v.clone());
                }
            }
            if s.session.properties.len() > 64 {
                return Err(
                    SessionError::invalid("a session may carry at most 64 properties").into(),
                );
            }
            let value = serde_json::to_value(&s.session.properties)
                .map_err(|e| SessionError::Storage(e.to_string()))?;
            let sid = s.sid();
            futures::try_join!(
                async {
                    tx.execute(
                        "UPDATE sessions SET properties = $3 WHERE realm = $1 AND sid = $2",
                        &[&realm.name, &sid, &value],
                    )
                    .await
                },
                tx.sessions_changed(std::slice::from_ref(&sid)),
            )?;
            Ok(s.session
                .properties
                .into_iter()
                .filter(|(k, _)| allowed.contains(k))
                .collect())
        })
        .await
    }
}
