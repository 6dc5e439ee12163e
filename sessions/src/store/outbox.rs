//! How a back-channel logout delivery is stored (both sled layouts use this encoding; the v2
//! layout's keys for it, its status index and its client's queue, are in `v2::layout`).

use crate::delivery::Delivery;
use crate::error::{Result, SessionError};

/// A delivery record as stored (JSON).
pub fn encode(d: &Delivery) -> Vec<u8> {
    serde_json::to_vec(d).expect("a delivery always serializes")
}

/// Reads a stored delivery record.
pub fn decode(v: &[u8]) -> Result<Delivery> {
    serde_json::from_slice(v)
        .map_err(|e| SessionError::Storage(format!("corrupt delivery record: {e}")))
}
