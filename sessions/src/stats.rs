//! Time-bucketed activity counters of a realm, for the overview page: sign-ins, sessions ended
//! by reason, and back-channel delivery attempts by outcome, per hour and per day.
//!
//! Each backend adds to these counters in the same atomic write as the event itself (the sled
//! store's journaled counters, PostgreSQL's transaction), so they are exact and are never
//! recomputed by scanning. Only the last [`Span::kept`] buckets of each span are kept; the reaper
//! prunes older ones. The keys are a closed set ([`Metric`]): free-text removal reasons never
//! become keys.
//!
//! Active sessions are not sampled: the count at the end of each bucket follows exactly from the
//! realm's session count now and the sign-ins and endings of the buckets after it
//! ([`active_at_bucket_ends`]).

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// The width of a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Span {
    /// One hour, kept for [`HOURS_KEPT`] hours.
    Hour,
    /// One UTC day, kept for [`DAYS_KEPT`] days.
    Day,
}

/// Hourly buckets kept (the current one included).
pub const HOURS_KEPT: i64 = 48;
/// Daily buckets kept (the current one included).
pub const DAYS_KEPT: i64 = 35;

impl Span {
    /// Both spans.
    pub const ALL: [Span; 2] = [Span::Hour, Span::Day];

    /// The bucket width in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Span::Hour => 3600,
            Span::Day => 86_400,
        }
    }

    /// How many buckets of this span are kept, the current one included.
    pub fn kept(self) -> i64 {
        match self {
            Span::Hour => HOURS_KEPT,
            Span::Day => DAYS_KEPT,
        }
    }

    /// A stable number for storage keys.
    pub fn code(self) -> u8 {
        match self {
            Span::Hour => 1,
            Span::Day => 2,
        }
    }

    /// The span a storage code names.
    pub fn from_code(code: u8) -> Option<Span> {
        Span::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The start (Unix seconds) of the bucket `at` falls in.
    pub fn bucket_of(self, at: DateTime<Utc>) -> i64 {
        at.timestamp().div_euclid(self.seconds()) * self.seconds()
    }

    /// The start (Unix seconds) of the oldest bucket kept at `now`; older ones are pruned.
    pub fn oldest_kept(self, now: DateTime<Utc>) -> i64 {
        self.bucket_of(now) - (self.kept() - 1) * self.seconds()
    }
}

/// Why a session ended: a closed set, whatever free-text reason an administrator gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The user logged out (its token was presented).
    Logout,
    /// The reaper removed it after it expired.
    Expired,
    /// An administrator removed it (selected, by subject or by filter).
    Revoked,
    /// An administrator signed out every session of the realm.
    RealmSignOut,
    /// A new session of its subject pushed it out of the per-subject quota.
    Evicted,
}

impl EndReason {
    /// Every reason, in the order the overview shows them.
    pub const ALL: [EndReason; 5] = [
        EndReason::Logout,
        EndReason::Expired,
        EndReason::Revoked,
        EndReason::RealmSignOut,
        EndReason::Evicted,
    ];

    /// The name recorded in logout notifications and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Expired => "expired",
            EndReason::Revoked => "revoked",
            EndReason::RealmSignOut => "realm_sign_out",
            EndReason::Evicted => "evicted",
        }
    }

    /// The reason of a name [`EndReason::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// How the dashboard says it.
    pub fn label(self) -> &'static str {
        match self {
            EndReason::Logout => "Logged out",
            EndReason::Expired => "Expired",
            EndReason::Revoked => "Revoked",
            EndReason::RealmSignOut => "Realm sign-out",
            EndReason::Evicted => "Evicted by the quota",
        }
    }
}

/// How one back-channel delivery attempt went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The client acknowledged the logout token.
    Delivered,
    /// The attempt failed; the delivery stays pending for another.
    Failed,
    /// The attempt failed and the retry window is over: the delivery is marked failed.
    GaveUp,
}

