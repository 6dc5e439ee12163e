//! Authentication of API requests: the caller presents an API key (see
//! [`service::api_keys`]) holding a scope of the route's plane. Within administration, what the
//! key may change is the service's decision (see [`service::roles`]): a `sessions:read` key
//! reaches every administrative route and is refused, with 403 `forbidden`, what changes
//! something.
//!
//! A key may be limited to some realms ([`ApiKey::realms`]). The extractor enforces that for
//! every route, so no handler can forget it: on a route whose path names a `{realm}`, a key that
//! does not reach that realm is refused with 403 `forbidden`; on a route that names no realm
//! (API keys, the audit log, signing keys) a limited key is refused too, unless the handler
//! takes [`AdminOfItsRealms`] and answers only about the key's realms (the realm listing).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::StatusCode;
use service::api_keys::{ApiKey, ApiKeys, Scope};
use service::Actor;
use sessions::SessionError;

use crate::error::ApiError;

/// The caller of a request, authenticated with a key of the data plane (`ADMIN` false:
/// `sessions:issue`) or of administration (`ADMIN` true: `sessions:admin` or `sessions:read`).
/// `REALMS_FILTERED` true lets a key limited to some realms call a route that names no realm,
/// whose handler then answers only about the key's realms ([`ApiKey::reaches`]).
pub struct Caller<const ADMIN: bool, const REALMS_FILTERED: bool = false> {
    /// The key the request presented.
    pub key: Arc<ApiKey>,
}

impl<const ADMIN: bool, const REALMS_FILTERED: bool> Caller<ADMIN, REALMS_FILTERED> {
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
/// A caller with the `sessions:admin` or `sessions:read` scope on a route that names no realm
/// and answers a limited key only about its realms.
pub type AdminOfItsRealms = Caller<true, true>;

/// The stored key the request presents; 401 without one of ours.
fn authenticated<S>(parts: &Parts, state: &S) -> Result<Arc<ApiKey>, ApiError>
where
    Arc<ApiKeys>: FromRef<S>,
{
    let keys = Arc::<ApiKeys>::from_ref(state);
    presented_key(parts)
        .and_then(|k| keys.authenticate(k))
        .ok_or_else(ApiError::unauthorized)
}

fn presented_key(parts: &Parts) -> Option<&str> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, key) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
}

/// Refuses a key limited to some realms where the request reaches beyond them: a `{realm}` in
/// the path it does not reach, or (unless the route answers only about the key's realms) a
/// route that names no realm.
async fn check_realm<S: Send + Sync>(
    key: &ApiKey,
    realms_filtered: bool,
    parts: &mut Parts,
    state: &S,
) -> Result<(), ApiError> {
    if !key.is_limited() {
        return Ok(());
    }
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text()))?;
    let refused = |message: String| Err(SessionError::Forbidden(message).into());
    match params.iter().find(|(k, _)| *k == "realm") {
        Some((_, realm)) if key.reaches(realm) => Ok(()),
        Some((_, realm)) => refused(format!(
            "API key '{}' is limited to realms {}; it does not reach realm '{realm}'",
            key.name,
            key.realms_label()
        )),
        None if realms_filtered => Ok(()),
        None => refused(format!(
            "API key '{}' is limited to realms {}; this route spans every realm and needs a key \
             not limited to some realms",
            key.name,
            key.realms_label()
        )),
    }
}

impl<S, const ADMIN: bool, const REALMS_FILTERED: bool> FromRequestParts<S>
    for Caller<ADMIN, REALMS_FILTERED>
where
    Arc<ApiKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        let key = authenticated(parts, state)?;
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
        check_realm(&key, REALMS_FILTERED, parts, state).await?;
        Ok(Caller { key })
    }
}

/// A caller with the `ssf:receiver` scope: a Shared Signals receiver, which reaches its own
/// stream only (the stream covers at most the realms its key reaches).
pub struct Receiver {
    /// The key the request presented.
    pub key: Arc<ApiKey>,
}

impl<S> FromRequestParts<S> for Receiver
where
    Arc<ApiKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        let key = authenticated(parts, state)?;
        if !key.scopes.contains(&Scope::Receiver) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!(
                    "API key '{}' lacks the '{}' scope",
                    key.name,
                    Scope::Receiver.as_str()
                ),
            ));
        }
        Ok(Receiver { key })
    }
}
