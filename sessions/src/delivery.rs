//! Back-channel logout deliveries: one notification to one client about one ended session, kept
//! in a durable outbox until the client acknowledges it or retrying gives up. Plain types, so they
//! also compile for the WASM dashboard.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a delivery stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The client answered 200 or 204.
    Delivered,
    /// Retrying gave up; "retry now" queues it again.
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    /// The name used in URLs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Parses the name used in URLs and JSON.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One back-channel logout notification and its delivery history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// Unique, increasing id.
    pub id: u64,
    pub realm: String,
    pub client_id: String,
    /// The client's back-channel logout URI at the time the session ended.
    pub uri: String,
    /// The logout token's `sub`.
    pub subject_id: String,
    /// The logout token's `sid`.
    pub sid: String,
    /// Why the session ended: `revoked`, `logout`, `realm_sign_out`, `expired` or `evicted`.
    pub reason: String,
    pub status: DeliveryStatus,
    /// Attempts made in all.
    pub attempts: u32,
    /// Attempts made since the retry window opened; the backoff between attempts grows with it.
    #[serde(default)]
    pub window_attempts: u32,
    pub created_at: DateTime<Utc>,
    /// When retrying started (creation, or the last "retry now"); retries stop a bounded time later.
    pub retry_window_start: DateTime<Utc>,
    /// When a pending delivery is next attempted.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// What went wrong with the last attempt, if it failed (cleared once delivered).
    pub last_error: Option<String>,
    /// The `jti` of the last logout token sent.
    pub last_jti: Option<String>,
}

/// A delivery queued by itself, not by a session ending: a Shared Signals stream's own events
/// (verification, stream updated), see [`crate::signal`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    pub realm: String,
    pub client_id: String,
    pub uri: String,
    pub subject_id: String,
    /// A session id as the store writes them (a UUID).
    pub sid: String,
    pub reason: String,
}

/// How one delivery attempt went, as the delivery worker reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered,
    /// Failed; try again at this time.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Failed, and retrying gives up.
    GiveUp {
        error: String,
    },
}

/// Exact number of deliveries per status in a realm.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// One page of a realm's deliveries, newest first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    pub counts: DeliveryCounts,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<u64>,
}

impl Delivery {
    /// A new delivery, pending and due at `now`.
    pub fn pending(id: u64, new: NewDelivery, now: DateTime<Utc>) -> Delivery {
        Delivery {
            id,
            realm: new.realm,
            client_id: new.client_id,
            uri: new.uri,
            subject_id: new.subject_id,
            sid: new.sid,
            reason: new.reason,
            status: DeliveryStatus::Pending,
            attempts: 0,
            window_attempts: 0,
            created_at: now,
            retry_window_start: now,
            next_attempt_at: Some(now),
            last_attempt_at: None,
            delivered_at: None,
            last_error: None,
            last_jti: None,
        }
    }

    /// The delivery after an attempt at `attempted` (the delivery as the worker read it) went as
    /// `result`, the logout token's `jti` included. If "retry now" opened a new retry window
    /// while the attempt was in flight (the windows differ), a failure leaves it pending and due
    /// as "retry now" set it, and does not count towards the new window's backoff.
    pub fn after_attempt(
        &self,
        attempted: &Delivery,
        jti: &str,
        result: &AttemptResult,
        now: DateTime<Utc>,
    ) -> Delivery {
        let requeued = self.retry_window_start != attempted.retry_window_start;
        let mut new = Delivery {
            attempts: self.attempts + 1,
            window_attempts: self.window_attempts + u32::from(!requeued),
            last_attempt_at: Some(now),
            last_jti: Some(jti.to_owned()),
            ..self.clone()
        };
        match result {
            AttemptResult::Delivered => {
                new.status = DeliveryStatus::Delivered;
                new.delivered_at = Some(now);
                new.next_attempt_at = None;
                new.last_error = None;
            }
            AttemptResult::Retry { error, .. } | AttemptResult::GiveUp { error } if requeued => {
                new.last_error = Some(error.clone());
            }
            AttemptResult::Retry { at, error } => {
                new.status = DeliveryStatus::Pending;
                new.next_attempt_at = Some(*at);
                new.last_error = Some(error.clone());
            }
            AttemptResult::GiveUp { error } => {
                new.status = DeliveryStatus::Failed;
                new.next_attempt_at = None;
                new.last_error = Some(error.clone());
            }
        }
        new
    }

    /// The delivery queued for an attempt at `now` with a fresh retry window ("retry now");
    /// refused for one that was delivered already.
    pub fn requeued(&self, now: DateTime<Utc>) -> crate::Result<Delivery> {
        if self.status == DeliveryStatus::Delivered {
            return Err(crate::SessionError::Conflict(format!(
                "delivery {} was already delivered",
                self.id
            )));
        }
        Ok(Delivery {
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(now),
            retry_window_start: now,
            window_attempts: 0,
            ..self.clone()
        })
    }
}