impl DeliveryOutcome {
    /// Every outcome, in the order the overview shows them.
    pub const ALL: [DeliveryOutcome; 3] = [
        DeliveryOutcome::Delivered,
        DeliveryOutcome::Failed,
        DeliveryOutcome::GaveUp,
    ];

    /// The outcome of an attempt, from the delivery's status after it.
    pub fn after_attempt(status: crate::DeliveryStatus) -> Self {
        match status {
            crate::DeliveryStatus::Delivered => DeliveryOutcome::Delivered,
            crate::DeliveryStatus::Pending => DeliveryOutcome::Failed,
            crate::DeliveryStatus::Failed => DeliveryOutcome::GaveUp,
        }
    }
}

/// What one counter counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Sessions created.
    SignIns,
    /// Sessions ended, by why.
    Ended(EndReason),
    /// Delivery attempts, by outcome.
    Delivery(DeliveryOutcome),
}

impl Metric {
    /// Every metric.
    pub fn all() -> impl Iterator<Item = Metric> {
        std::iter::once(Metric::SignIns)
            .chain(EndReason::ALL.into_iter().map(Metric::Ended))
            .chain(DeliveryOutcome::ALL.into_iter().map(Metric::Delivery))
    }

    /// A stable name for storage keys.
    pub fn name(self) -> &'static str {
        match self {
            Metric::SignIns => "sign_ins",
            Metric::Ended(EndReason::Logout) => "ended_logout",
            Metric::Ended(EndReason::Expired) => "ended_expired",
            Metric::Ended(EndReason::Revoked) => "ended_revoked",
            Metric::Ended(EndReason::RealmSignOut) => "ended_realm_sign_out",
            Metric::Ended(EndReason::Evicted) => "ended_evicted",
            Metric::Delivery(DeliveryOutcome::Delivered) => "delivery_delivered",
            Metric::Delivery(DeliveryOutcome::Failed) => "delivery_failed",
            Metric::Delivery(DeliveryOutcome::GaveUp) => "delivery_gave_up",
        }
    }

    /// The metric a storage name names.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::all().find(|m| m.name() == name)
    }

    /// A stable number for storage keys.
    pub fn code(self) -> u8 {
        match self {
            Metric::SignIns => 1,
            Metric::Ended(EndReason::Logout) => 10,
            Metric::Ended(EndReason::Expired) => 11,
            Metric::Ended(EndReason::Revoked) => 12,
            Metric::Ended(EndReason::RealmSignOut) => 13,
            Metric::Ended(EndReason::Evicted) => 14,
            Metric::Delivery(DeliveryOutcome::Delivered) => 20,
            Metric::Delivery(DeliveryOutcome::Failed) => 21,
            Metric::Delivery(DeliveryOutcome::GaveUp) => 22,
        }
    }

    /// The metric a storage number names.
    pub fn from_code(code: u8) -> Option<Metric> {
        Metric::all().find(|m| m.code() == code)
    }
}

/// Sessions ended in a bucket, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndedCounts {
    /// Logged out by the user.
    pub logout: u64,
    /// Removed by the reaper after expiring.
    pub expired: u64,
    /// Removed by an administrator.
    pub revoked: u64,
    /// Ended by an administrator's sign-out of the whole realm.
    pub realm_sign_out: u64,
    /// Pushed out by the per-subject quota.
    pub evicted: u64,
}

impl EndedCounts {
    /// The count of one reason.
    pub fn get(&self, reason: EndReason) -> u64 {
        match reason {
            EndReason::Logout => self.logout,
            EndReason::Expired => self.expired,
            EndReason::Revoked => self.revoked,
            EndReason::RealmSignOut => self.realm_sign_out,
            EndReason::Evicted => self.evicted,
        }
    }

    fn slot(&mut self, reason: EndReason) -> &mut u64 {
        match reason {
            EndReason::Logout => &mut self.logout,
            EndReason::Expired => &mut self.expired,
            EndReason::Revoked => &mut self.revoked,
            EndReason::RealmSignOut => &mut self.realm_sign_out,
            EndReason::Evicted => &mut self.evicted,
        }
    }

