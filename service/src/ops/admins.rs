//! Administrators: who a dashboard session belongs to, and their accounts (role admin only).

use chrono::Utc;
use sessions::Result;

use crate::admins::{AdminView, ADMIN_REALM};
use crate::roles::{Permission, Role};
use crate::{to_the_end, Actor, SessionService};

impl SessionService {
    /// The administrator a dashboard session token belongs to, with their current role, if the
    /// session is live and the account enabled; with `refresh`, the session's idle expiry is
    /// extended.
    pub async fn dashboard_admin(&self, token: &str, refresh: bool) -> Result<Option<Actor>> {
        let (store, accounts, token) = (
            self.store.clone(),
            self.sign_ins.accounts().clone(),
            token.to_owned(),
        );
        to_the_end(async move {
            let Some(s) = store
                .validate(ADMIN_REALM, &token, refresh, Utc::now())
                .await?
            else {
                return Ok(None);
            };
            Ok(accounts
                .enabled_role(&s.subject_id)
                .await?
                .map(|role| Actor::Admin {
                    username: s.subject_id,
                    sid: s.sid,
                    role,
                }))
        })
        .await
    }

    /// Every administrator.
    pub async fn list_admins(&self, actor: &Actor) -> Result<Vec<AdminView>> {
        actor.require(Permission::Administer)?;
        self.sign_ins.accounts().list().await
    }

    /// Creates an administrator with a role; refused if the name is taken. Audited.
    pub async fn create_admin(
        &self,
        username: &str,
        password: &str,
        role: Role,
        actor: &Actor,
    ) -> Result<()> {
        actor.require(Permission::Administer)?;
        let (accounts, username, password, actor) = (
            self.sign_ins.accounts().clone(),
            username.to_owned(),
            password.to_owned(),
            actor.audit_name(),
        );
        to_the_end(async move {
            accounts
                .create(&username, &password, role, &actor, Utc::now())
                .await
        })
        .await
    }

    /// Sets a new password (creating an admin of that name if there is none); their other
    /// dashboard sessions end (all of them, unless `actor` is that administrator changing their
    /// own). Audited.
    pub async fn set_admin_password(
        &self,
        username: &str,
        password: &str,
        actor: &Actor,
    ) -> Result<()> {
        actor.require(Permission::Administer)?;
        let keep = match actor {
            Actor::Admin {
                username: u, sid, ..
            } if u == username => Some(sid.clone()),
            _ => None,
        };
        let (accounts, username, password, actor) = (
            self.sign_ins.accounts().clone(),
            username.to_owned(),
            password.to_owned(),
            actor.audit_name(),
        );
        to_the_end(async move {
            accounts
                .set_password(&username, &password, keep.as_deref(), &actor, Utc::now())
                .await
        })
        .await
    }

    /// Disables (signing out everywhere) or enables an administrator; never the last enabled
    /// admin. Audited.
    pub async fn set_admin_disabled(
        &self,
        username: &str,
        disabled: bool,
        actor: &Actor,
    ) -> Result<()> {
        actor.require(Permission::Administer)?;
        let (accounts, username, actor) = (
            self.sign_ins.accounts().clone(),
            username.to_owned(),
            actor.audit_name(),
        );
        to_the_end(async move {
            accounts
                .set_disabled(&username, disabled, &actor, Utc::now())
                .await
        })
        .await
    }

    /// Gives an administrator another role (effective from their next request); never demotes
    /// the last enabled admin. Audited.
    pub async fn set_admin_role(&self, username: &str, role: Role, actor: &Actor) -> Result<()> {
        actor.require(Permission::Administer)?;
        let (accounts, username, actor) = (
            self.sign_ins.accounts().clone(),
            username.to_owned(),
            actor.audit_name(),
        );
        to_the_end(async move { accounts.set_role(&username, role, &actor, Utc::now()).await })
            .await
    }
}
