//! Grants: refresh tokens, reference access tokens, authorization codes and consents, found by
//! the SHA-256 of their token within their realm.

use chrono::{DateTime, Utc};
use sessions::grant::{Grant, GrantOwner, NewGrant};
use sessions::store::shared::{
    revoked_token_entry, RevokeSubjectGrants, GRANT_DELETE_BATCH, MAX_LISTED_GRANTS,
};
use sessions::{validate, SessionError};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::db::{db_run, db_write, is_unique_violation, R};
use super::rows::{self, kind_number, GRANT, REALM};
use super::{audit, PostgresStore};

fn token_hash(token: &str) -> Option<Vec<u8>> {
    (!token.is_empty() && token.len() <= validate::MAX_GRANT_TOKEN_LEN)
        .then(|| Sha256::digest(token.as_bytes()).to_vec())
}

impl PostgresStore {
    pub(crate) async fn create_grant_impl(
        &self,
        realm: &str,
        new: &NewGrant,
        now: DateTime<Utc>,
    ) -> sessions::Result<Grant> {
        let now = rows::ms(now);
        db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            validate::new_grant(new, now)?;
            let latest =
                now + chrono::TimeDelta::seconds(realm.settings.max_grant_lifetime_secs as i64);
            let expires_at = rows::ms(new.expires_at.min(latest));
            let sid = match &new.sid {
                Some(s) => Some(
                    sessions::store::parse_sid(s)
                        .map(Uuid::from_bytes)
                        .ok_or_else(|| SessionError::SessionNotFound(s.clone()))?,
                ),
                None => None,
            };
            if let Some(sid) = &sid {
                // Locked until commit: the session cannot end before the grant is stored, and
                // ending it afterwards finds the grant.
                let owner = tx
                    .query_opt(
                        "SELECT subject_id FROM sessions WHERE realm = $1 AND sid = $2 FOR SHARE",
                        &[&realm.name, sid],
                    )
                    .await?
                    .ok_or_else(|| SessionError::SessionNotFound(sid.hyphenated().to_string()))?;
                if owner.try_get::<_, String>(0)? != new.subject_id {
                    return Err(SessionError::invalid(
                        "the session named by sid belongs to another subject",
                    )
                    .into());
                }
            }
            let id = Uuid::new_v4();
            let hash = new.token.as_deref().and_then(token_hash);
            let inserted = tx
                .execute(
                    "INSERT INTO grants (realm, id, kind, subject_id, sid, client_id, scopes,
                                         created_at, expires_at, token_hash)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[
                        &realm.name,
                        &id,
                        &kind_number(new.kind),
                        &new.subject_id,
                        &sid,
                        &new.client_id,
                        &new.scopes,
                        &now,
                        &expires_at,
                        &hash,
                    ],
                )
                .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => {
                    return Err(
                        SessionError::Conflict("this token is already recorded".into()).into(),
                    )
                }
                other => other?,
            };
            Ok(Grant {
                grant_id: id.hyphenated().to_string(),
                realm: realm.name.clone(),
                kind: new.kind,
                subject_id: new.subject_id.clone(),
                sid: sid.map(|s| s.hyphenated().to_string()),
                client_id: new.client_id.clone(),
                scopes: new.scopes.clone(),
                created_at: now,
                expires_at,
            })
        })
        .await
    }

    pub(crate) async fn introspect_impl(
        &self,
        realm: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> sessions::Result<Option<Grant>> {
        let hash = token_hash(token);
        db_run!(self.db, async |tx| {
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT {GRANT}, {REALM} FROM realms r
                           LEFT JOIN grants g ON g.realm = r.realm AND g.token_hash = $2
                          WHERE r.realm = $1"
                    ),
                    &[&realm, &hash],
                )
                .await?
                .ok_or_else(|| SessionError::RealmNotFound(realm.to_owned()))?;
            if row.try_get::<_, Option<Uuid>>(0)?.is_none() {
                return Ok(None);
            }
            let grant = rows::grant(&row, realm)?;
            Ok((grant.expires_at > now).then_some(grant))
        })
        .await
    }

    pub(crate) async fn revoke_token_impl(
        &self,
        realm: &str,
        token: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> sessions::Result<Option<Grant>> {
        let hash = token_hash(token);
        db_write!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let Some(hash) = &hash else { return Ok(None) };
            // Expired ones are the reaper's.
            let row = tx
                .query_opt(
                    &format!(
                        "DELETE FROM grants g WHERE g.realm = $1 AND g.token_hash = $2
                            AND g.expires_at > $3 RETURNING {GRANT}"
                    ),
                    &[&realm.name, hash, &now],
                )
                .await?;
            let Some(row) = row else { return Ok(None) };
            let grant = rows::grant(&row, &realm.name)?;
            audit::insert(tx, &revoked_token_entry(&realm.name, &grant, actor, now)).await?;
            Ok(Some(grant))
        })
        .await
    }

    pub(crate) async fn revoke_subject_grants_impl(
        &self,
        realm: &str,
        subject_id: &str,
        client_ids: Option<&[String]>,
        reason: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> sessions::Result<u64> {
        let realm = db_run!(self.db, async |tx| self.realms.get(tx, realm).await).await?;
        let request = RevokeSubjectGrants::check(subject_id, client_ids, reason)?;
        let clients: Option<Vec<String>> =
            request.scope.as_ref().map(|s| s.iter().cloned().collect());
        let mut revoked = 0;
        // In batches, each its own transaction, so a subject with very many grants does not
        // hold one long transaction.
        let done = loop {
            let deleted = db_run!(self.db, async |tx| {
                tx.execute(
                    "WITH picked AS MATERIALIZED (
                        SELECT id FROM grants WHERE realm = $1 AND subject_id = $2
                           AND ($3::text[] IS NULL OR client_id = ANY($3))
                         LIMIT $4 FOR UPDATE SKIP LOCKED)
                     DELETE FROM grants g USING picked p WHERE g.realm = $1 AND g.id = p.id",
                    &[
                        &realm.name,
                        &subject_id,
                        &clients,
                        &(GRANT_DELETE_BATCH as i64),
                    ],
                )
                .await
            })
            .await;
            match deleted {
                Ok(0) => break Ok(()),
                Ok(n) => revoked += n,
                Err(e) => break Err(e),
            }
        };
        let entry = request.audit_entry(&realm.name, revoked, &done, actor, now);
        db_run!(self.db, async |tx| audit::insert(tx, &entry).await).await?;
        done.map(|()| revoked)
    }

    pub(crate) async fn list_grants_impl(
        &self,
        realm: &str,
        owner: &GrantOwner,
        now: DateTime<Utc>,
    ) -> sessions::Result<Vec<Grant>> {
        db_run!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            let limit = MAX_LISTED_GRANTS as i64;
            let found = match owner {
                GrantOwner::Subject(subject) => {
                    validate::identifier("subject_id", subject)?;
                    tx.query(
                        &format!(
                            "SELECT {GRANT} FROM grants g WHERE g.realm = $1 AND g.subject_id = $2
                                AND g.expires_at > $3 ORDER BY g.id LIMIT $4"
                        ),
                        &[&realm.name, subject, &now, &limit],
                    )
                    .await?
                }
                GrantOwner::Session(sid) => {
                    let parsed = sessions::store::parse_sid(sid)
                        .map(Uuid::from_bytes)
                        .ok_or_else(|| SessionError::SessionNotFound(sid.clone()))?;
                    tx.query(
                        &format!(
                            "SELECT {GRANT} FROM grants g WHERE g.realm = $1 AND g.sid = $2
                                AND g.expires_at > $3 ORDER BY g.id LIMIT $4"
                        ),
                        &[&realm.name, &parsed, &now, &limit],
                    )
                    .await?
                }
            };
            found
                .iter()
                .map(|r| rows::grant(r, &realm.name))
                .collect::<R<_>>()
        })
        .await
    }
}
