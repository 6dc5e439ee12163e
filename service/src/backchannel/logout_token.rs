//! The claims of an OpenID Connect Back-Channel Logout 1.0 logout token.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sessions::Delivery;

/// The `typ` header of a logout token.
pub const TOKEN_TYPE: &str = "logout+jwt";
/// The one event a logout token carries.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Seconds a logout token is valid for.
pub const LIFETIME_SECS: i64 = 120;

/// The claims of a logout token. It never carries `nonce`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LogoutClaims {
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sub: String,
    pub sid: String,
    pub events: serde_json::Value,
}

impl LogoutClaims {
    /// The claims for one attempt at a delivery: a fresh `jti` and validity window each time.
    pub fn for_delivery(issuer: &str, delivery: &Delivery, now: DateTime<Utc>) -> Self {
        let iat = now.timestamp();
        Self {
            iss: issuer.to_owned(),
            aud: delivery.client_id.clone(),
            iat,
            exp: iat + LIFETIME_SECS,
            jti: uuid::Uuid::new_v4().to_string(),
            sub: delivery.subject_id.clone(),
            sid: delivery.sid.clone(),
            events: serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
        }
    }
}
