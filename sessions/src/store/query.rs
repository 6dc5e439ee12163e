//! A listing's filters as every backend reads them: the query's fields parsed and checked once
//! ([`Filters::from_query`]), and the test a session must pass.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::keys::{RealmId, Sid};
use super::record::{parse_sid, words, StoredSession};
use crate::address::AddressRange;
use std::collections::HashSet;

use crate::anomaly::{self, Anomaly};
use crate::device::{Browser, Device, DeviceFilter, DeviceKind, Os};
use crate::error::{Result, SessionError};
use crate::model::{SessionFilters, SessionQuery, SortKey};
use crate::network;

/// Largest filtered set sorted in memory for orders other than creation time.
pub(super) const MATERIALIZE_LIMIT: u64 = 10_000;

/// A query's filters. An empty string means no filter (as in `?subject_id=`); any other value is
/// used exactly as given, so a padded `" alice"` matches no session of `alice`.
#[derive(Debug, Default)]
pub struct Filters {
    pub subject: Option<String>,
    pub sid: Option<Sid>,
    pub client: Option<String>,
    /// Case-folded words that must each prefix some word of the display name.
    pub name_words: Vec<String>,
    /// The client address range.
    pub address: Option<AddressRange>,
    /// Creation times allowed: milliseconds from (inclusive) and until (exclusive).
    pub created: Option<CreatedRange>,
    /// The device parts a session's user agent must name. No index or counter answers it: a
    /// listing tests it on each session it reads.
    pub device: DeviceFilter,
    /// The country the sign-in's or the latest address's network must be in (tested in-row).
    pub country: Option<String>,
    /// The autonomous system the sign-in's or the latest address's network must be in.
    pub asn: Option<u64>,
    /// What must look wrong about the session.
    pub anomaly: Option<AnomalyFilter>,
}

/// An anomaly filter as a store tests it.
#[derive(Debug)]
pub struct AnomalyFilter {
    pub anomaly: Anomaly,
    /// The spread window, in hours.
    pub window_hours: u32,
    /// The window's start: sessions last used before it take no part in a spread.
    pub since_ms: i64,
    /// The sessions with the anomaly, for one that is not read from a session alone
    /// (a store that finds them by reading the realm sets this before planning).
    pub found: Option<HashSet<Sid>>,
}

impl AnomalyFilter {
    /// Whether a stored session has the anomaly.
    pub fn admits(&self, s: &StoredSession) -> bool {
        match self.anomaly {
            Anomaly::CountryChanged => country_changed(s),
            Anomaly::CountrySpread | Anomaly::NewDevice => {
                self.found.as_ref().is_some_and(|f| f.contains(&s.sid))
            }
        }
    }
}

/// Whether the latest address is in another country than the sign-in's (both known).
pub fn country_changed(s: &StoredSession) -> bool {
    let first = s.network.as_ref().and_then(|n| n.country.as_deref());
    let last = s
        .last
        .as_ref()
        .and_then(|l| l.network.as_ref())
        .and_then(|n| n.country.as_deref());
    matches!((first, last), (Some(a), Some(b)) if a != b)
}

/// Creation times in milliseconds, `from` inclusive, `until` exclusive; possibly empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreatedRange {
    pub from: i64,
    pub until: i64,
}

impl CreatedRange {
    /// The range of a query's `created_after` (inclusive) and `created_before` (exclusive), in
    /// whole milliseconds (the stored precision), or `None` when neither is given.
    pub fn of(after: Option<DateTime<Utc>>, before: Option<DateTime<Utc>>) -> Option<Self> {
        // Stored times are whole milliseconds: `created >= t` and `created < t` both hold exactly
        // when they hold for `t` rounded up to the millisecond.
        let ceil_ms = |t: DateTime<Utc>| {
            t.timestamp_micros().div_euclid(1000)
                + i64::from(t.timestamp_micros().rem_euclid(1000) != 0)
        };
        (after.is_some() || before.is_some()).then(|| CreatedRange {
            from: after.map_or(i64::MIN, ceil_ms),
            until: before.map_or(i64::MAX, ceil_ms),
        })
    }

    pub fn contains(&self, ms: i64) -> bool {
        self.from <= ms && ms < self.until
    }

    pub fn is_empty(&self) -> bool {
        self.from >= self.until
    }
}

/// The value a choice filter names, unless it is absent or empty.
fn choice<T>(field: &str, v: &Option<String>, parse: fn(&str) -> Option<T>) -> Result<Option<T>> {
    non_empty(v)
        .map(|text| {
            parse(text)
                .ok_or_else(|| SessionError::invalid(format!("{field} names no known value")))
        })
        .transpose()
}

/// The filter value, unless it is absent or empty.
fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

