//! The SSF 1.0 documents as receivers see them: the transmitter's metadata (§7), a stream's
//! configuration (§8.1.1) with this server's extensions (`realms`, `subject_format`), its
//! status (§8.1.2), a verification request (§8.1.4) and a poll (RFC 8936).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sessions::signal::{
    StreamDelivery, StreamRecord, StreamStatus, SubjectFormat, SESSION_REVOKED,
};

/// The event types this transmitter sends when receivers ask for them (verification and
/// stream-updated events are sent whenever they apply).
pub const EVENTS_SUPPORTED: [&str; 1] = [SESSION_REVOKED];

/// The SSF version this transmitter implements.
pub const SPEC_VERSION: &str = "1_0";

/// The transmitter's configuration metadata, at `/.well-known/ssf-configuration`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransmitterMetadata {
    pub spec_version: String,
    /// Also the `iss` of every SET and stream.
    pub issuer: String,
    pub jwks_uri: String,
    pub delivery_methods_supported: Vec<String>,
    pub configuration_endpoint: String,
    pub status_endpoint: String,
    pub verification_endpoint: String,
    pub authorization_schemes: Vec<AuthorizationScheme>,
    /// `ALL`: a stream carries every session of the realms it covers.
    pub default_subjects: String,
}

/// An authorization scheme the management endpoints accept.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorizationScheme {
    pub spec_urn: String,
}

/// How a stream's events reach the receiver, as the configuration shows and takes it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    /// `urn:ietf:rfc:8935` (push) or `urn:ietf:rfc:8936` (poll).
    pub method: String,
    /// Push: the receiver's endpoint (https, a public host). Poll: this server's poll endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Push: the `Authorization` header every POST carries. Write-only: never shown again.
    #[serde(default, skip_serializing)]
    pub authorization_header: Option<String>,
}

/// A stream's configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamConfiguration {
    pub stream_id: String,
    pub iss: String,
    pub aud: String,
    pub events_supported: Vec<String>,
    pub events_requested: Vec<String>,
    /// The events transmitted: those requested that are supported.
    pub events_delivered: Vec<String>,
    pub delivery: DeliverySettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seconds a receiver waits between verification requests.
    pub min_verification_interval: u64,
    /// The realms whose session endings the stream carries; `null` for every realm.
    pub realms: Option<Vec<String>>,
    pub subject_format: SubjectFormat,
}

/// What a receiver sends to create (`POST`), update (`PATCH`) or replace (`PUT`) its stream.
/// Transmitter-supplied members may be present and must then match.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StreamRequest {
    /// Required to update or replace.
    #[serde(default)]
    pub stream_id: Option<String>,
    #[serde(default)]
    pub iss: Option<String>,
    /// A string, or an array of one string.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub aud: Option<serde_json::Value>,
    #[serde(default)]
    pub events_supported: Option<Vec<String>>,
    #[serde(default)]
    pub events_delivered: Option<Vec<String>>,
    #[serde(default)]
    pub min_verification_interval: Option<u64>,
    /// At most 16 event-type URIs; unknown ones are kept and not delivered.
    #[serde(default)]
    pub events_requested: Option<Vec<String>>,
    /// Absent on create: poll.
    #[serde(default)]
    pub delivery: Option<DeliverySettings>,
    /// Cut to 255 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// The realms to cover (each one the key reaches); absent: the key's realms, or every
    /// realm for a key not limited to some.
    #[serde(default)]
    pub realms: Option<Vec<String>>,
    /// How SETs name the session: `complex` (default), `iss_sub` or `opaque`.
    #[serde(default)]
    pub subject_format: Option<SubjectFormat>,
}

/// A stream's status (§8.1.2), read or set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StreamStatusBody {
    pub stream_id: String,
    pub status: StreamStatus,
    /// Why (at most 255 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A receiver's request for a verification event (§8.1.4).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerificationRequest {
    pub stream_id: String,
    /// Echoed in the event (at most 255 bytes, no control characters).
    #[serde(default)]
    pub state: Option<String>,
}

/// A poll (RFC 8936 §2.2): acknowledge what was received, report what was not valid, ask for
/// more.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PollRequest {
    /// Most SETs to return (at most 1000, the default); 0 only acknowledges.
    #[serde(default)]
    pub max_events: Option<u32>,
    /// Answer at once even when nothing is waiting (else wait up to 20 s for a SET).
    #[serde(default)]
    pub return_immediately: bool,
    /// The `jti` of every SET received (at most 1000).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 1000))]
    pub ack: Vec<String>,
    /// SETs that could not be used, by `jti` (at most 1000): they are not sent again.
    #[serde(default)]
    pub set_errs: BTreeMap<String, SetError>,
}

/// Why a receiver could not use a SET (RFC 8935 §2.3).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetError {
    pub err: String,
    #[serde(default)]
    pub description: String,
}

/// The SETs waiting for the receiver (RFC 8936 §2.3), by `jti`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    pub sets: BTreeMap<String, String>,
    pub more_available: bool,
}

/// A stream as administrators see it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamSummary {
    #[serde(flatten)]
    pub configuration: StreamConfiguration,
    /// The receiver's API key.
    pub key_name: String,
    pub status: StreamStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    /// Whether an administrator set the status (the receiver cannot change it).
    pub status_by_admin: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The events of `requested` this transmitter sends.
pub fn delivered(requested: &[String]) -> Vec<String> {
    requested
        .iter()
        .filter(|e| EVENTS_SUPPORTED.contains(&e.as_str()))
        .cloned()
        .collect()
}

/// The configuration of a stored stream; `poll_endpoint` is this server's.
pub fn configuration(
    transmitter: &str,
    poll_endpoint: &str,
    min_verification_interval: u64,
    s: &StreamRecord,
) -> StreamConfiguration {
    let delivery = match &s.delivery {
        StreamDelivery::Push { endpoint_url, .. } => DeliverySettings {
            method: s.delivery.method().to_owned(),
            endpoint_url: Some(endpoint_url.clone()),
            authorization_header: None,
        },
        StreamDelivery::Poll => DeliverySettings {
            method: s.delivery.method().to_owned(),
            endpoint_url: Some(poll_endpoint.to_owned()),
            authorization_header: None,
        },
    };
    StreamConfiguration {
        stream_id: s.id.clone(),
        iss: transmitter.to_owned(),
        aud: s.aud.clone(),
        events_supported: EVENTS_SUPPORTED.map(str::to_owned).to_vec(),
        events_requested: s.events_requested.clone(),
        events_delivered: delivered(&s.events_requested),
        delivery,
        description: s.description.clone(),
        min_verification_interval,
        realms: s.realms.clone(),
        subject_format: s.subject_format,
    }
}
