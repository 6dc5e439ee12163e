//! Realms and the clients registered in them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sessions::model::{Client, ClientRegistration, Realm, RealmSettings, RealmSettingsUpdate};
use sessions::store::shared::audit_entry;
use sessions::{validate, SessionError};

use super::counters::{self, Kind};
use super::db::{db_run, db_write, Tx, R};
use super::rows::{self, RealmRow, REALM};
use super::{audit, PostgresStore};

/// The realm of that name, or [`SessionError::RealmNotFound`].
pub(crate) async fn load(tx: &Tx<'_>, name: &str) -> R<RealmRow> {
    let row = tx
        .query_opt(
            &format!("SELECT {REALM} FROM realms r WHERE r.realm = $1"),
            &[&name],
        )
        .await?;
    match row {
        Some(row) => rows::realm(&row, 0),
        None => Err(SessionError::RealmNotFound(name.to_owned()).into()),
    }
}

/// How long a realm read from the database is used without reading it again: a settings change
/// made through another server takes effect here within this time. Realms are never deleted.
const CACHE_FOR: Duration = Duration::from_secs(1);

/// Realms recently read, so that most operations do not read their realm again.
#[derive(Default)]
pub(crate) struct RealmCache {
    entries: Mutex<HashMap<String, (RealmRow, Instant)>>,
}

impl RealmCache {
    /// The realm of that name (from the cache if read within [`CACHE_FOR`]), or
    /// [`SessionError::RealmNotFound`].
    pub(crate) async fn get(&self, tx: &Tx<'_>, name: &str) -> R<RealmRow> {
        if let Some((r, at)) = self.lock().get(name) {
            if at.elapsed() < CACHE_FOR {
                return Ok(r.clone());
            }
        }
        let r = load(tx, name).await?;
        self.put(r.clone());
        Ok(r)
    }

    /// A realm as just written.
    pub(crate) fn put(&self, r: RealmRow) {
        self.lock().insert(r.name.clone(), (r, Instant::now()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (RealmRow, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn view(tx: &Tx<'_>, r: RealmRow) -> R<Realm> {
    let session_count = counters::count(tx, &r.name, Kind::Realm, "").await?;
    Ok(Realm {
        name: r.name,
        settings: r.settings,
        created_at: r.created_at,
        session_count,
    })
}

/// An advisory lock on a name until the transaction ends, for writes that read first.
pub(crate) async fn lock(tx: &Tx<'_>, what: &str, name: &str) -> R<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&super::lock_key(what, name)],
    )
    .await?;
    Ok(())
}

fn client_view(client_id: &str, r: ClientRegistration, session_count: u64) -> Client {
    Client {
        client_id: client_id.to_owned(),
        name: r.name,
        backchannel_logout_uri: r.backchannel_logout_uri,
        backchannel_logout_session_required: r.backchannel_logout_session_required,
        session_count,
    }
}

fn registration(v: serde_json::Value) -> R<ClientRegistration> {
    serde_json::from_value(v)
        .map_err(|e| SessionError::Storage(format!("corrupt client record: {e}")).into())
}

fn json<T: serde::Serialize>(v: &T) -> R<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| SessionError::Storage(e.to_string()).into())
}

impl PostgresStore {
    /// Every realm's name, in order.
    pub(crate) async fn realm_names(&self) -> sessions::Result<Vec<String>> {
        db_run!(self.db, async |tx| {
            tx.query("SELECT realm FROM realms ORDER BY realm", &[])
                .await?
                .iter()
                .map(|r| Ok(r.try_get(0)?))
                .collect()
        })
        .await
    }

    /// Runs `step(realm, most)` realm by realm, each removing at most `most` rows and answering
    /// how many it removed, until `batch` rows are removed or every realm had its turn.
    pub(crate) async fn each_realm_up_to<F, Fut>(
        &self,
        batch: usize,
        step: F,
    ) -> sessions::Result<usize>
    where
        F: Fn(String, i64) -> Fut,
        Fut: std::future::Future<Output = sessions::Result<usize>>,
    {
        let mut done = 0;
        for realm in self.realm_names().await? {
            if done >= batch {
                break;
            }
            done += step(realm, (batch - done) as i64).await?;
        }
        Ok(done)
    }

    pub(crate) async fn put_realm_impl(
        &self,
        name: &str,
        update: &RealmSettingsUpdate,
        actor: &str,
        now: DateTime<Utc>,
    ) -> sessions::Result<Realm> {
        validate::realm_name(name)?;
        let (row, realm) = db_write!(self.db, async |tx| {
            lock(tx, "realm", name).await?;
            let existing = match load(tx, name).await {
                Ok(r) => Some(r),
                Err(super::db::Error::Session(SessionError::RealmNotFound(_))) => None,
                Err(e) => return Err(e),
            };
            let base = existing
                .as_ref()
                .map_or_else(RealmSettings::default, |r| r.settings.clone());
            let settings = update.apply_to(&base);
            validate::realm_settings(&settings)?;
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO realms AS r (realm, id, settings, created_at)
                         VALUES ($1, nextval('realm_ids'), $2, $3)
                         ON CONFLICT (realm) DO UPDATE SET settings = excluded.settings
                         RETURNING {REALM}"
                    ),
                    &[&name, &json(&settings)?, &rows::ms(now)],
                )
                .await?;
            let action = if existing.is_some() {
                "update_realm"
            } else {
                "create_realm"
            };
            audit::insert(tx, &audit_entry(name, action, name, actor, now)).await?;
            let row = rows::realm(&row, 0)?;
            Ok((row.clone(), view(tx, row).await?))
        })
        .await?;
        self.realms.put(row);
        Ok(realm)
    }

