//! OpenID Connect Back-Channel Logout: the signing keys, the logout tokens, where they may be
//! sent, and the worker that delivers what the store's outbox holds.

pub mod failure;
pub mod logout_token;
pub mod resolve;
pub mod signing;
pub mod target;
pub mod worker;

use std::sync::Arc;

pub use logout_token::LogoutClaims;
pub use signing::SigningKeys;
pub use target::{AllowHosts, InvalidAllowHost};
pub use worker::DeliveryConfig;

/// What signs and sends logout notifications.
pub struct Backchannel {
    pub keys: Arc<SigningKeys>,
    /// The `iss` of every logout token.
    pub issuer: String,
    /// Hosts exempt from the target rules (`--backchannel-allow-hosts`), at registration and at
    /// delivery.
    pub allow_hosts: Arc<AllowHosts>,
    /// Wakes the delivery worker when something was queued or retried.
    pub wake: tokio::sync::Notify,
}

impl Backchannel {
    /// Signs with `keys` as `issuer`; nothing is allow-listed.
    pub fn new(keys: Arc<SigningKeys>, issuer: impl Into<String>) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            allow_hosts: Arc::default(),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// The same, with `hosts` exempt from the target rules.
    pub fn with_allow_hosts(self, hosts: AllowHosts) -> Self {
        Self {
            allow_hosts: Arc::new(hosts),
            ..self
        }
    }
}
