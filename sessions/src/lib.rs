//! The session service: server-side sign-in sessions for identity providers.
//!
//! [`model`] and [`error`] are plain types that also compile for WASM. With the `store` feature,
//! [`store`] adds the [`store::SessionStore`] trait and its sled implementation, [`store::SledStore`].

pub mod address;
pub mod anomaly;
pub mod delivery;
pub mod device;
pub mod ended;
pub mod error;
pub mod grant;
pub mod model;
pub mod network;
pub mod role;
pub mod sample;
pub mod signal;
pub mod stats;
pub mod validate;

#[cfg(feature = "store")]
pub mod store;

/// The behavioural test suite of [`store::SessionStore`] backends (feature `conformance`).
#[cfg(feature = "conformance")]
pub mod conformance;

pub use anomaly::Anomaly;
pub use delivery::*;
pub use device::{Browser, Device, DeviceFilter, DeviceKind, Os};
pub use ended::{ClientNotice, EndedCursor, EndedPage, EndedQuery, EndedSession, Notice};
pub use error::{Result, SessionError};
pub use grant::*;
pub use model::*;
pub use network::{LastAddress, Network};
pub use role::{AdminRole, Permission};
pub use signal::{StreamDelivery, StreamRecord, StreamStatus, SubjectFormat};
