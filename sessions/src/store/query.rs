//! Listing a realm's sessions: filters, the choice of index, keyset paging and exact counts.
//!
//! Every listing walks an index in (time, sid) order from the position its results token names,
//! so a deep page costs what the first page costs. Without filters it walks the sort index of the
//! requested order. With filters it walks the attribute index of the most selective filter (its
//! counter says how selective) and checks the others on each session; for orders other than
//! creation time, a small filtered set (at most [`MATERIALIZE_LIMIT`] sessions) is loaded and
//! sorted in memory, a large one is found by walking the sort index.

use std::ops::Bound;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::keys::{self, AttrKind, RealmId, Sid};
use super::record::{parse_sid, words, StoredSession, MAX_PREFIX_CHARS};
use super::results_token::{PageCursor, Position};
use super::sled_store::{RealmEntry, SledStoreV1};
use crate::address::AddressRange;
use crate::error::{Result, SessionError};
use crate::model::{QueryResult, SessionQuery, SortKey};
use crate::validate;

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

/// The filter value, unless it is absent or empty.
fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

impl Filters {
    pub fn from_query(q: &SessionQuery) -> Result<Self> {
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
                .map(|n| words(n).collect())
                .unwrap_or_default(),
            address: non_empty(&q.ip).map(AddressRange::parse).transpose()?,
            created: CreatedRange::of(q.created_after, q.created_before),
        })
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
    }

    /// Refuses the filters the previous layout has no index for.
    fn refuse_unindexed_in_v1(&self) -> Result<()> {
        if self.address.is_some() || self.created.is_some() {
            return Err(SessionError::invalid(
                "the ip, created_after and created_before filters need storage layout 2 or later",
            ));
        }
        Ok(())
    }

    /// The attribute indexes that can drive the listing, and whether each answers its filter
    /// exactly (a long search word is looked up by its indexed prefix only).
    fn attributes(&self) -> Vec<(AttrKind, Vec<u8>, bool)> {
        let mut out = Vec::new();
        if let Some(s) = &self.subject {
            out.push((AttrKind::Subject, s.as_bytes().to_vec(), true));
        }
        if let Some(c) = &self.client {
            out.push((AttrKind::Client, c.as_bytes().to_vec(), true));
        }
        for w in &self.name_words {
            let prefix: String = w.chars().take(MAX_PREFIX_CHARS).collect();
            let exact = prefix.len() == w.len();
            out.push((AttrKind::NamePrefix, prefix.into_bytes(), exact));
        }
        out
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
        h.finalize()[..8].try_into().expect("8 bytes")
    }
}

/// Where a listing's rows come from.
enum Source {
    /// A sort index, every session of the realm.
    Sorted(SortKey),
    /// An attribute index (creation order) under this prefix.
    Attr(Vec<u8>),
    /// Matching sessions loaded and sorted by position.
    Rows(Vec<(Position, StoredSession)>),
}

/// A listing plan: its source, and the exact match count when an index counter already knows it.
struct Plan {
    source: Source,
    known_count: Option<u64>,
    /// The attribute prefix to count matches under when no counter knows the count.
    count_under: Option<Vec<u8>>,
}

