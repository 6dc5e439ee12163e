//! Keys: the API keys callers present, and the keys that sign logout tokens.

use chrono::Utc;
use jsonwebtoken::jwk::JwkSet;
use sessions::Result;

use crate::api_keys::{ApiKey, Scope};
use crate::roles::Permission;
use crate::{to_the_end, Actor, SessionService};

/// The signing keys after a rotation.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotatedKeys {
    /// The key that signs from now on.
    pub current_kid: String,
    /// Every key published in the JWKS, the retired one included until the tokens it signed
    /// have expired.
    pub published_kids: Vec<String>,
}

impl SessionService {
    /// Every API key, by name.
    pub async fn list_api_keys(&self, actor: &Actor) -> Result<Vec<ApiKey>> {
        actor.require(Permission::Administer)?;
        self.keys.list().await
    }

    /// Creates an API key limited to `realms` (`None`: every realm); its secret is answered
    /// this once. Audited.
    pub async fn create_api_key(
        &self,
        name: &str,
        scopes: Vec<Scope>,
        realms: Option<Vec<String>>,
        actor: &Actor,
    ) -> Result<(ApiKey, String)> {
        actor.require(Permission::Administer)?;
        let (keys, name, actor) = (self.keys.clone(), name.to_owned(), actor.audit_name());
        to_the_end(async move {
            keys.create_in_realms(&name, &scopes, realms, &actor, Utc::now())
                .await
        })
        .await
    }

    /// Revokes an API key at once; false if there was none. Audited.
    pub async fn revoke_api_key(&self, name: &str, actor: &Actor) -> Result<bool> {
        actor.require(Permission::Administer)?;
        let (keys, name, actor) = (self.keys.clone(), name.to_owned(), actor.audit_name());
        let revoked =
            to_the_end(async move { keys.revoke(&name, &actor, Utc::now()).await }).await?;
        // Its stream went with it: the delivery worker gives up what the stream had queued.
        self.backchannel.streams.reload().await?;
        self.wake_deliveries();
        Ok(revoked)
    }

    /// The public keys that verify logout tokens.
    pub fn jwks(&self) -> JwkSet {
        self.backchannel.keys.jwks(Utc::now())
    }

    /// Makes a new logout-token signing key current.
    pub async fn rotate_signing_key(&self, actor: &Actor) -> Result<RotatedKeys> {
        actor.require(Permission::Administer)?;
        let keys = self.backchannel.keys.clone();
        let current_kid = to_the_end(async move { keys.rotate(Utc::now()).await }).await?;
        let published_kids = self
            .jwks()
            .keys
            .into_iter()
            .filter_map(|k| k.common.key_id)
            .collect();
        Ok(RotatedKeys {
            current_kid,
            published_kids,
        })
    }
}
