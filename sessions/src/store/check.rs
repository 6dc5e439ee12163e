//! The offline consistency check: every index entry and counter is recomputed from the records
//! (sessions, grants, deliveries), which are the truth, and compared with what is stored.
//!
//! It walks each tree once. Records are checked for their index entries by point lookups, index
//! entries for their record the same way; only the counters are gathered in memory (keyed maps,
//! one number per realm, attribute, session with grants, and realm and delivery status). With
//! `repair`, a missing entry is written as it is found, a stray one removed once its tree has
//! been walked, and every counter set to what the records say.

use std::collections::{BTreeMap, HashMap};

use sled::{IVec, Tree};

use super::grants::{self, StoredGrant};
use super::keys::{self, AttrKind, RealmId, Sid};
use super::outbox::{self, IndexKey};
use super::record::{from_ms, sid_to_string, IndexEntry, StoredSession};
use super::sled_store::SledStoreV1;
use crate::delivery::Delivery;
use crate::error::Result;
use crate::model::SortKey;

/// What [`SledStoreV1::check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Session records read.
    pub sessions: u64,
    /// Grant records read.
    pub grants: u64,
    /// Delivery records read.
    pub deliveries: u64,
    /// One line per difference between the records and their index entries or counters, and per
    /// record that cannot be read (repair leaves those records as they are).
    pub problems: Vec<String>,
    /// Whether the check rewrote index entries or counters to agree with the records.
    pub repaired: bool,
}

/// The check as it goes: the report, and the writes a repair makes.
struct Checker<'a> {
    store: &'a SledStoreV1,
    repair: bool,
    realm_names: HashMap<RealmId, String>,
    report: CheckReport,
}

