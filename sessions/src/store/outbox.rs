//! How a back-channel logout or Shared Signals delivery is stored (both sled layouts use this
//! encoding; the v2 layout's keys for it, its status index and its client's queue, are in
//! `v2::layout`).
//!
//! A record is a version byte and the delivery in postcard, its times as nanoseconds since the
//! epoch: a removal writes one per session and notified client or stream, so the record is kept
//! small and quick to write (less than half the JSON these records were before). Records written as
//! JSON (starting with `{`) are still read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::{Result, SessionError};

/// The first byte of a binary record.
const BINARY_V1: u8 = 1;

/// A delivery as the binary record holds it.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    id: u64,
    realm: &'a str,
    client_id: &'a str,
    uri: &'a str,
    subject_id: &'a str,
    sid: &'a str,
    reason: &'a str,
    status: DeliveryStatus,
    attempts: u32,
    window_attempts: u32,
    created_at: i64,
    retry_window_start: i64,
    next_attempt_at: Option<i64>,
    last_attempt_at: Option<i64>,
    delivered_at: Option<i64>,
    last_error: Option<&'a str>,
    last_jti: Option<&'a str>,
}

/// Nanoseconds since the epoch; times beyond what that holds (after 2262) are clamped.
fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn time(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

/// A delivery record as stored.
pub fn encode(d: &Delivery) -> Vec<u8> {
    let stored = Stored {
        id: d.id,
        realm: &d.realm,
        client_id: &d.client_id,
        uri: &d.uri,
        subject_id: &d.subject_id,
        sid: &d.sid,
        reason: &d.reason,
        status: d.status,
        attempts: d.attempts,
        window_attempts: d.window_attempts,
        created_at: nanos(d.created_at),
        retry_window_start: nanos(d.retry_window_start),
        next_attempt_at: d.next_attempt_at.map(nanos),
        last_attempt_at: d.last_attempt_at.map(nanos),
        delivered_at: d.delivered_at.map(nanos),
        last_error: d.last_error.as_deref(),
        last_jti: d.last_jti.as_deref(),
    };
    postcard::to_extend(&stored, vec![BINARY_V1]).expect("a delivery always serializes")
}

/// Reads a stored delivery record (binary, or JSON as written before).
pub fn decode(v: &[u8]) -> Result<Delivery> {
    let corrupt =
        |e: &dyn std::fmt::Display| SessionError::Storage(format!("corrupt delivery record: {e}"));
    match v.first() {
        Some(b'{') => serde_json::from_slice(v).map_err(|e| corrupt(&e)),
        Some(&BINARY_V1) => {
            let s: Stored = postcard::from_bytes(&v[1..]).map_err(|e| corrupt(&e))?;
            Ok(Delivery {
                id: s.id,
                realm: s.realm.to_owned(),
                client_id: s.client_id.to_owned(),
                uri: s.uri.to_owned(),
                subject_id: s.subject_id.to_owned(),
                sid: s.sid.to_owned(),
                reason: s.reason.to_owned(),
                status: s.status,
                attempts: s.attempts,
                window_attempts: s.window_attempts,
                created_at: time(s.created_at),
                retry_window_start: time(s.retry_window_start),
                next_attempt_at: s.next_attempt_at.map(time),
                last_attempt_at: s.last_attempt_at.map(time),
                delivered_at: s.delivered_at.map(time),
                last_error: s.last_error.map(str::to_owned),
                last_jti: s.last_jti.map(str::to_owned),
            })
        }
        _ => Err(corrupt(&"unknown format")),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn delivery() -> Delivery {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
            + chrono::TimeDelta::nanoseconds(123_456_789);
        Delivery {
            id: 42,
            realm: "acme".into(),
            client_id: "ssf:5b0e".into(),
            uri: "https://siem.example/events".into(),
            subject_id: "alice".into(),
            sid: "0b5e3f5c-6c1a-4d5e-9a43-1f2d3c4b5a69".into(),
            reason: "revoked".into(),
            status: DeliveryStatus::Failed,
            attempts: 7,
            window_attempts: 3,
            created_at: at,
            retry_window_start: at,
            next_attempt_at: None,
            last_attempt_at: Some(at),
            delivered_at: None,
            last_error: Some("HTTP 503".into()),
            last_jti: Some("42.acme".into()),
        }
    }

    #[test]
    fn a_record_reads_back_as_written_and_json_records_still_read() {
        let d = delivery();
        let binary = encode(&d);
        assert_eq!(decode(&binary).unwrap(), d);
        let json = serde_json::to_vec(&d).unwrap();
        assert_eq!(decode(&json).unwrap(), d);
        assert!(
            binary.len() * 2 < json.len(),
            "{} vs {} bytes",
            binary.len(),
            json.len()
        );
        for bad in [&b""[..], b"\x07abc", &binary[..binary.len() - 3]] {
            assert!(
                matches!(decode(bad), Err(SessionError::Storage(_))),
                "{bad:?}"
            );
        }
    }
}
