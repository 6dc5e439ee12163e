//! Shared Signals streams (OpenID SSF 1.0): a receiver's subscription to the events this server
//! transmits, as stored. The store queues a CAEP `session-revoked` delivery for every stream that
//! covers a realm whenever one of its sessions ends; the service's SSF layer signs and sends (or
//! hands out, for poll streams) what the outbox holds. Plain types, so they also compile for the
//! WASM dashboard.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The client id under which a stream's deliveries are queued: `ssf:` and the stream id. No
/// registered client can carry it (client ids have no `:` reserved, but the outbox tells them
/// apart by this prefix, and registration refuses it).
pub const STREAM_CLIENT_PREFIX: &str = "ssf:";

/// The reserved realm that holds a stream's own events (verification, stream updated), which
/// concern no realm of sessions.
pub const STREAMS_REALM: &str = "_ssf";

/// CAEP 1.0: a session ended.
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// SSF 1.0 §8.1.4: the verification event a receiver asks for.
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
/// SSF 1.0 §8.1.5: the transmitter changed the stream's status.
pub const STREAM_UPDATED: &str =
    "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";

/// RFC 8935: the transmitter pushes each SET to the receiver.
pub const PUSH_METHOD: &str = "urn:ietf:rfc:8935";
/// RFC 8936: the receiver polls the transmitter for SETs.
pub const POLL_METHOD: &str = "urn:ietf:rfc:8936";

/// The `reason` of a delivery carrying a verification event (its `subject_id` holds the
/// receiver's `state`).
pub const VERIFICATION_REASON: &str = "ssf_verification";
/// The `reason` of a delivery carrying a stream-updated event (its `subject_id` holds the new
/// status).
pub const STREAM_UPDATED_REASON: &str = "ssf_stream_updated";

/// Whether a stream transmits (SSF 1.0 §8.1.2).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum StreamStatus {
    /// Events are transmitted.
    Enabled,
    /// Events are held and transmitted once the stream is enabled again.
    Paused,
    /// Nothing is transmitted or held.
    Disabled,
}

impl StreamStatus {
    pub const ALL: [StreamStatus; 3] = [
        StreamStatus::Enabled,
        StreamStatus::Paused,
        StreamStatus::Disabled,
    ];

    /// The name SSF gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Enabled => "enabled",
            StreamStatus::Paused => "paused",
            StreamStatus::Disabled => "disabled",
        }
    }

    /// Parses the name SSF gives it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// How a stream's SETs reach the receiver.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "method")]
pub enum StreamDelivery {
    /// RFC 8935: POSTed to the receiver's endpoint, with its `Authorization` header if it gave
    /// one.
    #[serde(rename = "urn:ietf:rfc:8935")]
    Push {
        endpoint_url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authorization_header: Option<String>,
    },
    /// RFC 8936: kept until the receiver polls and acknowledges them.
    #[serde(rename = "urn:ietf:rfc:8936")]
    Poll,
}

impl StreamDelivery {
    /// The method's URN.
    pub fn method(&self) -> &'static str {
        match self {
            StreamDelivery::Push { .. } => PUSH_METHOD,
            StreamDelivery::Poll => POLL_METHOD,
        }
    }

    /// What a queued delivery records as its target: the push endpoint, or the poll method.
    pub fn target(&self) -> &str {
        match self {
            StreamDelivery::Push { endpoint_url, .. } => endpoint_url,
            StreamDelivery::Poll => POLL_METHOD,
        }
    }
}

/// How a stream's SETs name the ended session (`sub_id`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SubjectFormat {
    /// SSF's complex subject: `session` (opaque sid), `user` (iss_sub) and `tenant` (opaque
    /// realm).
    #[default]
    Complex,
    /// RFC 9493 `iss_sub`: the user alone.
    IssSub,
    /// RFC 9493 `opaque`: the session id alone.
    Opaque,
}

/// A stream as stored: one per API key of scope `ssf:receiver`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StreamRecord {
    /// Unique, URL-safe, chosen by the server.
    pub id: String,
    /// The API key the receiver authenticates with (one stream per key).
    pub key_name: String,
    /// The SETs' `aud`, fixed at creation.
    pub aud: String,
    /// The realms whose session endings the stream carries; `None` for every realm.
    pub realms: Option<Vec<String>>,
    /// The event types the receiver asked for (those not transmitted are ignored).
    pub events_requested: Vec<String>,
    pub delivery: StreamDelivery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub subject_format: SubjectFormat,
    pub status: StreamStatus,
    /// Why the status was last changed, as its changer said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Whether an administrator set the status (the receiver cannot change it then).
    #[serde(default)]
    pub status_by_admin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StreamRecord {
    /// The client id its deliveries are queued under.
    pub fn client_id(&self) -> String {
        format!("{STREAM_CLIENT_PREFIX}{}", self.id)
    }

    /// Whether the stream carries `event` (transmitted, and asked for).
    pub fn delivers(&self, event: &str) -> bool {
        self.events_requested.iter().any(|e| e == event)
    }

    /// Whether the stream's events of `realm` are its to send: a realm it covers, or
    /// [`STREAMS_REALM`] (its own events).
    pub fn covers(&self, realm: &str) -> bool {
        realm == STREAMS_REALM
            || self
                .realms
                .as_ref()
                .is_none_or(|realms| realms.iter().any(|r| r == realm))
    }

    /// Whether a session ending in `realm` is queued for this stream: it is not disabled (a
    /// paused stream holds its events), carries `session-revoked`, and covers the realm.
    pub fn takes_endings_of(&self, realm: &str) -> bool {
        self.status != StreamStatus::Disabled
            && self.delivers(SESSION_REVOKED)
            && realm != STREAMS_REALM
            && self.covers(realm)
    }
}

/// The stream id a delivery's client id names, if it is a stream's.
pub fn stream_of_client(client_id: &str) -> Option<&str> {
    client_id.strip_prefix(STREAM_CLIENT_PREFIX)
}

/// The targets a session ending in `realm` is queued for: `(client id, target)` of every stream
/// that takes it.
pub fn ending_targets<'a>(
    streams: &'a [StreamRecord],
    realm: &'a str,
) -> impl Iterator<Item = (String, String)> + 'a {
    streams
        .iter()
        .filter(move |s| s.takes_endings_of(realm))
        .map(|s| (s.client_id(), s.delivery.target().to_owned()))
}
