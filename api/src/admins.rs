//! Dashboard administrators: accounts with argon2-hashed passwords, and their dashboard sessions,
//! which are ordinary sessions of the reserved realm [`ADMIN_REALM`].

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sessions::store::{SessionStore, SledStore};
use sessions::{RealmSettingsUpdate, Result, SessionError};

/// The realm holding administrators' dashboard sessions. Names starting with `_` are reserved:
/// the API refuses them, so only the server creates this one.
pub const ADMIN_REALM: &str = "_admin";

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

#[derive(Serialize, Deserialize)]
struct Account {
    username: String,
    password_hash: String,
    created_at: DateTime<Utc>,
}

/// The administrator accounts, in a tree of the session store's database.
pub struct AdminAccounts {
    tree: sled::Tree,
    store: Arc<SledStore>,
}

fn storage(e: impl std::fmt::Display) -> SessionError {
    SessionError::Storage(e.to_string())
}

impl AdminAccounts {
    /// Opens the accounts and makes sure the admin realm exists.
    pub fn open(store: Arc<SledStore>) -> Result<Self> {
        if store.get_realm(ADMIN_REALM).is_err() {
            let settings = RealmSettingsUpdate {
                idle_timeout_secs: Some(30 * 60),
                ..Default::default()
            };
            store.put_realm(ADMIN_REALM, &settings, "server", Utc::now())?;
        }
        Ok(Self {
            tree: store.companion_tree("admins")?,
            store,
        })
    }

    /// Creates the account, or sets a new password for it.
    pub fn set_password(&self, username: &str, password: &str, now: DateTime<Utc>) -> Result<()> {
        sessions::validate::identifier("username", username)?;
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(SessionError::invalid(format!(
                "the password must have at least {MIN_PASSWORD_LEN} characters"
            )));
        }
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).map_err(storage)?;
        let salt = SaltString::encode_b64(&salt).map_err(storage)?;
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(storage)?
            .to_string();
        let account = Account {
            username: username.to_owned(),
            password_hash: hash,
            created_at: now,
        };
        self.tree
            .insert(
                username.as_bytes(),
                serde_json::to_vec(&account).map_err(storage)?,
            )
            .map_err(storage)?;
        self.store.wait_durable()
    }

    /// True when the username exists and the password is its password.
    pub fn verify(&self, username: &str, password: &str) -> Result<bool> {
        let Some(v) = self.tree.get(username.as_bytes()).map_err(storage)? else {
            // Spend the same effort on unknown users, so timing does not reveal them.
            let _ = Argon2::default().hash_password(
                password.as_bytes(),
                &SaltString::encode_b64(&[0; 16]).map_err(storage)?,
            );
            return Ok(false);
        };
        let account: Account = serde_json::from_slice(&v).map_err(storage)?;
        let hash = PasswordHash::new(&account.password_hash).map_err(storage)?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok())
    }
}
