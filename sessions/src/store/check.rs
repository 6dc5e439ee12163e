//! What a consistency check reports (see [`super::SledStoreV2::check`]).

/// What a consistency check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Session records read.
    pub sessions: u64,
    /// Grant records read.
    pub grants: u64,
    /// Delivery records read.
    pub deliveries: u64,
    /// Ended-session history entries read.
    pub ended: u64,
    /// One line per difference between the records and their index entries or counters, and per
    /// record that cannot be read (repair leaves those records as they are).
    pub problems: Vec<String>,
    /// Whether the check rewrote index entries or counters to agree with the records.
    pub repaired: bool,
}
