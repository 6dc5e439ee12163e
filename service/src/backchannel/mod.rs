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

/// What signs and sends logout notifications and Shared Signals events.
pub struct Backchannel {
    pub keys: Arc<SigningKeys>,
    /// The `iss` of every logout token, and the issuer that names users in SETs.
    pub issuer: String,
    /// The Shared Signals transmitter's issuer: the `iss` of every SET and where receivers find
    /// its metadata (the server's public URL).
    pub transmitter: String,
    /// The Shared Signals streams whose events go through the same outbox.
    pub streams: Arc<crate::signals::SignalStreams>,
    /// Hosts exempt from the target rules (`--backchannel-allow-hosts`), at registration and at
    /// delivery.
    pub allow_hosts: Arc<AllowHosts>,
    /// Wakes the delivery worker when something was queued or retried.
    pub wake: tokio::sync::Notify,
}

impl Backchannel {
    /// Signs with `keys` as `issuer` (also the transmitter's); nothing is allow-listed.
    pub fn new(
        keys: Arc<SigningKeys>,
        streams: Arc<crate::signals::SignalStreams>,
        issuer: impl Into<String>,
    ) -> Self {
        let issuer = issuer.into();
        Self {
            keys,
            transmitter: issuer.clone(),
            issuer,
            streams,
            allow_hosts: Arc::default(),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// The same, with SETs issued as `transmitter` (without a trailing `/`).
    pub fn with_transmitter(self, transmitter: &str) -> Self {
        Self {
            transmitter: transmitter.trim_end_matches('/').to_owned(),
            ..self
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