    pub(crate) async fn get_realm_impl(&self, name: &str) -> sessions::Result<Realm> {
        db_run!(self.db, async |tx| {
            let found = tx
                .query_opt(
                    &format!(
                        "SELECT {REALM}, coalesce((SELECT sum(c.count) FROM counter_totals c
                                 WHERE c.realm = r.realm AND c.kind = 0 AND c.key = ''), 0)::int8
                           FROM realms r WHERE r.realm = $1"
                    ),
                    &[&name],
                )
                .await?
                .ok_or_else(|| SessionError::RealmNotFound(name.to_owned()))?;
            let r = rows::realm(&found, 0)?;
            Ok(Realm {
                name: r.name,
                settings: r.settings,
                created_at: r.created_at,
                session_count: found.try_get::<_, i64>(4)?.max(0) as u64,
            })
        })
        .await
    }

    pub(crate) async fn list_realms_impl(&self) -> sessions::Result<Vec<Realm>> {
        db_run!(self.db, async |tx| {
            let found = tx
                .query(
                    &format!(
                        "SELECT {REALM}, coalesce((SELECT sum(c.count) FROM counter_totals c
                                 WHERE c.realm = r.realm AND c.kind = 0 AND c.key = ''), 0)::int8
                           FROM realms r ORDER BY r.realm"
                    ),
                    &[],
                )
                .await?;
            found
                .iter()
                .map(|row| {
                    let r = rows::realm(row, 0)?;
                    Ok(Realm {
                        name: r.name,
                        settings: r.settings,
                        created_at: r.created_at,
                        session_count: row.try_get::<_, i64>(4)?.max(0) as u64,
                    })
                })
                .collect()
        })
        .await
    }

    pub(crate) async fn put_client_impl(
        &self,
        realm: &str,
        client_id: &str,
        registration: &ClientRegistration,
        actor: &str,
        now: DateTime<Utc>,
    ) -> sessions::Result<Client> {
        db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            validate::client_registration(client_id, registration)?;
            let inserted: bool = tx
                .query_one(
                    "INSERT INTO clients (realm, client_id, registration) VALUES ($1, $2, $3)
                     ON CONFLICT (realm, client_id) DO UPDATE SET registration = excluded.registration
                     RETURNING xmax = 0",
                    &[&realm.name, &client_id, &json(registration)?],
                )
                .await?
                .try_get(0)?;
            let action = if inserted {
                "create_client"
            } else {
                "update_client"
            };
            audit::insert(tx, &audit_entry(&realm.name, action, client_id, actor, now)).await?;
            let count = counters::count(tx, &realm.name, Kind::Client, client_id).await?;
            Ok(client_view(client_id, registration.clone(), count))
        }).await
    }

    pub(crate) async fn get_client_impl(
        &self,
        realm: &str,
        client_id: &str,
    ) -> sessions::Result<Client> {
        db_run!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let row = tx
                .query_opt(
                    "SELECT registration FROM clients WHERE realm = $1 AND client_id = $2",
                    &[&realm.name, &client_id],
                )
                .await?
                .ok_or_else(|| SessionError::ClientNotFound(client_id.to_owned()))?;
            let count = counters::count(tx, &realm.name, Kind::Client, client_id).await?;
            Ok(client_view(
                client_id,
                registration(row.try_get(0)?)?,
                count,
            ))
        })
        .await
    }

    pub(crate) async fn list_clients_impl(&self, realm: &str) -> sessions::Result<Vec<Client>> {
        db_run!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let found = tx
                .query(
                    "SELECT k.client_id, k.registration,
                            coalesce((SELECT sum(c.count) FROM counter_totals c
                                       WHERE c.realm = k.realm AND c.kind = 2
                                         AND c.key = k.client_id), 0)::int8
                       FROM clients k WHERE k.realm = $1 ORDER BY k.client_id",
                    &[&realm.name],
                )
                .await?;
            found
                .iter()
                .map(|row| {
                    let id: String = row.try_get(0)?;
                    let count = row.try_get::<_, i64>(2)?.max(0) as u64;
                    Ok(client_view(&id, registration(row.try_get(1)?)?, count))
                })
                .collect()
        })
        .await
    }

    pub(crate) async fn delete_client_impl(
        &self,
        realm: &str,
        client_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> sessions::Result<bool> {
        db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let deleted = tx
                .execute(
                    "DELETE FROM clients WHERE realm = $1 AND client_id = $2",
                    &[&realm.name, &client_id],
                )
                .await?;
            if deleted > 0 {
                audit::insert(
                    tx,
                    &audit_entry(&realm.name, "delete_client", client_id, actor, now),
                )
                .await?;
            }
            Ok(deleted > 0)
        })
        .await
    }
}

/// The back-channel logout URI of every client of the realm that has one.
pub(crate) async fn backchannel_uris(
    tx: &Tx<'_>,
    realm: &str,
) -> R<std::collections::HashMap<String, String>> {
    let found = tx
        .query(
            "SELECT client_id, registration->>'backchannel_logout_uri' FROM clients
              WHERE realm = $1 AND registration->>'backchannel_logout_uri' IS NOT NULL",
            &[&realm],
        )
        .await?;
    found
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}
