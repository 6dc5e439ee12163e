//! API keys: listed, created and revoked from the dashboard while the server runs. Every change
//! is audited with the administrator as its actor.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// An API key as the dashboard lists it (never its secret).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub name: String,
    pub scopes: Vec<String>,
    /// The only realms the key reaches; `None` for every realm.
    pub realms: Option<Vec<String>>,
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
pub async fn load_api_keys() -> Result<Vec<ApiKeyRow>, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    let keys = service()?
        .list_api_keys(&admin.actor())
        .await
        .map_err(failed)?;
    Ok(keys
        .into_iter()
        .map(|k| ApiKeyRow {
            name: k.name,
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            realms: k.realms,
            created_at: k.created_at,
        })
        .collect())
}

/// The realms a comma- or space-separated field names; `None` (every realm) when it names none.
pub fn parse_realms(field: Option<&str>) -> Option<Vec<String>> {
    let realms: Vec<String> = field
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    (!realms.is_empty()).then_some(realms)
}

/// Creates a key with the scopes ticked (`issue`, `admin`, `read`, `receiver`: present when
/// ticked), limited to the realms `realms` names (comma-separated; empty or absent for every
/// realm).
#[server(endpoint = "create_api_key")]
pub async fn create_api_key(
    name: String,
    issue: Option<String>,
    admin: Option<String>,
    read: Option<String>,
    receiver: Option<String>,
    realms: Option<String>,
) -> Result<CreatedKey, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    use service::api_keys::Scope;
    let signed_in = require_admin().await?;
    let scopes = [
        (issue, Scope::Issue),
        (admin, Scope::Admin),
        (read, Scope::Read),
        (receiver, Scope::Receiver),
    ]
    .into_iter()
    .filter_map(|(ticked, scope)| ticked.map(|_| scope))
    .collect();
    let (_, secret) = service()?
        .create_api_key(
            &name,
            scopes,
            parse_realms(realms.as_deref()),
            &signed_in.actor(),
        )
        .await
        .map_err(failed)?;
    Ok(CreatedKey { name, secret })
}

/// Revokes a key by name: requests with it are refused from now on.
#[server(endpoint = "revoke_api_key")]
pub async fn revoke_api_key(name: String) -> Result<(), AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    let revoked = service()?
        .revoke_api_key(&name, &admin.actor())
        .await
        .map_err(failed)?;
    if !revoked {
        return Err(failed(AppError::Refused {
            status: 404,
            code: "api_key_not_found".into(),
            message: format!("No API key is named '{name}'."),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_realms;

    #[test]
    fn a_realms_field_names_realms_or_every_realm() {
        assert_eq!(parse_realms(None), None);
        assert_eq!(parse_realms(Some(" , ")), None);
        assert_eq!(
            parse_realms(Some("a, b,c d")),
            Some(vec!["a".into(), "b".into(), "c".into(), "d".into()])
        );
    }
}
