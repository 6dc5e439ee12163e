//! Listing a realm's sessions on the v2 layout: the plans and keyset paging of `store::query`,
//! over the records (which are the creation-order index), the last-access and expiry indexes,
//! the subject and client indexes (creation order), and the display-name word index (word order:
//! a small matching set is loaded and sorted, a large one found by walking the requested order
//! and filtering).

use std::collections::HashSet;
use std::ops::Bound;

use super::super::keys::{RealmId, Sid};
use super::super::query::{Filters, MATERIALIZE_LIMIT};
use super::super::record::{StoredSession, MAX_PREFIX_CHARS};
use super::super::results_token::Position;
use super::super::shared::KeysetPage;
use super::layout::{self, AddressKey, Attr, Counter, TimeIndex, Timeline, WordKey};
use super::realms::RealmEntry;
use super::SledStoreV2;
use crate::address::AddressRange;
use crate::error::{Result, SessionError};
use crate::model::{QueryResult, SessionQuery, SortKey};
use crate::validate;

/// Most index entries walked to intersect several filters' candidates (see `intersect`).
const INTERSECT_LIMIT: u64 = 400_000;
/// Below this many candidates for its most selective filter, a query reads those sessions and
/// checks the other filters on each rather than intersecting index entries.
const INTERSECT_FROM: u64 = 1_000;
/// What reading a session costs, in index entries walked (see [`walk_is_cheaper`]).
const READ_COST: u64 = 2;

/// Whether a page is found sooner by walking the listing's own order and testing each session
/// than by collecting all `n` candidates of the filter first: with matches spread over the
/// realm's `total` sessions, `page` of them are met after about `page × total ÷ n` sessions.
/// At 100,000 sessions, eight name-prefix searches matching up to 6,500 sessions each took
/// 4.8 ms a page at the median when their entries were collected, 0.91 ms walking; a rare prefix
/// is still collected.
fn walk_is_cheaper(n: u64, total: u64, page: usize) -> bool {
    let page = u64::try_from(page).unwrap_or(u64::MAX);
    n > 0 && page.saturating_mul(total).saturating_mul(READ_COST) / n < n
}

/// Where a listing's rows come from.
enum Source {
    /// The records themselves: every session of the realm, in creation order.
    Records,
    /// The last-access or expiry index.
    Sorted(TimeIndex),
    /// The subject, client or address index entries of one value (creation order).
    Attr(Timeline),
    /// Matching sessions loaded and sorted by position.
    Rows(Vec<(Position, StoredSession)>),
    /// Matching sessions by location (created, sid), sorted: a listing in creation order whose
    /// filters the index entries decide alone, so only the page's sessions are read.
    Located(Vec<Position>),
}

/// Index entries that name every session a filter can match (and maybe more). Each key ends with
/// (created, sid), so a creation-time filter narrows any of them.
#[derive(Clone)]
enum Candidates {
    /// The subject or client index entries of one value (creation order).
    Attr(Timeline),
    /// Word index entries of words starting with this (case-folded) prefix.
    Words(String),
    /// Client-address index entries of the addresses in this range (address, then creation
    /// order).
    Address(AddressRange),
    /// The records themselves (creation order): for a creation-time filter alone.
    Records,
}

struct Plan {
    source: Source,
    known_count: Option<u64>,
    count_under: Option<Candidates>,
    /// Whether the candidates, within the creation-time range, are exactly the matching sessions
    /// (so they are counted without reading the sessions).
    count_keys_only: bool,
}

/// One way of finding a filter's sessions.
struct Attribute {
    candidates: Candidates,
    /// How many sessions the candidates name: exact, or (for a counter, with a creation-time
    /// filter) an upper bound.
    n: u64,
    /// Whether `n` is exactly the number of sessions this filter (with the creation-time filter)
    /// matches.
    exact: bool,
    /// Whether the candidates within the creation-time range are exactly this filter's sessions.
    keys_exact: bool,
}

