//! Grants: tokens and consents recorded by the identity provider, introspected, listed and
//! revoked (RFC 7009 one by one, or every grant of a subject).

use chrono::Utc;
use sessions::{Grant, GrantOwner, NewGrant, Result};

use crate::roles::Permission;
use crate::{to_the_end, Actor, SessionService};

impl SessionService {
    /// Records a grant; a grant naming a session must name a live session of the same subject.
    pub async fn create_grant(&self, realm: &str, new: NewGrant) -> Result<Grant> {
        let (store, realm) = (self.store.clone(), realm.to_owned());
        to_the_end(async move { store.create_grant(&realm, &new, Utc::now()).await }).await
    }

    /// The live grant a token belongs to.
    pub async fn introspect(&self, realm: &str, token: &str) -> Result<Option<Grant>> {
        self.store.introspect(realm, token, Utc::now()).await
    }

    /// The live grants of a subject or a session.
    pub async fn list_grants(&self, realm: &str, owner: GrantOwner) -> Result<Vec<Grant>> {
        let (store, realm) = (self.store.clone(), realm.to_owned());
        store.list_grants(&realm, &owner, Utc::now()).await
    }

    /// Revokes the grant a token belongs to (RFC 7009); `None` if there was none. Durable. The
    /// identity provider's data plane (whoever holds the token may revoke it), so no role is
    /// asked for.
    pub async fn revoke_token(
        &self,
        realm: &str,
        token: &str,
        actor: &Actor,
    ) -> Result<Option<Grant>> {
        let (store, realm, token, actor) = (
            self.store.clone(),
            realm.to_owned(),
            token.to_owned(),
            actor.audit_name(),
        );
        to_the_end(async move { store.revoke_token(&realm, &token, &actor, Utc::now()).await })
            .await
    }

    /// Revokes every grant of a subject within the client scope; answers how many. Durable.
    pub async fn revoke_subject_grants(
        &self,
        realm: &str,
        subject_id: &str,
        client_ids: Option<Vec<String>>,
        reason: Option<String>,
        actor: &Actor,
    ) -> Result<u64> {
        actor.require(Permission::Operate)?;
        let (store, realm, subject, actor) = (
            self.store.clone(),
            realm.to_owned(),
            subject_id.to_owned(),
            actor.audit_name(),
        );
        to_the_end(async move {
            store
                .revoke_subject_grants(
                    &realm,
                    &subject,
                    client_ids.as_deref(),
                    reason.as_deref(),
                    &actor,
                    Utc::now(),
                )
                .await
        })
        .await
    }
}
