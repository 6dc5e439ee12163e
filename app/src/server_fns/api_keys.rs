//! API keys: listed, created and revoked from the dashboard while the server runs. Every change
//! is audited with the administrator as its actor.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// An API key as the dashboard lists it (never its secret).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A key just created, with its secret, shown this once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedKey {
    pub name: String,
    pub secret: String,
}

/// Every API key, by name.
#[server]
pub async fn load_api_keys() -> Result<Vec<ApiKeyRow>, ServerFnError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{shown, state};
    require_admin().await?;
    let keys = state()?.keys.list().map_err(shown)?;
    Ok(keys
        .into_iter()
        .map(|k| ApiKeyRow {
            name: k.name,
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            created_at: k.created_at,
        })
        .collect())
}

/// Creates a key with the scopes ticked (`issue`, `admin`: present when ticked).
#[server(endpoint = "create_api_key")]
pub async fn create_api_key(
    name: String,
    issue: Option<String>,
    admin: Option<String>,
) -> Result<CreatedKey, ServerFnError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{blocking, state};
    let signed_in = require_admin().await?;
    let mut scopes = Vec::new();
    if issue.is_some() {
        scopes.push(api::Scope::Issue);
    }
    if admin.is_some() {
        scopes.push(api::Scope::Admin);
    }
    let keys = state()?.keys.clone();
    let actor = format!("admin:{}", signed_in.username);
    let key_name = name.clone();
    let (_, secret) =
        blocking(move || keys.create(&key_name, &scopes, &actor, chrono::Utc::now())).await?;
    Ok(CreatedKey { name, secret })
}

/// Revokes a key by name: requests with it are refused from now on.
#[server(endpoint = "revoke_api_key")]
pub async fn revoke_api_key(name: String) -> Result<(), ServerFnError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{blocking, fail, state};
    let signed_in = require_admin().await?;
    let keys = state()?.keys.clone();
    let actor = format!("admin:{}", signed_in.username);
    let key_name = name.clone();
    if !blocking(move || keys.revoke(&key_name, &actor, chrono::Utc::now())).await? {
        return Err(fail(404, format!("No API key is named '{name}'.")));
    }
    Ok(())
}