impl Checker<'_> {
    fn problem(&mut self, line: String) {
        self.report.problems.push(line);
    }

    /// A realm as problems name it.
    fn realm(&self, realm: RealmId) -> String {
        match self.realm_names.get(&realm) {
            Some(name) => format!("realm '{name}'"),
            None => format!("unknown realm #{realm}"),
        }
    }

    fn session(&self, realm: RealmId, sid: &Sid) -> String {
        format!("session {} in {}", sid_to_string(sid), self.realm(realm))
    }

    fn grant(&self, realm: RealmId, id: &[u8; 16]) -> String {
        format!("grant {} in {}", sid_to_string(id), self.realm(realm))
    }

    /// Writes a missing or wrong entry, when repairing.
    fn put(&mut self, tree: &Tree, key: &[u8], value: &[u8]) -> Result<()> {
        if self.repair {
            tree.insert(key, value)?;
            self.report.repaired = true;
        }
        Ok(())
    }

    /// Removes stray entries of a tree that has been walked, when repairing.
    fn remove_stray(&mut self, tree: &Tree, stray: Vec<IVec>) -> Result<()> {
        if self.repair && !stray.is_empty() {
            for k in stray {
                tree.remove(k)?;
            }
            self.report.repaired = true;
        }
        Ok(())
    }

    /// The session stored under a record key, if it can be read and belongs there.
    fn session_at(&self, key: &[u8]) -> Result<Option<StoredSession>> {
        record_at(&self.store.trees.sessions, key)
    }

    /// The grant stored under a record key, likewise.
    fn grant_at(&self, key: &[u8]) -> Result<Option<StoredGrant>> {
        record_at(&self.store.trees.grants, key)
    }

    /// A record met walking its tree, with its realm; `None` (and a problem, the record left as
    /// it is) if it cannot be read or does not belong under its key.
    fn read<T: Record>(&mut self, key: &[u8], value: &[u8]) -> Option<(RealmId, T)> {
        let problem = match (realm_of(key), T::decode(value)) {
            (Some(realm), Ok(r)) if r.key(realm) == key => return Some((realm, r)),
            (_, Ok(r)) => format!("holds {} {}", T::KIND, r.id_text()),
            (_, Err(e)) => format!("cannot be read: {e}"),
        };
        self.problem(format!(
            "{} record under key {}: {problem}",
            T::KIND,
            hex(key)
        ));
        None
    }

    /// Checks every session record's token entry and index entries; answers the counters the
    /// records imply.
    fn session_records(&mut self) -> Result<BTreeMap<Vec<u8>, u64>> {
        let t = &self.store.trees;
        let mut counts = BTreeMap::new();
        for item in t.sessions.iter() {
            let (key, v) = item?;
            self.report.sessions += 1;
            let Some((realm, s)) = self.read::<StoredSession>(&key, &v) else {
                continue;
            };
            let name = self.session(realm, &s.sid);
            *counts
                .entry(keys::realm_count_key(realm).to_vec())
                .or_default() += 1;
            match t.tokens.get(s.token_hash)? {
                Some(k) if k == key => {}
                found => {
                    let what = if found.is_some() {
                        "names another session"
                    } else {
                        "is missing"
                    };
                    self.problem(format!("{name}: its token index entry {what}"));
                    self.put(&t.tokens, &s.token_hash, &key)?;
                }
            }
            for e in s.index_entries(realm) {
                let (tree, k) = match &e {
                    IndexEntry::Sorted(sort, k) => (t.sorted(*sort), &k[..]),
                    IndexEntry::Attr { key, counter } => {
                        *counts.entry(counter.clone()).or_default() += 1;
                        (&t.by_attr, &key[..])
                    }
                };
                if !tree.contains_key(k)? {
                    self.problem(format!("{name}: its {} is missing", describe(&e)));
                    self.put(tree, k, &[])?;
                }
            }
        }
        Ok(counts)
    }

    /// Checks every grant record's token entry and index entries; answers how many grants each
    /// session (by its grant-generation counter key) holds.
    fn grant_records(&mut self) -> Result<HashMap<[u8; 21], u64>> {
        let t = &self.store.trees;
        let mut per_session = HashMap::new();
        for item in t.grants.iter() {
            let (key, v) = item?;
            self.report.grants += 1;
            let Some((realm, g)) = self.read::<StoredGrant>(&key, &v) else {
                continue;
            };
            let name = self.grant(realm, &g.id);
            if let Some(h) = &g.token_hash {
                match t.grant_tokens.get(h)? {
                    Some(k) if k == key => {}
                    found => {
                        let what = if found.is_some() {
                            "names another grant"
                        } else {
                            "is missing"
                        };
                        self.problem(format!("{name}: its token index entry {what}"));
                        self.put(&t.grant_tokens, h, &key)?;
                    }
                }
            }
            for k in g.index_keys(realm) {
                if !t.grant_index.contains_key(&k)? {
                    self.problem(format!(
                        "{name}: its grant index entry {} is missing",
                        hex(&k)
                    ));
                    self.put(&t.grant_index, &k, &[])?;
                }
            }
            if let Some(sid) = &g.sid {
                *per_session
                    .entry(grants::session_grants_counter(realm, sid))
                    .or_default() += 1;
            }
        }
        Ok(per_session)
    }

    /// Checks every delivery record's index entries; answers the status counters the records
    /// imply.
    fn delivery_records(&mut self) -> Result<BTreeMap<Vec<u8>, u64>> {
        let t = &self.store.trees;
        let mut counts = BTreeMap::new();
        for item in t.outbox.iter() {
            let (key, v) = item?;
            self.report.deliveries += 1;
            let Some((realm, d)) = self.read::<Delivery>(&key, &v) else {
                continue;
            };
            *counts
                .entry(outbox::count_key(realm, d.status))
                .or_default() += 1;
            for k in outbox::index_keys(realm, &d) {
                if !t.outbox_index.contains_key(&k)? {
                    let name = format!("delivery {} in {}", d.id, self.realm(realm));
                    self.problem(format!(
                        "{name}: its outbox index entry {} is missing",
                        hex(&k)
                    ));
                    self.put(&t.outbox_index, &k, &[])?;
                }
            }
        }
        Ok(counts)
    }

    /// Checks that every session token entry names the session that holds that token.
    fn session_tokens(&mut self) -> Result<()> {
        let t = &self.store.trees;
        let mut stray = Vec::new();
        for item in t.tokens.iter() {
            let (hash, key) = item?;
            let session = self.session_at(&key)?;
            if session.is_none_or(|s| s.token_hash[..] != hash[..]) {
                self.problem(format!(
                    "token index entry {} names no session holding that token",
                    hex(&hash[..8.min(hash.len())])
                ));
                stray.push(hash);
            }
        }
        self.remove_stray(&t.tokens, stray)
    }

    /// Checks that every entry of the sort and attribute indexes agrees with its session.
    fn session_indexes(&mut self) -> Result<()> {
        let t = &self.store.trees;
        for (sort, tree) in [
            (SortKey::Created, &t.by_created),
            (SortKey::LastAccess, &t.by_last_access),
            (SortKey::Expires, &t.by_expiry),
        ] {
            let mut stray = Vec::new();
            for item in tree.iter() {
                let (k, _) = item?;
                let agrees = match (k.len() == keys::SORT_KEY_LEN)
                    .then(|| realm_of(&k))
                    .flatten()
                {
                    Some(realm) => {
                        let (_, sid) = keys::split_time_sid(&k);
                        self.session_at(&keys::session_key(realm, &sid))?
                            .is_some_and(|s| {
                                keys::sort_key(realm, s.sort_time(sort), &sid)[..] == k[..]
                            })
                    }
                    None => false,
                };
                if !agrees {
                    self.problem(format!(
                        "{} entry {} does not match a session",
                        index_name(sort),
                        describe_sort_key(&k)
                    ));
                    stray.push(k);
                }
            }
            self.remove_stray(tree, stray)?;
        }
        let mut stray = Vec::new();
        for item in t.by_attr.iter() {
            let (k, _) = item?;
            let agrees = match realm_of(&k).filter(|_| k.len() >= 6 + 24) {
                Some(realm) => {
                    let (_, sid) = keys::split_time_sid(&k);
                    self.session_at(&keys::session_key(realm, &sid))?
                        .is_some_and(|s| {
                            s.index_entries(realm).iter().any(
                                |e| matches!(e, IndexEntry::Attr { key, .. } if key[..] == k[..]),
                            )
                        })
                }
                None => false,
            };
            if !agrees {
                self.problem(format!(
                    "attribute index entry {} does not match a session",
                    hex(&k)
                ));
                stray.push(k);
            }
        }
        self.remove_stray(&t.by_attr, stray)
    }

    /// Checks that every grant token entry and grant index entry agrees with its grant.
    fn grant_indexes(&mut self) -> Result<()> {
        let t = &self.store.trees;
        let mut stray = Vec::new();
        for item in t.grant_tokens.iter() {
            let (hash, key) = item?;
            let grant = self.grant_at(&key)?;
            if grant.is_none_or(|g| g.token_hash.is_none_or(|h| h[..] != hash[..])) {
                self.problem(format!(
                    "grant token index entry {} names no grant holding that token",
                    hex(&hash[..8.min(hash.len())])
                ));
                stray.push(hash);
            }
        }
        self.remove_stray(&t.grant_tokens, stray)?;
        let mut stray = Vec::new();
        for item in t.grant_index.iter() {
            let (k, _) = item?;
            let agrees = match realm_of(&k).filter(|_| k.len() >= 4 + 1 + 16) {
                Some(realm) => {
                    let id = grants::id_of_index_key(&k);
                    self.grant_at(&grants::grant_key(realm, &id))?
                        .is_some_and(|g| g.index_keys(realm).iter().any(|x| x[..] == k[..]))
                }
                None => false,
            };
            if !agrees {
                self.problem(format!(
                    "grant index entry {} does not match a grant",
                    hex(&k)
                ));
                stray.push(k);
            }
        }
        self.remove_stray(&t.grant_index, stray)
    }

    /// Checks every outbox index entry against its delivery and every status counter against
    /// the records' `expected` counts.
    fn outbox_index(&mut self, mut expected: BTreeMap<Vec<u8>, u64>) -> Result<()> {
        let t = &self.store.trees;
        let mut stray = Vec::new();
        let mut wrong = Vec::new();
        for item in t.outbox_index.iter() {
            let (k, v) = item?;
            match IndexKey::parse(&k) {
                Some(IndexKey::Entry { realm, id }) => {
                    let delivery: Option<Delivery> =
                        record_at(&t.outbox, &outbox::delivery_key(realm, id))?;
                    let agrees = delivery.is_some_and(|d| {
                        outbox::index_keys(realm, &d).iter().any(|x| x[..] == k[..])
                    });
                    if !agrees {
                        self.problem(format!(
                            "outbox index entry {} does not match delivery {id} in {}",
                            hex(&k),
                            self.realm(realm)
                        ));
                        stray.push(k);
                    }
                }
                Some(IndexKey::Count { realm, status }) => {
                    let want = expected.remove(&k[..]).unwrap_or(0);
                    if counter(&v) != Some(want) {
                        let what = format!(
                            "{} deliveries counter of {}",
                            status.as_str(),
                            self.realm(realm)
                        );
                        self.problem(format!("{what} is {}, the records say {want}", shown(&v)));
                        wrong.push((k, want));
                    }
                }
                None => {
                    self.problem(format!("outbox index key {} has no known layout", hex(&k)));
                    stray.push(k);
                }
            }
        }
        for (k, want) in expected {
            let (realm, status) = match IndexKey::parse(&k) {
                Some(IndexKey::Count { realm, status }) => (realm, status),
                _ => unreachable!("expected counters are count keys"),
            };
            self.problem(format!(
                "{} deliveries counter of {} is missing, the records say {want}",
                status.as_str(),
                self.realm(realm)
            ));
            wrong.push((k.into(), want));
        }
        self.remove_stray(&t.outbox_index, stray)?;
        for (k, want) in wrong {
            // A status counter stays stored at zero, as the outbox keeps it.
            self.put(&t.outbox_index, &k, &want.to_be_bytes())?;
        }
        Ok(())
    }

    /// Checks every counter in `counts`: session counts against the records' `expected` ones,
    /// grant generations against the sessions and their grants (`per_session`).
    fn counters(
        &mut self,
        mut expected: BTreeMap<Vec<u8>, u64>,
        mut per_session: HashMap<[u8; 21], u64>,
    ) -> Result<()> {
        let t = &self.store.trees;
        // Key, value to store (`None`: remove).
        let mut fixes: Vec<(Vec<u8>, Option<u64>)> = Vec::new();
        for item in t.counts.iter() {
            let (k, v) = item?;
            if let Some((realm, sid)) = generation_of(&k) {
                // A generation is not a count (it never goes down), but it is at least the
                // number of grants the session holds, and only a live session has one.
                let holds = per_session.remove(&k[..]).unwrap_or(0);
                let session = self.session(realm, &sid);
                if self.session_at(&keys::session_key(realm, &sid))?.is_none() {
                    self.problem(format!(
                        "{session} does not exist but has a grant generation counter"
                    ));
                    fixes.push((k.to_vec(), None));
                } else if counter(&v).is_none_or(|n| n < holds) {
                    self.problem(format!(
                        "{session}: grant generation {} is below the {holds} grants it holds",
                        shown(&v)
                    ));
                    fixes.push((k.to_vec(), Some(holds)));
                }
                continue;
            }
            let want = expected.remove(&k[..]).unwrap_or(0);
            if counter(&v) != Some(want) {
                self.problem(format!(
                    "{} is {}, the records say {want}",
                    self.describe_counter(&k),
                    shown(&v)
                ));
                fixes.push((k.to_vec(), (want > 0).then_some(want)));
            }
        }
        for (k, want) in expected {
            self.problem(format!(
                "{} is missing, the records say {want}",
                self.describe_counter(&k)
            ));
            fixes.push((k, Some(want)));
        }
        for (k, holds) in per_session {
            let Some((realm, sid)) = generation_of(&k) else {
                continue;
            };
            if self.session_at(&keys::session_key(realm, &sid))?.is_some() {
                let session = self.session(realm, &sid);
                self.problem(format!(
                    "{session}: grant generation is missing, it holds {holds} grants"
                ));
                fixes.push((k.to_vec(), Some(holds)));
            }
        }
        for (k, value) in fixes {
            match value {
                Some(n) => self.put(&t.counts, &k, &n.to_be_bytes())?,
                None => self.remove_stray(&t.counts, vec![k.into()])?,
            }
        }
        Ok(())
    }

    /// A session counter as problems name it: the realm's total, or an attribute's.
    fn describe_counter(&self, k: &[u8]) -> String {
        let Some(realm) = realm_of(k) else {
            return format!("counter {}", hex(k));
        };
        let realm_name = self.realm(realm);
        if k.len() == 4 {
            return format!("session count of {realm_name}");
        }
        match attribute(k) {
            Some(attribute) => format!("session count of {attribute} in {realm_name}"),
            None => format!("counter {} of {realm_name}", hex(k)),
        }
    }
}

