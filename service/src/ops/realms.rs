//! Realms: created explicitly (a typo never creates one); the reserved ones are the server's.

use chrono::Utc;
use sessions::{Realm, RealmSettingsUpdate, Result, SessionError};

use crate::roles::Permission;
use crate::{to_the_end, Actor, SessionService};

impl SessionService {
    /// Creates the realm or updates its settings. Reserved names are refused. Durable.
    pub async fn put_realm(
        &self,
        name: &str,
        update: RealmSettingsUpdate,
        actor: &Actor,
    ) -> Result<Realm> {
        actor.require(Permission::Administer)?;
        refuse_reserved(name)?;
        let (store, name, actor) = (self.store.clone(), name.to_owned(), actor.audit_name());
        to_the_end(async move { store.put_realm(&name, &update, &actor, Utc::now()).await }).await
    }

    /// A realm with its settings and exact session count.
    pub async fn get_realm(&self, name: &str) -> Result<Realm> {
        self.store.get_realm(name).await
    }

    /// The realms administrators work with; with `include_reserved`, the server's own too (the
    /// dashboard lists administrators' sessions).
    pub async fn list_realms(&self, include_reserved: bool) -> Result<Vec<Realm>> {
        if include_reserved {
            self.store.list_realms().await
        } else {
            self.store.list_user_realms().await
        }
    }
}

/// Refuses the server's reserved realm names.
pub(crate) fn refuse_reserved(name: &str) -> Result<()> {
    if sessions::validate::is_reserved_realm(name) {
        return Err(SessionError::invalid(
            "realm names starting with '_' are reserved for the server",
        ));
    }
    Ok(())
}
