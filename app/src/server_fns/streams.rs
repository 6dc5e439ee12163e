//! Shared Signals streams: every receiver's stream as administrators see it, and its status set
//! by an administrator (role admin). A status other than enabled set here cannot be changed back
//! by the receiver; every change is audited and the receiver hears of it in a stream-updated
//! event.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::signal::{PUSH_METHOD, STREAM_CLIENT_PREFIX};
use sessions::StreamStatus;

use crate::error::AppError;

/// How a stream's events reach its receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryMethod {
    /// This server POSTs each event to the receiver's endpoint (RFC 8935).
    Push,
    /// The receiver asks this server's poll endpoint for events (RFC 8936).
    Poll,
}

impl DeliveryMethod {
    /// The method an SSF delivery method URN names (push's, else poll: the only other one).
    pub fn of_urn(urn: &str) -> Self {
        if urn == PUSH_METHOD {
            DeliveryMethod::Push
        } else {
            DeliveryMethod::Poll
        }
    }

    /// The word the dashboard shows.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMethod::Push => "push",
            DeliveryMethod::Poll => "poll",
        }
    }
}

/// A stream as the dashboard lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamRow {
    pub stream_id: String,
    /// The receiver's API key.
    pub key_name: String,
    pub description: Option<String>,
    pub method: DeliveryMethod,
    /// Push: the receiver's endpoint; poll: this server's poll endpoint.
    pub endpoint_url: Option<String>,
    /// The realms whose session endings the stream carries; `None` for every realm.
    pub realms: Option<Vec<String>>,
    /// The event types transmitted (URIs).
    pub events_delivered: Vec<String>,
    pub status: StreamStatus,
    pub status_reason: Option<String>,
    /// Whether an administrator set the status (the receiver cannot change it back).
    pub status_by_admin: bool,
    pub updated_at: DateTime<Utc>,
}

impl StreamRow {
    /// The client id the stream's deliveries carry on the deliveries page: `ssf:<stream id>`.
    pub fn client_id(&self) -> String {
        format!("{STREAM_CLIENT_PREFIX}{}", self.stream_id)
    }
}

/// What the signals page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamsView {
    /// Every stream, by receiver key name.
    pub streams: Vec<StreamRow>,
    /// Whether the administrator's role may set a stream's status (else no control is shown).
    pub may_change: bool,
    /// The server's time of this answer, which times are shown relative to.
    pub now: DateTime<Utc>,
}

/// Every stream, by receiver key name.
#[server]
pub async fn load_signal_streams() -> Result<StreamsView, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    let mut streams: Vec<StreamRow> = service()?
        .list_signal_streams(&admin.actor())
        .await
        .map_err(failed)?
        .into_iter()
        .map(|s| StreamRow {
            method: DeliveryMethod::of_urn(&s.configuration.delivery.method),
            stream_id: s.configuration.stream_id,
            key_name: s.key_name,
            description: s.configuration.description,
            endpoint_url: s.configuration.delivery.endpoint_url,
            realms: s.configuration.realms,
            events_delivered: s.configuration.events_delivered,
            status: s.status,
            status_reason: s.status_reason,
            status_by_admin: s.status_by_admin,
            updated_at: s.updated_at,
        })
        .collect();
    streams.sort_by(|a, b| a.key_name.cmp(&b.key_name));
    Ok(StreamsView {
        streams,
        may_change: admin.may(sessions::Permission::Administer),
        now: Utc::now(),
    })
}

/// A reason as typed: trimmed; blank is none.
pub fn typed_reason(reason: Option<String>) -> Option<String> {
    reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
}

/// Enables, pauses or disables a stream, with an optional reason the receiver reads.
#[server(endpoint = "set_signal_stream_status")]
pub async fn set_signal_stream_status(
    stream_id: String,
    status: StreamStatus,
    reason: Option<String>,
) -> Result<String, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    let stream = service()?
        .set_signal_stream_status(&admin.actor(), &stream_id, status, typed_reason(reason))
        .await
        .map_err(failed)?;
    Ok(format!(
        "The stream of receiver '{}' is now {}.",
        stream.key_name,
        stream.status.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_recognized_on_the_deliveries_page_by_its_client_id() {
        let row = StreamRow {
            stream_id: "0f3c".into(),
            key_name: "receiver".into(),
            description: None,
            method: DeliveryMethod::Poll,
            endpoint_url: None,
            realms: None,
            events_delivered: Vec::new(),
            status: StreamStatus::Enabled,
            status_reason: None,
            status_by_admin: false,
            updated_at: Utc::now(),
        };
        assert_eq!(row.client_id(), "ssf:0f3c");
    }

    #[test]
    fn the_delivery_method_is_read_from_its_urn() {
        assert_eq!(
            DeliveryMethod::of_urn("urn:ietf:rfc:8935"),
            DeliveryMethod::Push
        );
        assert_eq!(
            DeliveryMethod::of_urn("urn:ietf:rfc:8936"),
            DeliveryMethod::Poll
        );
    }

    #[test]
    fn a_blank_reason_is_no_reason() {
        assert_eq!(typed_reason(None), None);
        assert_eq!(typed_reason(Some("  ".into())), None);
        assert_eq!(
            typed_reason(Some(" receiver misbehaves ".into())),
            Some("receiver misbehaves".into())
        );
    }
}