fn source_for(sort: SortKey) -> Source {
    match sort {
        SortKey::Created => Source::Records,
        SortKey::LastAccess => Source::Sorted(TimeIndex::LastAccess),
        SortKey::Expires => Source::Sorted(TimeIndex::Expiry),
    }
}

impl SledStoreV2 {
    /// One page of a realm's sessions; `counted`: with the exact number of matches (else 0).
    pub(super) fn run_query(
        &self,
        realm: &RealmEntry,
        q: &SessionQuery,
        counted: bool,
    ) -> Result<QueryResult> {
        validate::query_filters(q)?;
        let count = validate::page_size(q)?;
        let mut filters = Filters::from_query(q)?;
        self.find_anomalous(realm.id, &mut filters)?;
        let fingerprint = filters.fingerprint(realm.id, q.sort, count);
        let plan = self.plan(realm.id, q.sort, &filters, count as usize)?;
        let scan = |from, forward, want| -> Result<Vec<_>> {
            let rows = self.scan(
                realm.id,
                &plan.source,
                q.sort,
                from,
                forward,
                want,
                &filters,
            )?;
            Ok(rows
                .into_iter()
                .map(|(p, s)| (p, s.to_session(&realm.name)))
                .collect())
        };
        let page = KeysetPage::start(&self.results_tokens, fingerprint, q, count)?;
        let (from, forward, want) = page.walk();
        let rows = scan(from, forward, want)?;
        let beyond_edge = match page.probe(&rows) {
            Some((from, forward, want)) => !scan(from, forward, want)?.is_empty(),
            None => false,
        };
        let total = match plan.known_count {
            Some(n) => n,
            None if counted => self.count_matching(realm.id, &plan, &filters)?,
            None => 0,
        };
        Ok(page.finish(rows, beyond_edge, total))
    }

