//! The one error type of the session service, with a stable code and an HTTP status for each case.

use serde::{Deserialize, Serialize};

/// Everything that can go wrong in the session service.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", content = "message", rename_all = "snake_case")]
pub enum SessionError {
    #[error("realm '{0}' does not exist; create it first with PUT /api/v1/realms/{0}")]
    RealmNotFound(String),
    #[error("no session '{0}' in this realm")]
    SessionNotFound(String),
    #[error("no client '{0}' is registered in this realm")]
    ClientNotFound(String),
    #[error("no back-channel delivery {0} in this realm")]
    DeliveryNotFound(u64),
    #[error("no Shared Signals stream '{0}' for this receiver")]
    StreamNotFound(String),
    #[error("{0}")]
    TooSoon(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the results token is malformed or was altered; start again from the first page")]
    InvalidResultsToken,
    #[error("the results token belongs to a different query (filters, sort or page size changed); start again from the first page")]
    ResultsTokenMismatch,
    #[error("subject '{0}' already holds the realm's maximum number of sessions")]
    QuotaExceeded(String),
    #[error("property '{0}' is not in the realm's property whitelist")]
    PropertyNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    /// A back-channel logout URI the server's target rules refuse (not https, or a non-public
    /// address that is not allow-listed).
    #[error("{0}")]
    BackchannelUriNotAllowed(String),
    /// The actor's role (or API key's scopes) does not permit the action.
    #[error("{0}")]
    Forbidden(String),
    #[error("storage failure: {0}")]
    Storage(String),
    /// The store could not answer for now (a statement past its timeout, its database
    /// unreachable or failing over): trying again may work.
    #[error("the store is unavailable for now: {0}")]
    Unavailable(String),
}

impl SessionError {
    /// Stable, machine-readable code, as used in the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            SessionError::RealmNotFound(_) => "realm_not_found",
            SessionError::SessionNotFound(_) => "session_not_found",
            SessionError::ClientNotFound(_) => "client_not_found",
            SessionError::DeliveryNotFound(_) => "delivery_not_found",
            SessionError::StreamNotFound(_) => "stream_not_found",
            SessionError::TooSoon(_) => "too_many_requests",
            SessionError::InvalidRequest(_) => "invalid_request",
            SessionError::InvalidResultsToken => "invalid_results_token",
            SessionError::ResultsTokenMismatch => "results_token_mismatch",
            SessionError::QuotaExceeded(_) => "quota_exceeded",
            SessionError::PropertyNotAllowed(_) => "property_not_allowed",
            SessionError::Conflict(_) => "conflict",
            SessionError::BackchannelUriNotAllowed(_) => "backchannel_uri_not_allowed",
            SessionError::Forbidden(_) => "forbidden",
            SessionError::Storage(_) => "storage_error",
            SessionError::Unavailable(_) => "store_unavailable",
        }
    }

    /// The HTTP status that fits.
    pub fn status(&self) -> u16 {
        match self {
            SessionError::RealmNotFound(_)
            | SessionError::SessionNotFound(_)
            | SessionError::ClientNotFound(_)
            | SessionError::DeliveryNotFound(_)
            | SessionError::StreamNotFound(_) => 404,
            SessionError::TooSoon(_) => 429,
            SessionError::InvalidRequest(_)
            | SessionError::BackchannelUriNotAllowed(_)
            | SessionError::InvalidResultsToken
            | SessionError::ResultsTokenMismatch => 400,
            SessionError::QuotaExceeded(_) | SessionError::Conflict(_) => 409,
            SessionError::PropertyNotAllowed(_) | SessionError::Forbidden(_) => 403,
            SessionError::Storage(_) => 500,
            SessionError::Unavailable(_) => 503,
        }
    }

    /// Shorthand for an [`SessionError::InvalidRequest`].
    pub fn invalid(message: impl Into<String>) -> Self {
        SessionError::InvalidRequest(message.into())
    }
}

#[cfg(feature = "store")]
impl From<sled::Error> for SessionError {
    fn from(e: sled::Error) -> Self {
        SessionError::Storage(e.to_string())
    }
}

/// Result alias for the session service.
pub type Result<T, E = SessionError> = std::result::Result<T, E>;
