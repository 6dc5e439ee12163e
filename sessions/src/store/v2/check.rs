//! The offline consistency check of the v2 layout: every count is recounted from the records
//! (sessions, deliveries, ended-session entries), every record's index entries are looked up, and every index entry is
//! checked to point at a record that implies it. With `repair`, missing entries are written,
//! stray ones removed, and the counters replaced by the recount (and checkpointed). Activity
//! counters ([`crate::stats`]) count events, not records, so they are neither checked nor
//! replaced.

use std::collections::{BTreeMap, HashMap};

use sled::Batch;

use super::super::grants::StoredGrant;
use super::super::keys::{RealmId, Sid};
use super::super::outbox;
use super::super::record::{sid_to_string, StoredSession};
use super::super::CheckReport;
use super::counters::{self, Deltas};
use super::ended::{ended_entries, EndedRecord};
use super::grants::grant_entries;
use super::layout::{
    self, AddressKey, AttrKey, Counter, CounterKey, DeliveryKey, DeliveryStatusKey,
};
use super::layout::{EndedKey, EndedSidKey, EndedSubjectKey, LegacyTokenKey, QueueKey, SessionKey};
use super::layout::{GrantIndexKey, GrantKey, GrantLocator, GrantTokenKey, LegacySidKey};
use super::layout::{SessionLocator, Tag, TimeIndexKey, WordKey, GLOBAL};
use super::outbox::delivery_index;
use super::query::locator_created;
use super::sessions::index_entries;
use super::SledStoreV2;
use crate::delivery::Delivery;
use crate::error::Result;

/// Every counter, recounted from the records (sessions and deliveries) of the known realms.
pub(super) fn recount(store: &SledStoreV2) -> Result<Vec<(Vec<u8>, i64)>> {
    let realms: Vec<RealmId> = store.realm_names().into_keys().collect();
    let counters = counters::Counters::default();
    for realm in realms {
        let mut deltas = Deltas::default();
        for item in store.tree.scan_prefix(SessionKey::prefix(realm)) {
            let (k, v) = item?;
            let Some(key) = SessionKey::decode(&k) else {
                continue;
            };
            if let Ok(s) = store.decode(key.created_ms, &key.sid, &v) {
                deltas.session(realm, &s, true);
            }
        }
        for v in store.tree.scan_prefix(DeliveryKey::prefix(realm)).values() {
            if let Ok(d) = outbox::decode(&v?) {
                deltas.counter(Counter::Deliveries(d.status).key(realm), 1);
            }
        }
        for v in store.tree.scan_prefix(EndedKey::prefix(realm)).values() {
            if let Ok(how) = EndedRecord::decode(&v?).and_then(|r| r.how()) {
                deltas.counter(Counter::Ended(how).key(realm), 1);
            }
        }
        counters.apply(&deltas);
    }
    Ok(counters.snapshot())
}

struct Checker<'a> {
    store: &'a SledStoreV2,
    names: HashMap<RealmId, String>,
    report: CheckReport,
    fix: Batch,
    fixes: usize,
}

