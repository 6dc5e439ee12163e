//! Authentication of API requests: the caller presents an API key (see
//! [`service::api_keys`]) holding a scope of the route's plane. Within administration, what the
//! key may change is the service's decision (see [`service::roles`]): a `sessions:read` key
//! reaches every administrative route and is refused, with 403 `forbidden`, what changes
//! something.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use service::api_keys::{ApiKey, ApiKeys, Scope};
use service::Actor;

use crate::error::ApiError;

/// The caller of a request, authenticated with a key of the data plane (`ADMIN` false:
/// `sessions:issue`) or of administration (`ADMIN` true: `sessions:admin` or `sessions:read`).
pub struct Caller<const ADMIN: bool> {
    /// The key the request presented.
    pub key: Arc<ApiKey>,
}

impl<const ADMIN: bool> Caller<ADMIN> {
    /// Who acts, with the role the key's scopes grant.
    pub fn actor(&self) -> Actor {
        Actor::ApiKey {
            name: self.key.name.clone(),
            role: self.key.role(),
        }
    }
}

/// A caller with the `sessions:issue` scope.
pub type Issuer = Caller<false>;
/// A caller with the `sessions:admin` or `sessions:read` scope.
pub type Admin = Caller<true>;

fn presented_key(parts: &Parts) -> Option<&str> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, key) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
}

impl<S, const ADMIN: bool> FromRequestParts<S> for Caller<ADMIN>
where
    Arc<ApiKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        let keys = Arc::<ApiKeys>::from_ref(state);
        let key = presented_key(parts)
            .and_then(|k| keys.authenticate(k))
            .ok_or_else(ApiError::unauthorized)?;
        let (allowed, needed) = if ADMIN {
            (key.role().is_some(), "sessions:admin' or 'sessions:read")
        } else {
            (key.scopes.contains(&Scope::Issue), Scope::Issue.as_str())
        };
        if !allowed {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("API key '{}' lacks the '{needed}' scope", key.name),
            ));
        }
        Ok(Caller { key })
    }
}
