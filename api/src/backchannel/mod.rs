//! OpenID Connect Back-Channel Logout: the signing keys, the logout tokens, and the worker that
//! delivers what the store's outbox holds.

pub mod logout_token;
pub mod signing;
pub mod worker;

use std::sync::Arc;

pub use logout_token::LogoutClaims;
pub use signing::SigningKeys;
pub use worker::DeliveryConfig;

/// What signs and sends logout notifications.
pub struct Backchannel {
    pub keys: Arc<SigningKeys>,
    /// The `iss` of every logout token.
    pub issuer: String,
    /// Wakes the delivery worker when something was queued or retried.
    pub wake: tokio::sync::Notify,
}

impl Backchannel {
    pub fn new(keys: Arc<SigningKeys>, issuer: impl Into<String>) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            wake: tokio::sync::Notify::new(),
        }
    }
}