impl SledStoreV1 {
    /// One page of a realm's sessions.
    pub(super) fn run_query(&self, realm: &RealmEntry, q: &SessionQuery) -> Result<QueryResult> {
        validate::query_filters(q)?;
        let count = validate::page_size(q)?;
        let filters = Filters::from_query(q)?;
        filters.refuse_unindexed_in_v1()?;
        let fingerprint = filters.fingerprint(realm.id, q.sort, count);
        let cursor = match &q.results_token {
            Some(t) => Some(self.results_tokens.decode(fingerprint, t)?),
            None => None,
        };
        let plan = self.plan(realm.id, q.sort, &filters)?;
        let want = count as usize;

        let (forward, from) = match (&cursor, q.prior) {
            (None, _) => (true, None),
            (Some(c), false) => (true, Some((c.last, false))),
            (Some(c), true) => (false, Some((c.first, false))),
        };
        let mut rows = self.scan(
            realm.id,
            &plan.source,
            q.sort,
            from,
            forward,
            want + 1,
            &filters,
        )?;
        let more = rows.len() > want;
        rows.truncate(want);
        if !forward {
            rows.reverse();
        }
        // Is there anything on the side we came from? Probe one row beyond this page's edge.
        let edge = if forward { rows.first() } else { rows.last() }.map(|(p, _)| (*p, false));
        let probe_from = edge.or(from.map(|(p, _)| (p, true)));
        let other_side = match probe_from {
            Some(f) => !self
                .scan(
                    realm.id,
                    &plan.source,
                    q.sort,
                    Some(f),
                    !forward,
                    1,
                    &filters,
                )?
                .is_empty(),
            None => false,
        };
        let (has_next, has_prev) = if forward {
            (more, other_side)
        } else {
            (other_side, more)
        };

        let total_count = match plan.known_count {
            Some(n) => n,
            None => self.count_matching(realm.id, plan.count_under.as_deref(), &filters)?,
        };
        let total_pages = total_count.div_ceil(u64::from(count));
        let page = match (&cursor, q.prior) {
            (None, _) => 1,
            (Some(c), false) => c.page + 1,
            (Some(c), true) => c.page.saturating_sub(1),
        };
        let current_page = if has_prev {
            page.clamp(2, total_pages.max(2))
        } else {
            1
        };

        let bounds = match (rows.first(), rows.last()) {
            (Some((f, _)), Some((l, _))) => Some((*f, *l)),
            _ => from.map(|(p, _)| (p, p)),
        };
        let results_token = bounds.map(|(first, last)| {
            self.results_tokens.encode(
                fingerprint,
                &PageCursor {
                    page: current_page,
                    first,
                    last,
                },
            )
        });
        Ok(QueryResult {
            results: rows
                .iter()
                .map(|(_, s)| s.to_session(&realm.name))
                .collect(),
            results_token,
            has_next,
            has_prev,
            total_count,
            current_page,
            total_pages,
        })
    }

    /// Every session of the realm that matches a query's filters, in creation order.
    pub(super) fn matching_sessions(
        &self,
        realm: &RealmEntry,
        q: &SessionQuery,
    ) -> Result<Vec<StoredSession>> {
        let filters = Filters::from_query(q)?;
        filters.refuse_unindexed_in_v1()?;
        let plan = self.plan(realm.id, SortKey::Created, &filters)?;
        let rows = self.scan(
            realm.id,
            &plan.source,
            SortKey::Created,
            None,
            true,
            usize::MAX,
            &filters,
        )?;
        Ok(rows.into_iter().map(|(_, s)| s).collect())
    }

    /// Chooses the index to walk.
    fn plan(&self, realm: RealmId, sort: SortKey, filters: &Filters) -> Result<Plan> {
        if let Some(sid) = &filters.sid {
            let rows: Vec<_> = self
                .load(realm, sid)?
                .filter(|s| filters.matches(s))
                .map(|s| ((s.sort_time(sort), s.sid), s))
                .into_iter()
                .collect();
            let n = rows.len() as u64;
            return Ok(Plan {
                source: Source::Rows(rows),
                known_count: Some(n),
                count_under: None,
            });
        }
        let attributes = filters.attributes();
        if attributes.is_empty() {
            let n = self.counter(&keys::realm_count_key(realm))?;
            return Ok(Plan {
                source: Source::Sorted(sort),
                known_count: Some(n),
                count_under: None,
            });
        }
        let mut best: Option<(Vec<u8>, u64, bool)> = None;
        for (kind, value, exact) in &attributes {
            let prefix = keys::attr_prefix(realm, *kind, value);
            let n = self.counter(&prefix)?;
            if best.as_ref().is_none_or(|(_, m, _)| n < *m) {
                best = Some((prefix, n, *exact));
            }
        }
        let (prefix, n, exact) = best.expect("at least one attribute");
        let known_count = (attributes.len() == 1 && exact).then_some(n);
        if n == 0 {
            return Ok(Plan {
                source: Source::Rows(Vec::new()),
                known_count: Some(0),
                count_under: None,
            });
        }
        let source = if sort == SortKey::Created {
            Source::Attr(prefix.clone())
        } else if n <= MATERIALIZE_LIMIT {
            let mut rows = Vec::with_capacity(n as usize);
            for item in self.trees.by_attr.scan_prefix(&prefix) {
                let (_, sid) = keys::split_time_sid(&item?.0);
                if let Some(s) = self.load(realm, &sid)?.filter(|s| filters.matches(s)) {
                    rows.push(((s.sort_time(sort), s.sid), s));
                }
            }
            rows.sort_by_key(|row| row.0);
            let n = rows.len() as u64;
            return Ok(Plan {
                source: Source::Rows(rows),
                known_count: Some(n),
                count_under: None,
            });
        } else {
            Source::Sorted(sort)
        };
        Ok(Plan {
            source,
            known_count,
            count_under: Some(prefix),
        })
    }

