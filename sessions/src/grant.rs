//! Grants: the refresh tokens, reference access tokens, authorization codes and consents an
//! identity provider issues under a subject (and usually a session). Revoking a session can take
//! them with it. Plain types, so they also compile for the WASM dashboard.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a grant is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum GrantKind {
    RefreshToken,
    /// A reference (opaque) access token.
    AccessToken,
    AuthorizationCode,
    /// The subject's consent to a client; it carries no token.
    Consent,
}

impl GrantKind {
    pub const ALL: [GrantKind; 4] = [
        GrantKind::RefreshToken,
        GrantKind::AccessToken,
        GrantKind::AuthorizationCode,
        GrantKind::Consent,
    ];

    /// Whether the grant is a bearer token (everything but a consent).
    pub fn is_token(self) -> bool {
        self != GrantKind::Consent
    }

    /// The name used in URLs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::RefreshToken => "refresh_token",
            GrantKind::AccessToken => "access_token",
            GrantKind::AuthorizationCode => "authorization_code",
            GrantKind::Consent => "consent",
        }
    }
}

/// What an identity provider records when it issues a token or the subject consents.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewGrant {
    pub kind: GrantKind,
    /// 1 to 255 bytes, no control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 255,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub subject_id: String,
    /// The session the grant was issued under, if any: a live session of the same subject.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 255,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub sid: Option<String>,
    /// 1 to 255 bytes, no control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 255,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub client_id: String,
    /// In the future; a time past the realm's `max_grant_lifetime_secs` is cut to it.
    pub expires_at: DateTime<Utc>,
    /// The token itself, 16 to 4096 bytes (required for tokens, refused for consents); stored
    /// only as a hash.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 16, max_length = 4096))]
    pub token: Option<String>,
    /// Granted scopes: at most 64, each 1 to 255 bytes without spaces or control characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 64))]
    pub scopes: Vec<String>,
}

/// A stored grant. The token is never part of it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grant {
    pub grant_id: String,
    pub realm: String,
    pub kind: GrantKind,
    pub subject_id: String,
    pub sid: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Which grants to list: a subject's, or a session's.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GrantOwner {
    Subject(String),
    Session(String),
}

/// The answer to a token introspection, shaped as RFC 7662's: only `active` when it is not.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<GrantKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Expiry, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

impl Introspection {
    /// The answer for a token that is unknown, revoked or expired.
    pub fn inactive() -> Self {
        Self::default()
    }

    /// The answer for a live token grant.
    pub fn of(grant: &Grant) -> Self {
        Self {
            active: true,
            token_type: Some(grant.kind),
            client_id: Some(grant.client_id.clone()),
            sub: Some(grant.subject_id.clone()),
            sid: grant.sid.clone(),
            scope: (!grant.scopes.is_empty()).then(|| grant.scopes.join(" ")),
            iat: Some(grant.created_at.timestamp()),
            exp: Some(grant.expires_at.timestamp()),
        }
    }
}