impl SledStoreV1 {
    /// Checks, with nothing else writing to the store, that every index entry and counter
    /// agrees with the records (sessions, grants, deliveries), and every record has all its
    /// index entries. With `repair`, rewrites the index entries and counters from the records
    /// and waits until that is on disk; a second check then finds nothing, unless a record
    /// itself cannot be read (such records are reported and left as they are).
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        let mut checker = Checker {
            store: self,
            repair,
            realm_names: self.realm_names(),
            report: CheckReport::default(),
        };
        let session_counts = checker.session_records()?;
        let per_session = checker.grant_records()?;
        let delivery_counts = checker.delivery_records()?;
        checker.session_tokens()?;
        checker.session_indexes()?;
        checker.grant_indexes()?;
        checker.outbox_index(delivery_counts)?;
        checker.counters(session_counts, per_session)?;
        if checker.report.repaired {
            self.wait_durable()?;
        }
        Ok(checker.report)
    }
}

/// A kind of record the check reads: how it is decoded and where it belongs.
trait Record: Sized {
    /// What problems call it.
    const KIND: &'static str;
    fn decode(value: &[u8]) -> Result<Self>;
    /// The key it belongs under in a realm.
    fn key(&self, realm: RealmId) -> Vec<u8>;
    /// Its id as problems show it.
    fn id_text(&self) -> String;
}