    /// Every reason together.
    pub fn total(&self) -> u64 {
        EndReason::ALL.into_iter().map(|r| self.get(r)).sum()
    }
}

/// Back-channel delivery attempts in a bucket, by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptCounts {
    /// Attempts the client acknowledged.
    pub delivered: u64,
    /// Failed attempts to be retried.
    pub failed: u64,
    /// Failed attempts after which the delivery was given up.
    pub gave_up: u64,
}

impl AttemptCounts {
    /// The count of one outcome.
    pub fn get(&self, outcome: DeliveryOutcome) -> u64 {
        match outcome {
            DeliveryOutcome::Delivered => self.delivered,
            DeliveryOutcome::Failed => self.failed,
            DeliveryOutcome::GaveUp => self.gave_up,
        }
    }

    fn slot(&mut self, outcome: DeliveryOutcome) -> &mut u64 {
        match outcome {
            DeliveryOutcome::Delivered => &mut self.delivered,
            DeliveryOutcome::Failed => &mut self.failed,
            DeliveryOutcome::GaveUp => &mut self.gave_up,
        }
    }

    /// Every outcome together.
    pub fn total(&self) -> u64 {
        DeliveryOutcome::ALL.into_iter().map(|o| self.get(o)).sum()
    }
}

/// The counters of one bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatsBucket {
    /// Where the bucket starts (UTC); it is one hour or one day wide.
    pub start: DateTime<Utc>,
    /// Sessions created in it.
    pub sign_ins: u64,
    /// Sessions ended in it, by reason.
    pub ended: EndedCounts,
    /// Back-channel delivery attempts made in it, by outcome.
    pub deliveries: AttemptCounts,
}

impl StatsBucket {
    /// An empty bucket starting at `start` (Unix seconds).
    pub fn empty(start: i64) -> Self {
        StatsBucket {
            start: Utc.timestamp_opt(start, 0).single().unwrap_or_default(),
            sign_ins: 0,
            ended: EndedCounts::default(),
            deliveries: AttemptCounts::default(),
        }
    }

    /// The count of one metric.
    pub fn get(&self, metric: Metric) -> u64 {
        match metric {
            Metric::SignIns => self.sign_ins,
            Metric::Ended(r) => self.ended.get(r),
            Metric::Delivery(o) => self.deliveries.get(o),
        }
    }

    /// Adds `count` to one metric.
    pub fn add(&mut self, metric: Metric, count: u64) {
        match metric {
            Metric::SignIns => self.sign_ins += count,
            Metric::Ended(r) => *self.ended.slot(r) += count,
            Metric::Delivery(o) => *self.deliveries.slot(o) += count,
        }
    }
}

/// One stored counter: its span, bucket start (Unix seconds), metric and count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsRow {
    /// The bucket width.
    pub span: Span,
    /// The bucket start, Unix seconds.
    pub bucket: i64,
    /// What it counts.
    pub metric: Metric,
    /// How many.
    pub count: i64,
}

/// Every bucket of `span` from the one `from` falls in through the one `to` falls in, oldest
/// first, filled from `rows` (rows of other spans or outside the range are left out; missing
/// buckets are zero).
pub fn assemble(
    span: Span,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    rows: impl IntoIterator<Item = StatsRow>,
) -> Vec<StatsBucket> {
    let first = span.bucket_of(from);
    let last = span.bucket_of(to);
    if last < first {
        return Vec::new();
    }
    let n = ((last - first) / span.seconds() + 1) as usize;
    let mut out: Vec<StatsBucket> = (0..n)
        .map(|i| StatsBucket::empty(first + i as i64 * span.seconds()))
        .collect();
    for row in rows {
        if row.span != span || row.bucket < first || row.bucket > last || row.count <= 0 {
            continue;
        }
        let i = ((row.bucket - first) / span.seconds()) as usize;
        out[i].add(row.metric, row.count as u64);
    }
    out
}