impl Checker<'_> {
    fn realm(&self, realm: RealmId) -> String {
        match self.names.get(&realm) {
            Some(name) => format!("realm '{name}'"),
            None => format!("unknown realm #{realm}"),
        }
    }

    fn problem(&mut self, line: String) {
        self.report.problems.push(line);
    }

    fn put(&mut self, k: &[u8], v: &[u8]) {
        self.fix.insert(k, v);
        self.fixes += 1;
    }

    fn remove(&mut self, k: &[u8]) {
        self.fix.remove(k);
        self.fixes += 1;
    }

    /// Checks that the entries a record implies are stored with the right values.
    fn expect_entries(&mut self, what: &str, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        for (k, v) in entries {
            match self.store.tree.get(&k)? {
                Some(have) if have.as_ref() == v.as_slice() => {}
                Some(_) => {
                    self.problem(format!("{what}: index entry {} has a wrong value", hex(&k)));
                    self.put(&k, &v);
                }
                None => {
                    self.problem(format!("{what}: index entry {} is missing", hex(&k)));
                    self.put(&k, &v);
                }
            }
        }
        Ok(())
    }

    /// The session a record key names, if it is stored and readable.
    fn session(&self, realm: RealmId, created: i64, sid: &Sid) -> Result<Option<StoredSession>> {
        Ok(self
            .store
            .tree
            .get(
                SessionKey {
                    realm,
                    created_ms: created,
                    sid: *sid,
                }
                .encode(),
            )?
            .and_then(|v| self.store.decode(created, sid, &v).ok()))
    }

    /// Whether the index entry `k` (with value `v`) is one of those `s` implies.
    fn implied_by_session(s: Option<StoredSession>, realm: RealmId, k: &[u8], v: &[u8]) -> bool {
        s.is_some_and(|s| {
            index_entries(realm, &s)
                .get(k)
                .is_some_and(|want| want.as_slice() == v)
        })
    }

    fn grant(&self, realm: RealmId, id: &[u8; 16]) -> Option<StoredGrant> {
        self.store.load_grant(realm, id).ok().flatten()
    }

    /// Whether the history entry under `key` has the index entry `k` with value `v`.
    fn ended_implies(&self, key: EndedKey, k: &[u8], v: &[u8]) -> Result<bool> {
        Ok(self.store.ended_record(&key)?.is_some_and(|rec| {
            ended_entries(&key, &rec)
                .iter()
                .any(|(x, y)| x == k && y == v)
        }))
    }

    fn delivery(&self, realm: RealmId, id: u64) -> Option<Delivery> {
        self.store
            .tree
            .get(DeliveryKey { realm, id }.encode())
            .ok()
            .flatten()
            .and_then(|v| outbox::decode(&v).ok())
    }

    /// Checks one key that is not a record: that what it names exists and implies it.
    fn index_key(&mut self, realm: RealmId, tag: Option<Tag>, k: &[u8], v: &[u8]) -> Result<()> {
        let agrees = if realm == GLOBAL {
            match tag {
                Some(Tag::Queue) => match QueueKey::decode(k) {
                    Some(e) => self
                        .delivery(e.realm, e.id)
                        .is_some_and(|d| delivery_index(e.realm, &d).iter().any(|x| x == k)),
                    None => false,
                },
                Some(Tag::LegacyToken) => {
                    match (LegacyTokenKey::decode(k), SessionLocator::decode(v)) {
                        (Some(_), Some(at)) => {
                            let s = self.session(at.realm, at.created_ms, &at.sid)?;
                            Self::implied_by_session(s, at.realm, k, v)
                        }
                        _ => false,
                    }
                }
                Some(Tag::GrantToken) => {
                    match (GrantTokenKey::decode(k), GrantLocator::decode(v)) {
                        (Some(_), Some(at)) => self.grant(at.realm, &at.id).is_some_and(|g| {
                            grant_entries(at.realm, &g)
                                .iter()
                                .any(|(x, y)| x == k && y == v)
                        }),
                        _ => false,
                    }
                }
                Some(
                    Tag::Meta
                    | Tag::Realm
                    | Tag::Audit
                    | Tag::Journal
                    | Tag::Checkpoint
                    | Tag::Counter
                    | Tag::Intern,
                ) => true,
                _ => false,
            }
        } else {
            // The session an entry of the session indexes names: (created, sid), or the sid and
            // where its creation time is.
            let located = match tag {
                Some(Tag::LastAccess | Tag::Expiry) => {
                    TimeIndexKey::decode(k).map(|e| (locator_created(&e.sid, v).ok(), e.sid))
                }
                Some(Tag::Subject | Tag::Client) => {
                    AttrKey::decode(k).map(|e| (Some(e.created_ms), e.sid))
                }
                Some(Tag::Word) => WordKey::decode(k).map(|e| (Some(e.created_ms), e.sid)),
                Some(Tag::Address) => AddressKey::decode(k).map(|e| (Some(e.created_ms), e.sid)),
                Some(Tag::LegacySid) => {
                    LegacySidKey::decode(k).map(|e| (layout::created_from_value(v), e.sid))
                }
                _ => None,
            };
            match (tag, located) {
                (_, Some((Some(created), sid))) => {
                    let s = self.session(realm, created, &sid)?;
                    Self::implied_by_session(s, realm, k, v)
                }
                (_, Some((None, _))) => false,
                (Some(Tag::GrantIndex), _) => match GrantIndexKey::decode(k) {
                    Some(e) => self
                        .grant(realm, &e.id)
                        .is_some_and(|g| grant_entries(realm, &g).iter().any(|(x, _)| x == k)),
                    None => false,
                },
                (Some(Tag::DeliveryStatus), _) => match DeliveryStatusKey::decode(k) {
                    Some(e) => self
                        .delivery(realm, e.id)
                        .is_some_and(|d| delivery_index(realm, &d).iter().any(|x| x == k)),
                    None => false,
                },
                (Some(Tag::ClientReg), _) => true,
                (Some(Tag::EndedSubject), _) => match EndedSubjectKey::decode(k) {
                    Some(e) => self.ended_implies(
                        EndedKey {
                            realm,
                            ended_ms: e.ended_ms,
                            sid: e.sid,
                        },
                        k,
                        v,
                    )?,
                    None => false,
                },
                (Some(Tag::EndedSid), _) => {
                    match (EndedSidKey::decode(k), EndedSidKey::ended_of(v)) {
                        (Some(e), Some(ended_ms)) => self.ended_implies(
                            EndedKey {
                                realm,
                                ended_ms,
                                sid: e.sid,
                            },
                            k,
                            v,
                        )?,
                        _ => false,
                    }
                }
                _ => false,
            }
        };
        if !agrees {
            self.problem(format!(
                "index entry {} in {} names no record that has it",
                hex(k),
                self.realm(realm)
            ));
            self.remove(k);
        }
        Ok(())
    }
}

