//! Security Event Tokens (RFC 8417) as SSF 1.0 profiles them: the claims of the SET a queued
//! delivery of a stream becomes. A delivery's SET keeps its `jti` across attempts (the receiver
//! tells a retransmission by it, and a poll receiver acknowledges by it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sessions::signal::{
    StreamRecord, SubjectFormat, SESSION_REVOKED, STREAM_UPDATED, STREAM_UPDATED_REASON,
    VERIFICATION, VERIFICATION_REASON,
};
use sessions::Delivery;

/// The `typ` header of a SET.
pub const TOKEN_TYPE: &str = "secevent+jwt";
/// The media type a SET is pushed as.
pub const MEDIA_TYPE: &str = "application/secevent+jwt";

/// The claims of a SET. It never carries `sub` or `exp`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SetClaims {
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
    pub sub_id: Value,
    pub events: Value,
}

/// The `jti` of a delivery's SET: its id and realm, so an acknowledgement finds it.
pub fn jti_of(d: &Delivery) -> String {
    format!("{}.{}", d.id, d.realm)
}

/// The delivery a `jti` names: `(realm, id)`.
pub fn delivery_of_jti(jti: &str) -> Option<(&str, u64)> {
    let (id, realm) = jti.split_once('.')?;
    if realm.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((realm, id.parse().ok()?))
}

/// Who ended the session (CAEP `initiating_entity`) and what an administrator reads about it
/// (`reason_admin`), by the delivery's reason.
fn how_it_ended(reason: &str) -> (&'static str, &'static str) {
    match reason {
        "logout" => ("user", "The user signed out."),
        "revoked" => ("admin", "An administrator revoked the session."),
        "realm_sign_out" => (
            "admin",
            "An administrator signed out every session of the realm.",
        ),
        "expired" => ("policy", "The session expired."),
        "evicted" => (
            "policy",
            "A newer session of the user went over the per-user session limit.",
        ),
        _ => ("system", "The session ended."),
    }
}

/// The subject of a session-revoked event in the stream's format.
fn session_subject(issuer: &str, stream: &StreamRecord, d: &Delivery) -> Value {
    let user = json!({ "format": "iss_sub", "iss": issuer, "sub": d.subject_id });
    let session = json!({ "format": "opaque", "id": d.sid });
    match stream.subject_format {
        SubjectFormat::Complex => json!({
            "format": "complex",
            "session": session,
            "user": user,
            "tenant": { "format": "opaque", "id": d.realm },
        }),
        SubjectFormat::IssSub => user,
        SubjectFormat::Opaque => session,
    }
}

/// The claims of the SET a stream's delivery becomes, sent at `now`. `transmitter` is the
/// SETs' `iss` (the stream's); `issuer`, the identity provider's, names the users.
pub fn for_delivery(
    transmitter: &str,
    issuer: &str,
    stream: &StreamRecord,
    d: &Delivery,
    now: DateTime<Utc>,
) -> SetClaims {
    let stream_subject = json!({ "format": "opaque", "id": stream.id });
    let (sub_id, events, txn) = match d.reason.as_str() {
        VERIFICATION_REASON => {
            let event = match d.subject_id.as_str() {
                "" => json!({}),
                state => json!({ "state": state }),
            };
            (stream_subject, json!({ VERIFICATION: event }), None)
        }
        STREAM_UPDATED_REASON => {
            let mut event = json!({ "status": d.subject_id });
            if let Some(reason) = &stream.status_reason {
                event["reason"] = json!(reason);
            }
            (stream_subject, json!({ STREAM_UPDATED: event }), None)
        }
        reason => {
            let (initiating_entity, text) = how_it_ended(reason);
            let event = json!({
                "event_timestamp": d.created_at.timestamp(),
                "initiating_entity": initiating_entity,
                "reason_admin": { "en": text },
            });
            let txn = format!("{}/{}", d.realm, d.sid);
            (
                session_subject(issuer, stream, d),
                json!({ SESSION_REVOKED: event }),
                Some(txn),
            )
        }
    };
    SetClaims {
        iss: transmitter.to_owned(),
        aud: stream.aud.clone(),
        iat: now.timestamp(),
        jti: jti_of(d),
        txn,
        sub_id,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_names_its_delivery_and_nothing_else_parses() {
        assert_eq!(delivery_of_jti("42.acme.eu"), Some(("acme.eu", 42)));
        assert_eq!(delivery_of_jti("42._ssf"), Some(("_ssf", 42)));
        for bad in [
            "",
            "42",
            "42.",
            ".acme",
            "x.acme",
            "-1.acme",
            "99999999999999999999.a",
        ] {
            assert_eq!(delivery_of_jti(bad), None, "{bad:?}");
        }
    }
}
