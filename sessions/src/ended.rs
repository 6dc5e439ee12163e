//! Ended-session history: what stays of a session once it ends (who, from where, when, how it
//! ended and by whose hand, and whether each of its applications was told), kept for a retention
//! period and listed newest first. Plain types, so they also compile for the WASM dashboard.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::device::Device;
use crate::network::Network;
use crate::stats::EndReason;

/// Page size of a history listing that names none.
pub const DEFAULT_ENDED_PAGE: u32 = 25;
/// Largest history page.
pub const MAX_ENDED_PAGE: u32 = 1000;

/// Whether one client of an ended session heard of the end through back-channel logout.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// No notification was queued: the client has no back-channel logout URI, was outside the
    /// ending's client scope, or the ending did not notify.
    NotSent,
    /// Queued, not acknowledged yet.
    Pending,
    /// The client acknowledged it.
    Delivered,
    /// Retrying gave up.
    Failed,
}

impl Notice {
    /// How the dashboard says it.
    pub fn label(self) -> &'static str {
        match self {
            Notice::NotSent => "not notified",
            Notice::Pending => "pending",
            Notice::Delivered => "delivered",
            Notice::Failed => "failed",
        }
    }
}

/// One client of an ended session and what it was told.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientNotice {
    pub client_id: String,
    pub notice: Notice,
    /// The logout notification's delivery (see the Deliveries listing), when one was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<u64>,
}

/// What stays of a session after it ended.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndedSession {
    pub sid: String,
    pub realm: String,
    pub subject_id: String,
    pub display_name: Option<String>,
    /// The client address the session signed in from.
    pub ip: Option<String>,
    /// The device its user agent named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// The address of its latest refresh (`ip` unless a refresh came from elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ip: Option<String>,
    /// Where `ip` was, when the server had GeoIP databases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Where `last_ip` was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_network: Option<Network>,
    pub created_at: DateTime<Utc>,
    pub last_access_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// How it ended.
    pub how: EndReason,
    /// Who ended it: the administrator or API key of a revocation or realm sign-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The reason the administrator gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every client the session had joined, and whether it was told.
    pub clients: Vec<ClientNotice>,
}

/// A request for one page of a realm's ended sessions, newest end first. Filters are AND-ed;
/// an empty one means none. Every field is text, as in [`crate::SessionFilters`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct EndedQuery {
    /// Exact subject id (empty: no filter)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub subject_id: Option<String>,
    /// Exact session id, the 36-character form of a UUID (empty: no filter)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(
            pattern = r"^$|^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
        )
    )]
    pub sid: Option<String>,
    /// How the sessions ended: logout, expired, revoked, realm_sign_out or evicted (empty: no filter)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(pattern = r"^(|logout|expired|revoked|realm_sign_out|evicted)$")
    )]
    pub how: Option<String>,
    /// Page size, 1 to 1000 (default 25)
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000))]
    pub count: Option<u32>,
    /// The `next` of the page before (empty: the first page)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(max_length = 64, pattern = r"^(|[0-9]{1,19}\.[0-9a-f]{32})$")
    )]
    pub after: Option<String>,
}

/// One page of ended sessions, newest end first, with the exact number that match.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndedPage {
    pub results: Vec<EndedSession>,
    pub total_count: u64,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Where a history page starts: after the ended session with this end time and sid, in
/// newest-first order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EndedCursor {
    pub ended_ms: i64,
    pub sid: [u8; 16],
}

impl EndedCursor {
    /// `<ended ms>.<sid as 32 hex digits>`.
    pub fn encode(&self) -> String {
        let hex: String = self.sid.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}.{hex}", self.ended_ms)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (ms, hex) = text.split_once('.')?;
        if hex.len() != 32 || !ms.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut sid = [0u8; 16];
        for (i, b) in sid.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(EndedCursor {
            ended_ms: ms.parse().ok()?,
            sid,
        })
    }
}
