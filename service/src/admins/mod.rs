//! Dashboard administrators: accounts with argon2-hashed passwords that can be disabled, and
//! their dashboard sessions, which are ordinary sessions of the reserved realm [`ADMIN_REALM`].
//! [`sign_in`] guards the way in.

pub mod sign_in;

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sessions::store::{parse_sid, AccountStore, AdminRecord, AdminRole};
use sessions::{AuditEntry, EndSessions, RealmSettingsUpdate, Result, SessionError, SessionQuery};

/// The realm holding administrators' dashboard sessions. Names starting with `_` are reserved:
/// the API refuses them, so only the server creates this one.
pub const ADMIN_REALM: &str = "_admin";

/// The dashboard session cookie's name when it is `Secure` (the `__Host-` prefix binds it to one
/// host, over https only).
pub const SECURE_SESSION_COOKIE: &str = "__Host-sessions_admin";

/// The dashboard session cookie's name for plain-http use on a workstation.
pub const PLAIN_SESSION_COOKIE: &str = "sessions_admin";

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

/// An administrator's account as stored.
type Account = AdminRecord;

/// An administrator as listed: no password hash.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AdminView {
    pub username: String,
    pub role: AdminRole,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
}

/// What checking a password found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    /// The account exists, is enabled, and the password is its password.
    Yes,
    /// Unknown user or wrong password (not told apart).
    Wrong,
    /// The password is right but the account is disabled.
    Disabled,
}

fn storage(e: impl std::fmt::Display) -> SessionError {
    SessionError::Storage(e.to_string())
}

/// The PHC-format argon2 hash of a new password, which must have [`MIN_PASSWORD_LEN`]
/// characters; computed on a blocking thread (it is slow on purpose).
async fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(SessionError::invalid(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(storage)?;
    let salt = SaltString::encode_b64(&salt).map_err(storage)?;
    let password = password.to_owned();
    hashing(move || {
        Ok(Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(storage)?
            .to_string())
    })
    .await
}

/// Runs password hashing on a blocking thread.
async fn hashing<T: Send + 'static>(
    hash: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(hash)
        .await
        .map_err(|e| storage(format!("password hashing failed: {e}")))?
}

/// A new administrator's name: not empty, at most 255 bytes, no control characters, and no
/// whitespace at either end, so no account can pass for another in lists and the audit log
/// ("admin " beside "admin").
fn check_username(username: &str) -> Result<()> {
    sessions::validate::identifier("username", username)?;
    if username.trim() != username {
        return Err(SessionError::invalid(
            "username must not start or end with whitespace",
        ));
    }
    Ok(())
}

/// The administrator accounts, in the store ([`AccountStore`]).
pub struct AdminAccounts {
    store: Arc<dyn AccountStore>,
    /// Held while a change that could leave no enabled admin is checked and written, so two at
    /// once in this process cannot both pass the check.
    role_changes: tokio::sync::Mutex<()>,
}

impl AdminAccounts {
    /// Opens the accounts and makes sure the admin realm exists.
    pub async fn open(store: Arc<dyn AccountStore>) -> Result<Self> {
        if store.get_realm(ADMIN_REALM).await.is_err() {
            let settings = RealmSettingsUpdate {
                idle_timeout_secs: Some(30 * 60),
                ..Default::default()
            };
            store
                .put_realm(ADMIN_REALM, &settings, "server", Utc::now())
                .await?;
        }
        Ok(Self {
            store,
            role_changes: tokio::sync::Mutex::new(()),
        })
    }

    async fn load(&self, username: &str) -> Result<Option<Account>> {
        self.store.admin(username).await
    }

    async fn save(&self, account: &Account) -> Result<()> {
        self.store.put_admin(account).await
    }

    async fn audit(
        &self,
        action: &str,
        username: &str,
        actor: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.store
            .record_audit(&admin_audit_entry(action, username, actor, outcome, now))
            .await
    }

    /// Creates a new administrator with `role`; refused if the name is taken. Audited; durable
    /// when it returns.
    pub async fn create(
        &self,
        username: &str,
        password: &str,
        role: AdminRole,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        check_username(username)?;
        let password_hash = hash_password(password).await?;
        let _serial = self.serial().await;
        if self.load(username).await?.is_some() {
            return Err(SessionError::Conflict(format!(
                "an administrator named '{username}' already exists"
            )));
        }
        self.save(&Account {
            username: username.to_owned(),
            password_hash,
            created_at: now,
            disabled: false,
            role,
        })
        .await?;
        self.audit(
            "create_admin",
            username,
            actor,
            &format!("ok; role {role}"),
            now,
        )
        .await
    }

    /// Creates the account (role admin), or sets a new password for it. Every dashboard session of the
    /// administrator ends, except `keep` (the session of an administrator changing their own
    /// password). Audited; durable when it returns.
    pub async fn set_password(
        &self,
        username: &str,
        password: &str,
        keep: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        check_username(username)?;
        let hash = hash_password(password).await?;
        let _serial = self.serial().await;
        let existing = self.load(username).await?;
        let account = Account {
            username: username.to_owned(),
            password_hash: hash,
            created_at: existing.as_ref().map_or(now, |a| a.created_at),
            disabled: existing.as_ref().is_some_and(|a| a.disabled),
            role: existing.as_ref().map_or(AdminRole::Admin, |a| a.role),
        };
        self.save(&account).await?;
        let ended = self.end_sessions(username, keep, actor, now).await?;
        let action = if existing.is_some() {
            "set_admin_password"
        } else {
            "create_admin"
        };
        self.audit(
            action,
            username,
            actor,
            &format!("ok; dashboard sessions ended: {ended}"),
            now,
        )
        .await
    }

