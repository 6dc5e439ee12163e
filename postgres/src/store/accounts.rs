//! The server's accounts ([`AccountStore`]): the `api_keys`, `admins`, `signing_keys` and
//! `signal_streams` tables.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sessions::store::{AccountStore, AdminRecord, AdminRole, ApiKeyRecord, SigningKeyRecord};
use sessions::{Result, SessionError, StreamRecord};
use tokio_postgres::Row;

use super::db::{db_run, db_write, Tx, R};
use super::PostgresStore;

fn api_key(row: &Row) -> R<ApiKeyRecord> {
    let hash: Vec<u8> = row.try_get(3)?;
    Ok(ApiKeyRecord {
        name: row.try_get(0)?,
        scopes: row.try_get(1)?,
        created_at: row.try_get(2)?,
        hash: hash
            .try_into()
            .map_err(|_| SessionError::Storage("an API key hash is not 32 bytes".into()))?,
        realms: row.try_get(4)?,
    })
}

/// The columns [`admin`] reads, in its order.
const ADMIN_COLUMNS: &str = "username, password_hash, created_at, disabled, role";

fn admin(row: &Row) -> R<AdminRecord> {
    let role: String = row.try_get(4)?;
    Ok(AdminRecord {
        username: row.try_get(0)?,
        password_hash: row.try_get(1)?,
        created_at: row.try_get(2)?,
        disabled: row.try_get(3)?,
        role: AdminRole::parse(&role).ok_or_else(|| {
            SessionError::Storage(format!("an administrator has the unknown role '{role}'"))
        })?,
    })
}

/// Every Shared Signals stream, by id (the session endings read them in their transaction).
pub(crate) async fn streams(tx: &Tx<'_>) -> R<Vec<StreamRecord>> {
    tx.query("SELECT record FROM signal_streams ORDER BY id", &[])
        .await?
        .iter()
        .map(|row| {
            let record: serde_json::Value = row.try_get(0)?;
            serde_json::from_value(record).map_err(|e| {
                SessionError::Storage(format!("a signal stream record is unreadable: {e}")).into()
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl AccountStore for PostgresStore {
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        db_run!(self.db, async |tx| {
            tx.query(
                "SELECT name, scopes, created_at, hash, realms FROM api_keys ORDER BY name",
                &[],
            )
            .await?
            .iter()
            .map(api_key)
            .collect()
        })
        .await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<bool> {
        db_run!(self.db, async |tx| {
            let inserted = tx
                .execute(
                    "INSERT INTO api_keys (name, scopes, created_at, hash, realms)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (name) DO NOTHING",
                    &[
                        &key.name,
                        &key.scopes,
                        &key.created_at,
                        &&key.hash[..],
                        &key.realms,
                    ],
                )
                .await?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        db_run!(self.db, async |tx| {
            tx.execute(
                "INSERT INTO api_keys (name, scopes, created_at, hash, realms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE
                 SET scopes = excluded.scopes, created_at = excluded.created_at,
                     hash = excluded.hash, realms = excluded.realms",
                &[
                    &key.name,
                    &key.scopes,
                    &key.created_at,
                    &&key.hash[..],
                    &key.realms,
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn delete_api_key(&self, name: &str) -> Result<bool> {
        db_run!(self.db, async |tx| {
            Ok(tx
                .execute("DELETE FROM api_keys WHERE name = $1", &[&name])
                .await?
                == 1)
        })
        .await
    }

    async fn admin(&self, username: &str) -> Result<Option<AdminRecord>> {
        db_run!(self.db, async |tx| {
            tx.query_opt(
                &format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE username = $1"),
                &[&username],
            )
            .await?
            .as_ref()
            .map(admin)
            .transpose()
        })
        .await
    }

    async fn admins(&self) -> Result<Vec<AdminRecord>> {
        db_run!(self.db, async |tx| {
            tx.query(
                &format!("SELECT {ADMIN_COLUMNS} FROM admins ORDER BY username"),
                &[],
            )
            .await?
            .iter()
            .map(admin)
            .collect()
        })
        .await
    }

    async fn put_admin(&self, a: &AdminRecord) -> Result<()> {
        db_run!(self.db, async |tx| {
            tx.execute(
                "INSERT INTO admins (username, password_hash, created_at, disabled, role)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (username) DO UPDATE
                 SET password_hash = excluded.password_hash, created_at = excluded.created_at,
                     disabled = excluded.disabled, role = excluded.role",
                &[
                    &a.username,
                    &a.password_hash,
                    &a.created_at,
                    &a.disabled,
                    &a.role.as_str(),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        db_run!(self.db, async |tx| {
            tx.query(
                "SELECT kid, private_key, created_at, retired_at FROM signing_keys ORDER BY kid",
                &[],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(SigningKeyRecord {
                    kid: row.try_get(0)?,
                    pkcs8: URL_SAFE_NO_PAD.encode(row.try_get::<_, Vec<u8>>(1)?),
                    created_at: row.try_get(2)?,
                    retired_at: row.try_get(3)?,
                })
            })
            .collect()
        })
        .await
    }

    async fn update_signing_keys(&self, put: &[SigningKeyRecord], delete: &[String]) -> Result<()> {
        let der = put
            .iter()
            .map(|k| {
                URL_SAFE_NO_PAD.decode(&k.pkcs8).map_err(|e| {
                    SessionError::invalid(format!("signing key {} is not base64url: {e}", k.kid))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        db_write!(self.db, async |tx| {
            tx.execute("DELETE FROM signing_keys WHERE kid = ANY($1)", &[&delete])
                .await?;
            for (k, der) in put.iter().zip(&der) {
                tx.execute(
                    "INSERT INTO signing_keys (kid, private_key, created_at, retired_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (kid) DO UPDATE
                     SET private_key = excluded.private_key, created_at = excluded.created_at,
                         retired_at = excluded.retired_at",
                    &[&k.kid, der, &k.created_at, &k.retired_at],
                )
                .await?;
            }
            Ok(())
        })
        .await
    }

    async fn signal_streams(&self) -> Result<Vec<StreamRecord>> {
        db_run!(self.db, async |tx| streams(tx).await).await
    }

    async fn put_signal_stream(&self, stream: &StreamRecord) -> Result<()> {
        let record = serde_json::to_value(stream)
            .map_err(|e| SessionError::Storage(format!("a stream does not serialize: {e}")))?;
        db_write!(self.db, async |tx| {
            let updated = tx
                .execute(
                    "UPDATE signal_streams SET record = $2 WHERE id = $1",
                    &[&stream.id, &record],
                )
                .await?;
            let inserted = updated > 0
                || tx
                    .execute(
                        "INSERT INTO signal_streams (id, record) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                        &[&stream.id, &record],
                    )
                    .await?
                    > 0;
            if !inserted {
                return Err(SessionError::Conflict(format!(
                    "API key '{}' has a stream already",
                    stream.key_name
                ))
                .into());
            }
            Ok(())
        })
        .await
    }

    async fn delete_signal_stream(&self, id: &str) -> Result<bool> {
        db_write!(self.db, async |tx| {
            let n = tx
                .execute("DELETE FROM signal_streams WHERE id = $1", &[&id])
                .await?;
            Ok(n > 0)
        })
        .await
    }
}