impl SledStoreV2 {
    /// Checks, with nothing else writing to the store, that every count equals a recount from
    /// the records, every index entry points at a record that has it and every record has all
    /// its index entries. With `repair`, rewrites the index entries and counters from the
    /// records and waits until that is on disk; a second check then finds nothing, unless a
    /// record itself cannot be read (such records are reported and left as they are).
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        let mut c = Checker {
            store: self,
            names: self.realm_names(),
            report: CheckReport::default(),
            fix: Batch::default(),
            fixes: 0,
        };
        let mut expected = Deltas::default();
        for item in self.tree.iter() {
            let (k, v) = item?;
            let Some((realm, tag)) = layout::head(&k) else {
                c.problem(format!("key {} has no known layout", hex(&k)));
                c.remove(&k);
                continue;
            };
            match tag {
                Some(Tag::Record) if realm != GLOBAL => {
                    let Some(key) = SessionKey::decode(&k) else {
                        c.problem(format!("record key {} has a wrong length", hex(&k)));
                        continue;
                    };
                    let (created, sid) = (key.created_ms, key.sid);
                    let what = format!("session {} in {}", sid_to_string(&sid), c.realm(realm));
                    match self.decode(created, &sid, &v) {
                        Ok(s) => {
                            c.report.sessions += 1;
                            c.expect_entries(
                                &what,
                                index_entries(realm, &s).into_iter().collect(),
                            )?;
                            expected.session(realm, &s, true);
                        }
                        Err(e) => c.problem(format!("{what} cannot be read: {e}")),
                    }
                }
                Some(Tag::Grant) if realm != GLOBAL => {
                    let key = GrantKey::decode(&k);
                    let id = sid_to_string(&key.map_or([0; 16], |key| key.id));
                    let what = format!("grant {id} in {}", c.realm(realm));
                    match StoredGrant::decode(&v) {
                        Ok(g) if key == Some(GrantKey { realm, id: g.id }) => {
                            c.report.grants += 1;
                            c.expect_entries(&what, grant_entries(realm, &g))?;
                        }
                        Ok(_) => c.problem(format!("{what} is stored under another key")),
                        Err(e) => c.problem(format!("{what} cannot be read: {e}")),
                    }
                }
                Some(Tag::Delivery) if realm != GLOBAL => {
                    let key = DeliveryKey::decode(&k);
                    let id = key.map_or_else(|| hex(&k), |key| format!("{:016x}", key.id));
                    let what = format!("delivery {id} in {}", c.realm(realm));
                    match outbox::decode(&v) {
                        Ok(d) if key == Some(DeliveryKey { realm, id: d.id }) => {
                            c.report.deliveries += 1;
                            let entries = delivery_index(realm, &d)
                                .into_iter()
                                .map(|k| (k, Vec::new()))
                                .collect();
                            c.expect_entries(&what, entries)?;
                            expected.counter(Counter::Deliveries(d.status).key(realm), 1);
                        }
                        Ok(_) => c.problem(format!("{what} is stored under another key")),
                        Err(e) => c.problem(format!("{what} cannot be read: {e}")),
                    }
                }
                Some(Tag::Ended) if realm != GLOBAL => {
                    let key = EndedKey::decode(&k);
                    let what = format!("ended-session entry {} in {}", hex(&k), c.realm(realm));
                    match (key, EndedRecord::decode(&v)) {
                        (Some(key), Ok(rec)) => match rec.how() {
                            Ok(how) => {
                                c.report.ended += 1;
                                c.expect_entries(&what, ended_entries(&key, &rec))?;
                                expected.counter(Counter::Ended(how).key(realm), 1);
                            }
                            Err(e) => c.problem(format!("{what} cannot be read: {e}")),
                        },
                        (None, _) => c.problem(format!("{what} has a wrong length")),
                        (_, Err(e)) => c.problem(format!("{what} cannot be read: {e}")),
                    }
                }
                _ => c.index_key(realm, tag, &k, &v)?,
            }
        }
        // Counters: what the records say against what the store answers.
        let recounted = counters::Counters::default();
        recounted.apply(&expected);
        let mut want: BTreeMap<Vec<u8>, i64> = recounted.snapshot().into_iter().collect();
        // Activity counters record events, not records: nothing to recount them from, so they
        // are kept as they are.
        let (series, have): (BTreeMap<Vec<u8>, i64>, BTreeMap<Vec<u8>, i64>) = self
            .counters
            .snapshot()
            .into_iter()
            .partition(|(k, _)| counters::parse_stats_key(k, 0).is_some());
        let mut counters_wrong = false;
        for k in want
            .keys()
            .chain(have.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (w, h) = (
                want.get(k).copied().unwrap_or(0),
                have.get(k).copied().unwrap_or(0),
            );
            if w != h {
                counters_wrong = true;
                let line = format!(
                    "{} is {h}, the records say {w}",
                    describe_counter(k, &c.names)
                );
                c.problem(line);
            }
        }
        if repair && (c.fixes > 0 || counters_wrong) {
            let fix = std::mem::take(&mut c.fix);
            self.tree.apply_batch(fix)?;
            if counters_wrong {
                let _all = self.journal.write().unwrap_or_else(|e| e.into_inner());
                want.extend(series);
                self.counters.replace(want);
            }
            self.checkpoint_all()?;
            self.wait_durable()?;
            c.report.repaired = true;
        }
        Ok(c.report)
    }
}

/// A counter as problems name it.
fn describe_counter(k: &[u8], names: &HashMap<RealmId, String>) -> String {
    let Some(CounterKey { realm, counter }) = CounterKey::decode(k) else {
        return format!("counter {}", hex(k));
    };
    let realm = match names.get(&realm) {
        Some(n) => format!("realm '{n}'"),
        None => format!("unknown realm #{realm}"),
    };
    match counter {
        Counter::Total => format!("session count of {realm}"),
        Counter::Subject(s) => format!("session count of subject '{s}' in {realm}"),
        Counter::Client(c) => format!("session count of client '{c}' in {realm}"),
        Counter::NamePrefix(p) => format!("session count of name prefix '{p}' in {realm}"),
        Counter::Deliveries(status) => format!(
            "delivery count (status {:02x}) of {realm}",
            layout::status_code(status)
        ),
        Counter::Ended(how) => format!("ended-session count ({}) of {realm}", how.as_str()),
        Counter::Device(code) => format!(
            "session count of device '{}' in {realm}",
            crate::device::Device::from_code(code).label()
        ),
        Counter::Stats { .. } => format!("counter {} of {realm}", hex(k)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