    /// Disables (ending every dashboard session of the account) or enables an administrator.
    /// Refused if it would disable the last enabled admin. Audited; durable when it returns.
    pub async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let _serial = self.serial().await;
        let mut account = self.existing(username).await?;
        account.disabled = disabled;
        self.refuse_leaving_no_admin(&account).await?;
        self.save(&account).await?;
        let ended = if disabled {
            self.end_sessions(username, None, actor, now).await?
        } else {
            0
        };
        let action = if disabled {
            "disable_admin"
        } else {
            "enable_admin"
        };
        self.audit(
            action,
            username,
            actor,
            &format!("ok; dashboard sessions ended: {ended}"),
            now,
        )
        .await
    }

    /// Gives an administrator another role. Refused if it would demote the last enabled admin.
    /// Audited; durable when it returns.
    pub async fn set_role(
        &self,
        username: &str,
        role: AdminRole,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let _serial = self.serial().await;
        let mut account = self.existing(username).await?;
        let before = account.role;
        account.role = role;
        self.refuse_leaving_no_admin(&account).await?;
        self.save(&account).await?;
        self.audit(
            "set_admin_role",
            username,
            actor,
            &format!("ok; {before} -> {role}"),
            now,
        )
        .await
    }

    /// Every administrator, by name.
    pub async fn list(&self) -> Result<Vec<AdminView>> {
        Ok(self
            .store
            .admins()
            .await?
            .into_iter()
            .map(|a| AdminView {
                username: a.username,
                role: a.role,
                created_at: a.created_at,
                disabled: a.disabled,
            })
            .collect())
    }

    /// The role of the account if it exists and is not disabled.
    pub async fn enabled_role(&self, username: &str) -> Result<Option<AdminRole>> {
        Ok(self
            .load(username)
            .await?
            .filter(|a| !a.disabled)
            .map(|a| a.role))
    }

    /// Serializes the changes that [`Self::refuse_leaving_no_admin`] checks.
    async fn serial(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.role_changes.lock().await
    }

    /// The stored account, or an error naming the unknown administrator.
    async fn existing(&self, username: &str) -> Result<Account> {
        self.load(username)
            .await?
            .ok_or_else(|| SessionError::invalid(format!("no administrator named '{username}'")))
    }

    /// Refuses to store `changed` if that would take away the last enabled admin (where there
    /// was one): someone must be left who can manage administrators.
    async fn refuse_leaving_no_admin(&self, changed: &Account) -> Result<()> {
        let is_enabled_admin = |a: &Account| !a.disabled && a.role == AdminRole::Admin;
        if is_enabled_admin(changed) {
            return Ok(());
        }
        let others = self
            .store
            .admins()
            .await?
            .into_iter()
            .filter(|a| a.username != changed.username)
            .any(|a| is_enabled_admin(&a));
        let was = self
            .load(&changed.username)
            .await?
            .is_some_and(|a| is_enabled_admin(&a));
        if was && !others {
            return Err(SessionError::Conflict(format!(
                "'{}' is the last enabled administrator with role admin; make another \
                 administrator admin first",
                changed.username
            )));
        }
        Ok(())
    }

    /// Checks a password. Unknown users cost the same hash as known ones, so timing does not
    /// reveal them.
    pub async fn verify(&self, username: &str, password: &str) -> Result<Verified> {
        let account = self.load(username).await?;
        let password = password.to_owned();
        let stored = account.as_ref().map(|a| a.password_hash.clone());
        let right = hashing(move || {
            let Some(stored) = stored else {
                let salt = SaltString::encode_b64(&[0; 16]).map_err(storage)?;
                let _ = Argon2::default().hash_password(password.as_bytes(), &salt);
                return Ok(false);
            };
            let hash = PasswordHash::new(&stored).map_err(storage)?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok())
        })
        .await?;
        let Some(account) = account else {
            return Ok(Verified::Wrong);
        };
        Ok(match (right, account.disabled) {
            (false, _) => Verified::Wrong,
            (true, true) => Verified::Disabled,
            (true, false) => Verified::Yes,
        })
    }

    /// Ends the administrator's dashboard sessions but `keep`; answers how many ended.
    async fn end_sessions(
        &self,
        username: &str,
        keep: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let keep = keep.and_then(parse_sid);
        let mut ended = 0;
        loop {
            let query = SessionQuery {
                filters: sessions::SessionFilters {
                    subject_id: Some(username.to_owned()),
                    ..Default::default()
                },
                count: Some(sessions::MAX_PAGE_SIZE),
                ..Default::default()
            };
            let sids: Vec<String> = self
                .store
                .query(ADMIN_REALM, &query)
                .await?
                .results
                .into_iter()
                .map(|s| s.sid)
                .filter(|sid| keep.is_none() || parse_sid(sid) != keep)
                .collect();
            if sids.is_empty() {
                return Ok(ended);
            }
            let request = EndSessions {
                sids,
                reason: Some("administrator's password changed or account disabled".into()),
                ..Default::default()
            };
            let outcome = self
                .store
                .end_sessions(ADMIN_REALM, &request, actor, now)
                .await?;
            if outcome.records_deleted == 0 {
                return Ok(ended);
            }
            ended += outcome.records_deleted;
        }
    }
}

/// An audit entry for an action on the administrator `username`, in the administrators' realm.
pub(crate) fn admin_audit_entry(
    action: &str,
    username: &str,
    actor: &str,
    outcome: &str,
    now: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry {
        outcome: outcome.to_owned(),
        ..sessions::store::shared::audit_entry(ADMIN_REALM, action, username, actor, now)
    }
}