impl Filters {
    pub fn from_query(q: &SessionQuery) -> Result<Self> {
        let q = &q.filters;
        let sid = match non_empty(&q.sid) {
            Some(s) => Some(parse_sid(s).ok_or_else(|| {
                SessionError::invalid(format!(
                    "sid '{s}' is not a session id (expected the 36-character form of a UUID, such as 0b7c3f1e-0000-4000-8000-000000000000)"
                ))
            })?),
            None => None,
        };
        Ok(Filters {
            subject: non_empty(&q.subject_id).map(str::to_owned),
            sid,
            client: non_empty(&q.client_id).map(str::to_owned),
            name_words: non_empty(&q.display_name)
                .map(super::shared::search_words)
                .transpose()?
                .unwrap_or_default(),
            address: non_empty(&q.ip).map(AddressRange::parse).transpose()?,
            created: CreatedRange::of(q.created_after, q.created_before),
            device: DeviceFilter {
                browser: choice("browser", &q.browser, Browser::parse)?,
                os: choice("os", &q.os, Os::parse)?,
                kind: choice("device_type", &q.device_type, DeviceKind::parse)?,
            },
            country: non_empty(&q.country)
                .map(|c| network::parse_country("country", c))
                .transpose()?,
            asn: non_empty(&q.asn)
                .map(|a| network::parse_asn("asn", a))
                .transpose()?,
            anomaly: Self::anomaly_of(q)?,
        })
    }

    fn anomaly_of(q: &SessionFilters) -> Result<Option<AnomalyFilter>> {
        let window_hours = match non_empty(&q.window_hours) {
            Some(text) => anomaly::window_hours(text).ok_or_else(|| {
                SessionError::invalid(format!(
                    "window_hours '{text}' is not a number of hours from 1 to {}",
                    anomaly::MAX_WINDOW_HOURS
                ))
            })?,
            None => anomaly::DEFAULT_WINDOW_HOURS,
        };
        // A window without a spread to look for selects nothing more.
        let Some(anomaly) = choice("anomaly", &q.anomaly, Anomaly::parse)? else {
            return Ok(None);
        };
        Ok(Some(AnomalyFilter {
            anomaly,
            window_hours,
            since_ms: Utc::now().timestamp_millis() - i64::from(window_hours) * 3_600_000,
            found: None,
        }))
    }

    /// Whether a filter is tested on each session read (no index entry or counter answers it).
    pub fn tested_in_row(&self) -> bool {
        !self.device.is_empty()
            || self.country.is_some()
            || self.asn.is_some()
            || self.anomaly.is_some()
    }

    /// Whether the device is the only filter tested in-row (its counters count it).
    pub fn only_device_in_row(&self) -> bool {
        !self.device.is_empty()
            && self.country.is_none()
            && self.asn.is_none()
            && self.anomaly.is_none()
    }

    /// True when a stored session passes every filter.
    pub fn matches(&self, s: &StoredSession) -> bool {
        self.subject.as_ref().is_none_or(|x| *x == s.subject_id)
            && self.sid.as_ref().is_none_or(|x| *x == s.sid)
            && self
                .client
                .as_ref()
                .is_none_or(|x| s.client_ids.contains(x))
            && (self.name_words.is_empty()
                || s.display_name.as_deref().is_some_and(|name| {
                    let name_words: Vec<String> = words(name).collect();
                    self.name_words
                        .iter()
                        .all(|q| name_words.iter().any(|w| w.starts_with(q.as_str())))
                }))
            && self
                .address
                .as_ref()
                .is_none_or(|r| s.ip.as_deref().is_some_and(|ip| r.contains_text(ip)))
            && self.created.is_none_or(|c| c.contains(s.created_ms))
            && (self.device.is_empty() || self.device.admits(Device::of(s.user_agent.as_deref())))
            && self.country.as_ref().is_none_or(|c| {
                s.networks()
                    .any(|n| n.country.as_deref() == Some(c.as_str()))
            })
            && self
                .asn
                .is_none_or(|a| s.networks().any(|n| n.asn.map(u64::from) == Some(a)))
            && self.anomaly.as_ref().is_none_or(|a| a.admits(s))
    }

    /// Digest binding a results token to the query it was issued for.
    pub fn fingerprint(&self, realm: RealmId, sort: SortKey, count: u32) -> [u8; 8] {
        let mut h = Sha256::new();
        h.update(realm.to_be_bytes());
        h.update([sort as u8]);
        h.update(count.to_be_bytes());
        let mut field = |tag: u8, v: &[u8]| {
            h.update([tag]);
            h.update((v.len() as u32).to_be_bytes());
            h.update(v);
        };
        if let Some(s) = &self.subject {
            field(1, s.as_bytes());
        }
        if let Some(s) = &self.sid {
            field(2, s);
        }
        if let Some(c) = &self.client {
            field(3, c.as_bytes());
        }
        for w in &self.name_words {
            field(4, w.as_bytes());
        }
        if let Some(a) = &self.address {
            field(5, &[&a.first[..], &a.last[..]].concat());
        }
        if let Some(c) = &self.created {
            field(6, &[c.from.to_be_bytes(), c.until.to_be_bytes()].concat());
        }
        if !self.device.is_empty() {
            let (mask, value) = self.device.mask();
            field(7, &[mask.to_be_bytes(), value.to_be_bytes()].concat());
        }
        if let Some(c) = &self.country {
            field(8, c.as_bytes());
        }
        if let Some(a) = self.asn {
            field(9, &a.to_be_bytes());
        }
        if let Some(a) = &self.anomaly {
            field(
                10,
                &[&[a.anomaly as u8][..], &a.window_hours.to_be_bytes()].concat(),
            );
        }
        h.finalize()[..8].try_into().expect("8 bytes")
    }
}
