//! Dashboard administrators (role admin only): listed, added, disabled and enabled, given a new
//! password or another role. The service checks the role and keeps the last enabled admin;
//! every change is audited with the signed-in administrator as its actor.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::AdminRole;

use crate::error::AppError;

/// An administrator as the dashboard lists them (never their password hash).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminRow {
    pub username: String,
    pub role: AdminRole,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
}

/// Every administrator, by name, and who is signed in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminsView {
    pub admins: Vec<AdminRow>,
    /// The signed-in administrator's name.
    pub me: String,
}

/// Every administrator, by name.
#[server]
pub async fn load_admins() -> Result<AdminsView, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    let admins = service()?
        .list_admins(&admin.actor())
        .await
        .map_err(failed)?
        .into_iter()
        .map(|a| AdminRow {
            username: a.username,
            role: a.role,
            created_at: a.created_at,
            disabled: a.disabled,
        })
        .collect();
    Ok(AdminsView {
        admins,
        me: admin.username,
    })
}

/// Adds an administrator with a password and a role.
#[server(endpoint = "create_admin")]
pub async fn create_admin(
    username: String,
    password: String,
    role: AdminRole,
) -> Result<String, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    service()?
        .create_admin(&username, &password, role, &admin.actor())
        .await
        .map_err(failed)?;
    Ok(format!("Added {role} '{username}'."))
}

/// Disables an administrator (ending their dashboard sessions) or enables them again.
#[server(endpoint = "set_admin_disabled")]
pub async fn set_admin_disabled(username: String, disabled: bool) -> Result<String, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    service()?
        .set_admin_disabled(&username, disabled, &admin.actor())
        .await
        .map_err(failed)?;
    Ok(if disabled {
        format!("Disabled '{username}' and ended their dashboard sessions.")
    } else {
        format!("Enabled '{username}'.")
    })
}

/// Sets a new password for an administrator, ending their other dashboard sessions.
#[server(endpoint = "reset_admin_password")]
pub async fn reset_admin_password(username: String, password: String) -> Result<String, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    service()?
        .set_admin_password(&username, &password, &admin.actor())
        .await
        .map_err(failed)?;
    Ok(format!(
        "Set a new password for '{username}' and ended their other dashboard sessions."
    ))
}

/// Gives an administrator another role.
#[server(endpoint = "set_admin_role")]
pub async fn set_admin_role(username: String, role: AdminRole) -> Result<String, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    service()?
        .set_admin_role(&username, role, &admin.actor())
        .await
        .map_err(failed)?;
    Ok(format!("'{username}' now has role {role}."))
}
