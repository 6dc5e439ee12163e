//! An OpenID Shared Signals Framework 1.0 transmitter: receivers (API keys of scope
//! `ssf:receiver`) manage one stream each; every ended session of a realm a stream covers
//! becomes a CAEP `session-revoked` Security Event Token for it, queued by the store in the
//! ending's own write and delivered through the back-channel outbox, pushed (RFC 8935) by the
//! delivery worker or polled (RFC 8936) by the receiver.
//!
//! - [`config`]: the documents receivers exchange with the transmitter;
//! - [`set`]: the SETs;
//! - [`push`]: the delivery worker's side;
//! - [`receivers`] (methods of [`crate::SessionService`]): the stream management, status,
//!   verification and poll endpoints, and what administrators see and change.

pub mod config;
pub mod push;
mod receivers;
pub mod set;
mod streams;

pub use streams::{SignalStreams, MIN_VERIFICATION_INTERVAL};

/// Where the transmitter's metadata is, under its issuer.
pub const METADATA_PATH: &str = "/.well-known/ssf-configuration";
/// The stream configuration endpoint.
pub const CONFIGURATION_PATH: &str = "/api/v1/ssf/streams";
/// The stream status endpoint.
pub const STATUS_PATH: &str = "/api/v1/ssf/streams/status";
/// The verification endpoint.
pub const VERIFICATION_PATH: &str = "/api/v1/ssf/streams/verify";
/// The poll endpoint of every poll stream.
pub const POLL_PATH: &str = "/api/v1/ssf/poll";
/// Where the keys that sign SETs are published.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