/// The realm's session count at the end of each bucket (the last one ends now), from the count
/// now: walking back, each later bucket's sign-ins are taken off and its endings added back.
/// Exact as long as every bucket after the first was counted (sessions imported by a store
/// migration are not sign-ins).
pub fn active_at_bucket_ends(current: u64, buckets: &[StatsBucket]) -> Vec<u64> {
    let mut out = vec![0; buckets.len()];
    let mut active = current as i64;
    for (i, b) in buckets.iter().enumerate().rev() {
        out[i] = active.max(0) as u64;
        active = active - b.sign_ins as i64 + b.ended.total() as i64;
    }
    out
}

/// Hours the overview's hourly charts show, the current one included.
pub const OVERVIEW_HOURS: i64 = 24;
/// Days the overview's daily charts show, the current one included.
pub const OVERVIEW_DAYS: i64 = 30;

/// A realm's activity at a glance: what the dashboard's overview page draws and the API's
/// overview answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overview {
    /// The realm.
    pub realm: String,
    /// When the figures were read (UTC); the last bucket of each series ends here.
    pub generated_at: DateTime<Utc>,
    /// The realm's sessions now (exact).
    pub session_count: u64,
    /// The last 24 hours, an hourly bucket each, oldest first; the last is the current hour.
    pub hourly: Vec<OverviewBucket>,
    /// The last 30 days (UTC), a daily bucket each, oldest first; the last is today.
    pub daily: Vec<OverviewBucket>,
    /// The realm's registered clients with their sessions now, by client id.
    pub clients: Vec<ClientSessions>,
}

/// One bucket of the overview: its counters and the sessions at its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverviewBucket {
    /// Where the bucket starts (UTC).
    pub start: DateTime<Utc>,
    /// The realm's sessions at the bucket's end (for the current bucket: now). Derived from the
    /// count now and the sign-ins and endings of the later buckets.
    pub active_sessions: u64,
    /// Sessions created in the bucket.
    pub sign_ins: u64,
    /// Sessions ended in the bucket, by reason.
    pub ended: EndedCounts,
    /// Back-channel delivery attempts in the bucket, by outcome.
    pub deliveries: AttemptCounts,
}

/// A client's sessions now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientSessions {
    /// The client id.
    pub client_id: String,
    /// Its display name, if it has one.
    pub name: Option<String>,
    /// Sessions the client joined that are still stored.
    pub session_count: u64,
}

/// The overview's buckets: each bucket with the sessions at its end, from the count now.
pub fn overview_buckets(current: u64, buckets: Vec<StatsBucket>) -> Vec<OverviewBucket> {
    let active = active_at_bucket_ends(current, &buckets);
    buckets
        .into_iter()
        .zip(active)
        .map(|(b, active_sessions)| OverviewBucket {
            start: b.start,
            active_sessions,
            sign_ins: b.sign_ins,
            ended: b.ended,
            deliveries: b.deliveries,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for m in Metric::all() {
            assert_eq!(Metric::from_code(m.code()), Some(m));
            assert_eq!(Metric::from_name(m.name()), Some(m));
        }
        for s in Span::ALL {
            assert_eq!(Span::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn buckets_are_aligned_and_filled() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let from = at("2026-01-01T10:30:00Z");
        let to = at("2026-01-01T12:05:00Z");
        let rows = [
            StatsRow {
                span: Span::Hour,
                bucket: Span::Hour.bucket_of(at("2026-01-01T11:59:59Z")),
                metric: Metric::SignIns,
                count: 3,
            },
            StatsRow {
                span: Span::Day,
                bucket: Span::Day.bucket_of(from),
                metric: Metric::SignIns,
                count: 9,
            },
        ];
        let b = assemble(Span::Hour, from, to, rows);
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].start, at("2026-01-01T10:00:00Z"));
        assert_eq!(b.iter().map(|b| b.sign_ins).collect::<Vec<_>>(), [0, 3, 0]);
        let mut ended = b.clone();
        ended[2].ended.logout = 1;
        assert_eq!(active_at_bucket_ends(5, &ended), [3, 6, 5]);
    }
}
