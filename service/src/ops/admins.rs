//! Administrators: who a dashboard session belongs to, and their accounts.

use chrono::Utc;
use sessions::Result;

use crate::admins::{AdminView, ADMIN_REALM};
use crate::{blocking, Actor, SessionService};

impl SessionService {
    /// The administrator a dashboard session token belongs to, if the session is live and the
    /// account enabled; with `refresh`, the session's idle expiry is extended.
    pub async fn dashboard_admin(&self, token: &str, refresh: bool) -> Result<Option<Actor>> {
        let (store, accounts, token) = (
            self.store.clone(),
            self.sign_ins.accounts().clone(),
            token.to_owned(),
        );
        blocking(move || {
            let Some(s) = store.validate(ADMIN_REALM, &token, refresh, Utc::now())? else {
                return Ok(None);
            };
            Ok(accounts.is_enabled(&s.subject_id)?.then_some(Actor::Admin {
                username: s.subject_id,
                sid: s.sid,
            }))
        })
        .await
    }

    /// Every administrator.
    pub fn list_admins(&self) -> Result<Vec<AdminView>> {
        self.read(|_| self.sign_ins.accounts().list())
    }

    /// Creates an administrator or sets a new password; their other dashboard sessions end
    /// (all of them, unless `actor` is that administrator changing their own). Audited.
    pub async fn set_admin_password(
        &self,
        username: &str,
        password: &str,
        actor: &Actor,
    ) -> Result<()> {
        let keep = match actor {
            Actor::Admin { username: u, sid } if u == username => Some(sid.clone()),
            _ => None,
        };
        let (accounts, username, password, actor) = (
            self.sign_ins.accounts().clone(),
            username.to_owned(),
            password.to_owned(),
            actor.audit_name(),
        );
        blocking(move || {
            accounts.set_password(&username, &password, keep.as_deref(), &actor, Utc::now())
        })
        .await
    }

    /// Disables (signing out everywhere) or enables an administrator. Audited.
    pub async fn set_admin_disabled(
        &self,
        username: &str,
        disabled: bool,
        actor: &Actor,
    ) -> Result<()> {
        let (accounts, username, actor) = (
            self.sign_ins.accounts().clone(),
            username.to_owned(),
            actor.audit_name(),
        );
        blocking(move || accounts.set_disabled(&username, disabled, &actor, Utc::now())).await
    }
}