    /// Every session of the realm that matches a query's filters, in creation order.
    pub(super) fn matching_sessions(
        &self,
        realm: &RealmEntry,
        q: &SessionQuery,
    ) -> Result<Vec<StoredSession>> {
        let mut filters = Filters::from_query(q)?;
        self.find_anomalous(realm.id, &mut filters)?;
        let plan = self.plan(realm.id, SortKey::Created, &filters, usize::MAX)?;
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

    /// How a listing of `page` sessions a page finds its rows and its count.
    fn plan(&self, realm: RealmId, sort: SortKey, filters: &Filters, page: usize) -> Result<Plan> {
        let nothing = || Plan {
            source: Source::Rows(Vec::new()),
            known_count: Some(0),
            count_under: None,
            count_keys_only: false,
        };
        if filters.created.is_some_and(|c| c.is_empty()) {
            return Ok(nothing());
        }
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
                count_keys_only: false,
            });
        }
        // Counters count every creation time: with a creation-time filter they are upper bounds.
        let timeless = filters.created.is_none();
        // Device, network and anomaly filters have no entries: with one, every candidate is read
        // and tested.
        let untested = !filters.tested_in_row();
        let mut attributes: Vec<Attribute> = Vec::new();
        let counted = |candidates, key: Vec<u8>, keys_exact: bool| Attribute {
            candidates,
            n: self.counter(&key),
            exact: keys_exact && timeless && untested,
            keys_exact: keys_exact && untested,
        };
        if let Some(s) = &filters.subject {
            attributes.push(counted(
                Candidates::Attr(Timeline::attr(realm, Attr::Subject, s)),
                Counter::Subject(s).key(realm),
                true,
            ));
        }
        if let Some(c) = &filters.client {
            attributes.push(counted(
                Candidates::Attr(Timeline::attr(realm, Attr::Client, c)),
                Counter::Client(c).key(realm),
                true,
            ));
        }
        for w in &filters.name_words {
            let prefix: String = w.chars().take(MAX_PREFIX_CHARS).collect();
            let exact = prefix.len() == w.len();
            let key = Counter::NamePrefix(&prefix).key(realm);
            attributes.push(counted(Candidates::Words(prefix), key, exact));
        }
        // Ranges have no counter: their entries are counted only as far as choosing the way in
        // needs (past the cheapest counter, or past what is sorted in memory); the exact count,
        // when a page wants it, comes later.
        let cap = attributes
            .iter()
            .map(|a| a.n)
            .min()
            .unwrap_or(MATERIALIZE_LIMIT);
        if let Some(range) = filters.address {
            let candidates = Candidates::Address(range);
            let n = self.count_candidates(realm, &candidates, filters, Some(cap))?;
            attributes.push(Attribute {
                candidates,
                n,
                exact: n <= cap && untested,
                keys_exact: untested,
            });
        }
        if attributes.is_empty() && timeless && (untested || filters.only_device_in_row()) {
            // Every session, or those of a device: counted by the counters, walked in order.
            let n = if untested {
                self.counter(&Counter::Total.key(realm))
            } else {
                filters
                    .device
                    .counted_codes()
                    .into_iter()
                    .map(|code| self.counter(&Counter::Device(code).key(realm)))
                    .sum()
            };
            if n == 0 {
                return Ok(nothing());
            }
            return Ok(Plan {
                source: source_for(sort),
                known_count: Some(n),
                count_under: None,
                count_keys_only: false,
            });
        }
        if attributes.is_empty() {
            if sort == SortKey::Created {
                return Ok(Plan {
                    source: Source::Records,
                    known_count: None,
                    count_under: Some(Candidates::Records),
                    count_keys_only: untested,
                });
            }
            let n = self.count_candidates(realm, &Candidates::Records, filters, Some(cap))?;
            attributes.push(Attribute {
                candidates: Candidates::Records,
                n,
                exact: n <= cap && untested,
                keys_exact: untested,
            });
        }
        if let Some(rows) = self.intersect(realm, sort, &attributes, filters)? {
            let n = rows.len() as u64;
            return Ok(Plan {
                source: Source::Rows(rows),
                known_count: Some(n),
                count_under: None,
                count_keys_only: false,
            });
        }
        let single = attributes.len() == 1;
        let Attribute {
            candidates,
            n,
            exact,
            keys_exact,
        } = attributes
            .into_iter()
            .min_by_key(|a| a.n)
            .expect("at least one attribute");
        // A counter is an upper bound, a counted range exact: either way, none.
        if n == 0 {
            return Ok(nothing());
        }
        let total = self.counter(&Counter::Total.key(realm));
        // With several filters the matches are rarer than the chosen one's count says.
        let collect = n <= MATERIALIZE_LIMIT && !(single && walk_is_cheaper(n, total, page));
        let source = match &candidates {
            Candidates::Records if sort == SortKey::Created => Source::Records,
            Candidates::Attr(entries) if sort == SortKey::Created => Source::Attr(entries.clone()),
            Candidates::Address(r) if r.is_single() && sort == SortKey::Created => {
                Source::Attr(Timeline::address(realm, &r.first))
            }
            _ if collect && sort == SortKey::Created && single && keys_exact => {
                let mut located = self.candidates_in(realm, &candidates, filters)?;
                located.sort_unstable();
                let n = located.len() as u64;
                return Ok(Plan {
                    source: Source::Located(located),
                    known_count: Some(n),
                    count_under: None,
                    count_keys_only: false,
                });
            }
            _ if collect => {
                let mut rows = Vec::with_capacity(n as usize);
                for (created, sid) in self.candidates_in(realm, &candidates, filters)? {
                    if let Some(s) = self
                        .load_at(realm, created, &sid)?
                        .filter(|s| filters.matches(s))
                    {
                        rows.push(((s.sort_time(sort), s.sid), s));
                    }
                }
                rows.sort_by_key(|row| row.0);
                let n = rows.len() as u64;
                return Ok(Plan {
                    source: Source::Rows(rows),
                    known_count: Some(n),
                    count_under: None,
                    count_keys_only: false,
                });
            }
            _ => source_for(sort),
        };
        Ok(Plan {
            source,
            known_count: (single && exact).then_some(n),
            count_under: Some(candidates),
            count_keys_only: single && keys_exact,
        })
    }

    /// With several filters that each have index entries and none selective enough to read its
    /// sessions one by one ([`INTERSECT_FROM`]), the sessions in all of them: their entries' (created, sid) are
    /// intersected, from the smallest up, and only the sessions left are read (sorted, like a
    /// small filtered set). So "alice smi" reads the keys of both word ranges instead of every
    /// session of the rarer one. `None` when that would walk more than [`INTERSECT_LIMIT`]
    /// entries or leave more than [`MATERIALIZE_LIMIT`] sessions: then the plan walks an index.
    fn intersect(
        &self,
        realm: RealmId,
        sort: SortKey,
        attributes: &[Attribute],
        filters: &Filters,
    ) -> Result<Option<Vec<(Position, StoredSession)>>> {
        let smallest = attributes.iter().map(|a| a.n).min().unwrap_or(0);
        let walked: u64 = attributes.iter().map(|a| a.n).sum();
        if attributes.len() < 2 || smallest <= INTERSECT_FROM || walked > INTERSECT_LIMIT {
            return Ok(None);
        }
        let mut by_size: Vec<&Attribute> = attributes.iter().collect();
        by_size.sort_by_key(|a| a.n);
        let mut left: HashSet<(i64, Sid)> = self
            .candidates_in(realm, &by_size[0].candidates, filters)?
            .into_iter()
            .collect();
        for a in &by_size[1..] {
            let mut both = HashSet::with_capacity(left.len().min(a.n as usize));
            self.walk_candidates(realm, &a.candidates, filters, |loc| {
                if left.contains(&loc) {
                    both.insert(loc);
                }
                true
            })?;
            left = both;
        }
        if left.len() as u64 > MATERIALIZE_LIMIT {
            return Ok(None);
        }
        let mut rows = Vec::with_capacity(left.len());
        for (created, sid) in left {
            if let Some(s) = self
                .load_at(realm, created, &sid)?
                .filter(|s| filters.matches(s))
            {
                rows.push(((s.sort_time(sort), s.sid), s));
            }
        }
        rows.sort_by_key(|row| row.0);
        Ok(Some(rows))
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
        let descending = sort != SortKey::Expires;
        let key_reverse = forward == descending;
        let beyond = |p: &Position| match from {
            None => true,
            Some((f, inclusive)) => {
                (inclusive && *p == f) || if key_reverse { *p < f } else { *p > f }
            }
        };
        let entries = match source {
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
            Source::Located(located) => {
                let iter: Box<dyn Iterator<Item = _>> = if key_reverse {
                    Box::new(located.iter().rev())
                } else {
                    Box::new(located.iter())
                };
                let mut out = Vec::with_capacity(want.min(located.len()));
                for &(created, sid) in iter.filter(|p| beyond(p)) {
                    if out.len() == want {
                        break;
                    }
                    // Gone since the plan was made: passed over, as a walk of an index would.
                    if let Some(s) = self.load_at(realm, created, &sid)? {
                        out.push(((created, sid), s));
                    }
                }
                return Ok(out);
            }
            Source::Records => Timeline::records(realm),
            Source::Sorted(index) => Timeline::index(realm, *index),
            Source::Attr(entries) => entries.clone(),
        };
        let key_at = |(t, sid): &Position| entries.key(*t, sid);
        let (mut lower, mut upper) = match (source, filters.created) {
            // Records and attribute entries are in creation order: the filter is a key range.
            (Source::Records | Source::Attr(_), Some(c)) => entries.between(c.from, c.until),
            _ => entries.all(),
        };
        // A position comes from a session that passed the filters, so it is within the range.
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
        let mut out = Vec::new();
        let mut range = self.tree.range::<Vec<u8>, _>((lower, upper));
        while out.len() < want {
            let item = if key_reverse {
                range.next_back()
            } else {
                range.next()
            };
            let Some(item) = item else { break };
            let (key, value) = item?;
            let Some(position) = entries.position(&key) else {
                continue;
            };
            let session = match source {
                Source::Records => Some(self.decode(position.0, &position.1, &value)?),
                Source::Attr(_) => self.load_at(realm, position.0, &position.1)?,
                _ => {
                    let created = locator_created(&position.1, &value)?;
                    self.load_at(realm, created, &position.1)?
                }
            };
            if let Some(s) = session.filter(|s| filters.matches(s)) {
                out.push((position, s));
            }
        }
        Ok(out)
    }

    /// Counts matching sessions among the candidates: their entries alone when they answer
    /// every filter, otherwise by reading each session.
    fn count_matching(&self, realm: RealmId, plan: &Plan, filters: &Filters) -> Result<u64> {
        let Some(c) = &plan.count_under else {
            return Ok(0);
        };
        if plan.count_keys_only {
            return self.count_candidates(realm, c, filters, None);
        }
        let mut n = 0;
        for (created, sid) in self.candidates_in(realm, c, filters)? {
            if self
                .load_at(realm, created, &sid)?
                .is_some_and(|s| filters.matches(&s))
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The distinct (created, sid) of the sessions the candidates' index entries name, within
    /// the filters' creation-time range.
    fn candidates_in(
        &self,
        realm: RealmId,
        c: &Candidates,
        filters: &Filters,
    ) -> Result<Vec<(i64, Sid)>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        self.walk_candidates(realm, c, filters, |loc| {
            if seen.insert(loc) {
                out.push(loc);
            }
            true
        })?;
        Ok(out)
    }

    /// How many distinct sessions the candidates name within the creation-time range; once past
    /// `cap`, `cap + 1`.
    fn count_candidates(
        &self,
        realm: RealmId,
        c: &Candidates,
        filters: &Filters,
        cap: Option<u64>,
    ) -> Result<u64> {
        let limit = cap.map_or(u64::MAX, |n| n.saturating_add(1));
        let mut n = 0;
        // Only word entries can name a session twice (two of its words share the prefix).
        let mut seen = HashSet::new();
        let words = matches!(c, Candidates::Words(_));
        self.walk_candidates(realm, c, filters, |loc| {
            if !words || seen.insert(loc) {
                n += 1;
            }
            n < limit
        })?;
        Ok(n)
    }

    /// Calls `each` with the (created, sid) of every candidate entry within the creation-time
    /// range, in key order, while it answers true.
    fn walk_candidates(
        &self,
        realm: RealmId,
        c: &Candidates,
        filters: &Filters,
        mut each: impl FnMut((i64, Sid)) -> bool,
    ) -> Result<()> {
        let in_created = |entries: &Timeline| match filters.created {
            Some(c) => entries.between(c.from, c.until),
            None => entries.all(),
        };
        let records = Timeline::records(realm);
        let range = match c {
            Candidates::Attr(entries) => in_created(entries),
            Candidates::Records => in_created(&records),
            Candidates::Words(w) => WordKey::range(realm, w),
            Candidates::Address(r) => AddressKey::range(realm, &r.first, &r.last),
        };
        for k in self.tree.range::<Vec<u8>, _>(range).keys() {
            let k = k?;
            let loc = match c {
                Candidates::Attr(entries) => entries.position(&k),
                Candidates::Records => records.position(&k),
                Candidates::Words(_) => WordKey::decode(&k).map(|e| (e.created_ms, e.sid)),
                Candidates::Address(_) => AddressKey::decode(&k).map(|e| (e.created_ms, e.sid)),
            };
            let Some(loc) = loc else {
                return Err(SessionError::Storage("bad index key".into()));
            };
            if filters.created.is_some_and(|t| !t.contains(loc.0)) {
                continue;
            }
            if !each(loc) {
                break;
            }
        }
        Ok(())
    }
}

/// The creation time of the session a last-access or expiry entry names: from its sid, or for a
/// legacy sid from the entry's value.
pub(super) fn locator_created(sid: &Sid, value: &[u8]) -> Result<i64> {
    match layout::created_of_sid(sid) {
        Some(ms) if value.is_empty() => Ok(ms),
        _ => layout::created_from_value(value)
            .ok_or_else(|| SessionError::Storage("bad sort index entry".into())),
    }
}