impl Record for StoredSession {
    const KIND: &'static str = "session";
    fn decode(value: &[u8]) -> Result<Self> {
        StoredSession::decode(value)
    }
    fn key(&self, realm: RealmId) -> Vec<u8> {
        keys::session_key(realm, &self.sid).to_vec()
    }
    fn id_text(&self) -> String {
        sid_to_string(&self.sid)
    }
}

impl Record for StoredGrant {
    const KIND: &'static str = "grant";
    fn decode(value: &[u8]) -> Result<Self> {
        StoredGrant::decode(value)
    }
    fn key(&self, realm: RealmId) -> Vec<u8> {
        grants::grant_key(realm, &self.id).to_vec()
    }
    fn id_text(&self) -> String {
        sid_to_string(&self.id)
    }
}

impl Record for Delivery {
    const KIND: &'static str = "delivery";
    fn decode(value: &[u8]) -> Result<Self> {
        outbox::decode(value)
    }
    fn key(&self, realm: RealmId) -> Vec<u8> {
        outbox::delivery_key(realm, self.id).to_vec()
    }
    fn id_text(&self) -> String {
        self.id.to_string()
    }
}

/// The record stored under `key`, if it can be read and belongs there; an index entry naming
/// anything else names no record.
fn record_at<T: Record>(tree: &Tree, key: &[u8]) -> Result<Option<T>> {
    let Some(value) = tree.get(key)? else {
        return Ok(None);
    };
    let realm = realm_of(key);
    Ok(T::decode(&value)
        .ok()
        .filter(|r| realm.is_some_and(|realm| r.key(realm) == key)))
}