    /// Walks a source from a position (exclusive, or inclusive with `true`) in listing order
    /// (`forward`) or against it, collecting up to `want` matching sessions.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        realm: RealmId,
        source: &Source,
        sort: SortKey,
        from: Option<(Position, bool)>,
        forward: bool,
        want: usize,
        filters: &Filters,
    ) -> Result<Vec<(Position, StoredSession)>> {
        // Creation and last-access orders list newest first, i.e. against key order.
        let descending = sort != SortKey::Expires;
        let key_reverse = forward == descending;
        let beyond = |p: &Position| match from {
            None => true,
            Some((f, inclusive)) => {
                (inclusive && *p == f) || if key_reverse { *p < f } else { *p > f }
            }
        };
        let mut out = Vec::new();
        let (tree, prefix) = match source {
            Source::Rows(rows) => {
                let iter: Box<dyn Iterator<Item = _>> = if key_reverse {
                    Box::new(rows.iter().rev())
                } else {
                    Box::new(rows.iter())
                };
                return Ok(iter
                    .filter(|(p, _)| beyond(p))
                    .take(want)
                    .cloned()
                    .collect());
            }
            Source::Sorted(s) => (self.trees.sorted(*s), keys::realm_prefix(realm).to_vec()),
            Source::Attr(prefix) => (&self.trees.by_attr, prefix.clone()),
        };
        let key_at = |(t, sid): &Position| [&prefix[..], &keys::time_bytes(*t), sid].concat();
        let mut lower = Bound::Included([&prefix[..], &[0u8; 24]].concat());
        let mut upper = Bound::Included([&prefix[..], &[0xffu8; 24]].concat());
        if let Some((p, inclusive)) = &from {
            let b = if *inclusive {
                Bound::Included(key_at(p))
            } else {
                Bound::Excluded(key_at(p))
            };
            if key_reverse {
                upper = b;
            } else {
                lower = b;
            }
        }
        let mut range = tree.range::<Vec<u8>, _>((lower, upper));
        while out.len() < want {
            let item = if key_reverse {
                range.next_back()
            } else {
                range.next()
            };
            let Some(item) = item else { break };
            let (key, _) = item?;
            let position = keys::split_time_sid(&key);
            if let Some(s) = self.load(realm, &position.1)? {
                if filters.matches(&s) {
                    out.push((position, s));
                }
            }
        }
        Ok(out)
    }

    /// Counts matching sessions by walking the attribute index under `prefix`.
    fn count_matching(
        &self,
        realm: RealmId,
        prefix: Option<&[u8]>,
        filters: &Filters,
    ) -> Result<u64> {
        let Some(prefix) = prefix else { return Ok(0) };
        let mut n = 0;
        for item in self.trees.by_attr.scan_prefix(prefix) {
            let (_, sid) = keys::split_time_sid(&item?.0);
            if self.load(realm, &sid)?.is_some_and(|s| filters.matches(&s)) {
                n += 1;
            }
        }
        Ok(n)
    }
}