/// The realm id a key starts with.
fn realm_of(key: &[u8]) -> Option<RealmId> {
    Some(RealmId::from_be_bytes(key.get(..4)?.try_into().ok()?))
}

/// The session a `counts` key is the grant-generation counter of, if it is one.
fn generation_of(k: &[u8]) -> Option<(RealmId, Sid)> {
    let realm = realm_of(k)?;
    let sid: Sid = k.get(5..)?.try_into().ok()?;
    (grants::session_grants_counter(realm, &sid)[..] == *k).then_some((realm, sid))
}

/// A stored counter's value; `None` if it is malformed.
fn counter(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

/// A stored counter as problems show it.
fn shown(v: &[u8]) -> String {
    counter(v).map_or_else(|| format!("malformed ({})", hex(v)), |n| n.to_string())
}

fn index_name(sort: SortKey) -> &'static str {
    match sort {
        SortKey::Created => "by_created",
        SortKey::LastAccess => "by_last_access",
        SortKey::Expires => "by_expiry",
    }
}

/// A sort-index key as problems show it: its time and session, when it has the right length.
fn describe_sort_key(k: &[u8]) -> String {
    if k.len() != keys::SORT_KEY_LEN {
        return hex(k);
    }
    let (ms, sid) = keys::split_time_sid(k);
    format!(
        "({}, session {})",
        from_ms(ms).to_rfc3339(),
        sid_to_string(&sid)
    )
}

/// An index entry a session should have, as problems name it.
fn describe(e: &IndexEntry) -> String {
    match e {
        IndexEntry::Sorted(sort, k) => {
            format!("{} entry {}", index_name(*sort), describe_sort_key(k))
        }
        IndexEntry::Attr { counter, .. } => {
            let attribute = attribute(counter).unwrap_or_else(|| hex(counter));
            format!("attribute index entry for {attribute}")
        }
    }
}

/// An attribute counter key (the prefix of the attribute's index entries) as problems name it,
/// such as `subject 'alice'`.
fn attribute(counter: &[u8]) -> Option<String> {
    let kind = match *counter.get(4)? {
        k if k == AttrKind::Subject as u8 => "subject",
        k if k == AttrKind::Client as u8 => "client",
        k if k == AttrKind::NamePrefix as u8 => "name prefix",
        _ => return None,
    };
    let value = String::from_utf8_lossy(counter.get(6..)?);
    Some(format!("{kind} '{value}'"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
