//! Exact counts without read-modify-write: counters live in memory; every batch that changes
//! them carries its changes as a journal entry; now and then a checkpoint stores the counters
//! that changed since the last one (one key each) and drops the journal before it. Opening loads
//! the stored counters and adds up the journal after them (a sum, so the order does not matter).
//! A store holding a checkpoint in the chunked format (the whole set in chunks,
//! [`decode_checkpoint_chunk`]) is converted when it opens.
//!
//! Counters are keyed by [`CounterKey`] (realm, what it counts: the realm's sessions, a
//! subject's, a client's, a display-name prefix's, deliveries by status, activity counters).
//!
//! Activity counters are journaled and checkpointed like the others but held apart, ordered
//! ([`Counters::series`]), so reading a range of buckets or pruning old ones never walks the
//! millions of per-subject and per-prefix counters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use super::super::keys::RealmId;
use super::super::record::{words, StoredSession, MAX_PREFIX_CHARS};
use super::layout::{Counter, CounterKey};
use super::record::{put_bytes, put_varint, unzigzag, zigzag, Reader};
use crate::error::{Result, SessionError};
use crate::stats::{Metric, Span, StatsRow};

/// The realm and counter an activity counter's key names (the count set to `count`).
pub fn parse_stats_key(k: &[u8], count: i64) -> Option<(RealmId, StatsRow)> {
    match CounterKey::decode(k)? {
        CounterKey {
            realm,
            counter:
                Counter::Stats {
                    span,
                    bucket,
                    metric,
                },
        } => Some((
            realm,
            StatsRow {
                span,
                bucket,
                metric,
                count,
            },
        )),
        _ => None,
    }
}

/// The distinct name prefixes a display name is counted under.
pub fn name_prefixes(name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for word in words(name) {
        let mut prefix = String::new();
        for ch in word.chars().take(MAX_PREFIX_CHARS) {
            prefix.push(ch);
            out.insert(prefix.clone());
        }
    }
    out
}

/// Every counter a stored session counts in.
pub fn session_counters(realm: RealmId, s: &StoredSession) -> Vec<Vec<u8>> {
    let mut out = vec![
        Counter::Total.key(realm),
        Counter::Subject(&s.subject_id).key(realm),
    ];
    let clients: BTreeSet<&str> = s.client_ids.iter().map(String::as_str).collect();
    out.extend(clients.into_iter().map(|c| Counter::Client(c).key(realm)));
    if let Some(name) = &s.display_name {
        out.extend(
            name_prefixes(name)
                .into_iter()
                .map(|p| Counter::NamePrefix(&p).key(realm)),
        );
    }
    out.extend(device_counter(realm, s));
    out
}

/// The device counter a session counts in, if it has a user agent.
fn device_counter(realm: RealmId, s: &StoredSession) -> Option<Vec<u8>> {
    crate::device::Device::of(s.user_agent.as_deref())
        .map(|d| Counter::Device(d.counted_code()).key(realm))
}

/// The counter changes of one batch, as its journal entry carries them: whole sessions added or
/// removed (expanded into their counters when applied), and single counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deltas {
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Session {
        added: bool,
        realm: RealmId,
        subject: String,
        clients: Vec<String>,
        name: Option<String>,
    },
    Counter {
        key: Vec<u8>,
        delta: i64,
    },
}

const ADDED: u8 = 1;
const REMOVED: u8 = 2;
const COUNTER: u8 = 3;

impl Deltas {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// A session stored (`added`) or deleted.
    pub fn session(&mut self, realm: RealmId, s: &StoredSession, added: bool) {
        self.items.push(Item::Session {
            added,
            realm,
            subject: s.subject_id.clone(),
            clients: s.client_ids.clone(),
            name: s.display_name.clone(),
        });
        // Not part of the session item (journal entries name sessions without their agent).
        if let Some(key) = device_counter(realm, s) {
            self.counter(key, if added { 1 } else { -1 });
        }
    }

    /// One counter changed.
    pub fn counter(&mut self, key: Vec<u8>, delta: i64) {
        if delta != 0 {
            self.items.push(Item::Counter { key, delta });
        }
    }

    /// `n` events of `metric` at `at`, in the hourly and the daily bucket.
    pub fn stat(
        &mut self,
        realm: RealmId,
        at: chrono::DateTime<chrono::Utc>,
        metric: Metric,
        n: u64,
    ) {
        for span in Span::ALL {
            let bucket = span.bucket_of(at);
            let counter = Counter::Stats {
                span,
                bucket,
                metric,
            };
            self.counter(counter.key(realm), n as i64);
        }
    }

    /// A stored session replaced by another version of itself.
    pub fn session_changed(&mut self, realm: RealmId, old: &StoredSession, new: &StoredSession) {
        let before: BTreeSet<Vec<u8>> = session_counters(realm, old).into_iter().collect();
        let after: BTreeSet<Vec<u8>> = session_counters(realm, new).into_iter().collect();
        for k in before.difference(&after) {
            self.counter(k.clone(), -1);
        }
        for k in after.difference(&before) {
            self.counter(k.clone(), 1);
        }
    }

    /// Every (counter, change) this stands for.
    pub fn expand(&self, mut f: impl FnMut(&[u8], i64)) {
        for item in &self.items {
            match item {
                Item::Session {
                    added,
                    realm,
                    subject,
                    clients,
                    name,
                } => {
                    let s = StoredSession {
                        sid: [0; 16],
                        subject_id: subject.clone(),
                        display_name: name.clone(),
                        created_ms: 0,
                        last_access_ms: 0,
                        idle_expires_ms: 0,
                        expires_ms: 0,
                        client_ids: clients.clone(),
                        properties: Default::default(),
                        ip: None,
                        user_agent: None,
                        token_hash: [0; 32],
                        network: None,
                        last: None,
                    };
                    let delta = if *added { 1 } else { -1 };
                    for k in session_counters(*realm, &s) {
                        f(&k, delta);
                    }
                }
                Item::Counter { key, delta } => f(key, *delta),
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        for item in &self.items {
            match item {
                Item::Session {
                    added,
                    realm,
                    subject,
                    clients,
                    name,
                } => {
                    out.push(if *added { ADDED } else { REMOVED });
                    out.extend_from_slice(&realm.to_be_bytes());
                    put_bytes(&mut out, subject.as_bytes());
                    put_varint(&mut out, clients.len() as u64);
                    for c in clients {
                        put_bytes(&mut out, c.as_bytes());
                    }
                    put_bytes(&mut out, name.as_deref().unwrap_or("").as_bytes());
                }
                Item::Counter { key, delta } => {
                    out.push(COUNTER);
                    put_varint(&mut out, zigzag(*delta));
                    put_bytes(&mut out, key);
                }
            }
        }
        out
    }

    pub fn decode(v: &[u8]) -> Result<Self> {
        let corrupt = || SessionError::Storage("corrupt counter journal entry".into());
        let mut r = Reader { buf: v, at: 0 };
        let mut items = Vec::new();
        while !r.done() {
            match r.byte().ok_or_else(corrupt)? {
                tag @ (ADDED | REMOVED) => {
                    let realm = RealmId::from_be_bytes(
                        r.take(4).ok_or_else(corrupt)?.try_into().expect("4"),
                    );
                    let subject = r.string().ok_or_else(corrupt)?;
                    let n = r.varint().ok_or_else(corrupt)?;
                    let mut clients = Vec::new();
                    for _ in 0..n {
                        clients.push(r.string().ok_or_else(corrupt)?);
                    }
                    let name = r.string().ok_or_else(corrupt)?;
                    items.push(Item::Session {
                        added: tag == ADDED,
                        realm,
                        subject,
                        clients,
                        name: (!name.is_empty()).then_some(name),
                    });
                }
                COUNTER => {
                    let delta = unzigzag(r.varint().ok_or_else(corrupt)?);
                    let key = r.bytes().ok_or_else(corrupt)?.to_vec();
                    items.push(Item::Counter { key, delta });
                }
                _ => return Err(corrupt()),
            }
        }
        Ok(Deltas { items })
    }
}

/// The counters in memory, sharded so concurrent writers rarely wait for each other. Each
/// remembers whether it changed since the last checkpoint, so a checkpoint writes only those.
pub struct Counters {
    shards: Vec<Mutex<HashMap<Vec<u8>, Slot>>>,
    /// The activity counters ([`Counter::Stats`]), ordered.
    series: Mutex<BTreeMap<Vec<u8>, Slot>>,
}

#[derive(Clone, Copy)]
struct Slot {
    count: i64,
    /// Changed since the last checkpoint. A counter that fell to zero stays until then, so the
    /// checkpoint deletes its stored value.
    dirty: bool,
}

const SHARDS: usize = 16;

impl Default for Counters {
    fn default() -> Self {
        Counters {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            series: Mutex::new(BTreeMap::new()),
        }
    }
}

fn shard_of(key: &[u8]) -> usize {
    // FNV-1a: cheap and good enough to spread counter keys.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % SHARDS as u64) as usize
}

/// A map of counter slots: the hash-sharded counters and the ordered activity counters alike.
trait SlotMap {
    fn slot_mut(&mut self, key: &[u8]) -> Option<&mut Slot>;
    fn put(&mut self, key: Vec<u8>, slot: Slot);
    fn for_each_mut(&mut self, f: &mut dyn FnMut(&Vec<u8>, &mut Slot));
    fn drop_zeros(&mut self);
}

impl SlotMap for HashMap<Vec<u8>, Slot> {
    fn slot_mut(&mut self, key: &[u8]) -> Option<&mut Slot> {
        self.get_mut(key)
    }
    fn put(&mut self, key: Vec<u8>, slot: Slot) {
        self.insert(key, slot);
    }
    fn for_each_mut(&mut self, f: &mut dyn FnMut(&Vec<u8>, &mut Slot)) {
        self.iter_mut().for_each(|(k, s)| f(k, s));
    }
    fn drop_zeros(&mut self) {
        self.retain(|_, s| s.count != 0);
    }
}

impl SlotMap for BTreeMap<Vec<u8>, Slot> {
    fn slot_mut(&mut self, key: &[u8]) -> Option<&mut Slot> {
        self.get_mut(key)
    }
    fn put(&mut self, key: Vec<u8>, slot: Slot) {
        self.insert(key, slot);
    }
    fn for_each_mut(&mut self, f: &mut dyn FnMut(&Vec<u8>, &mut Slot)) {
        self.iter_mut().for_each(|(k, s)| f(k, s));
    }
    fn drop_zeros(&mut self) {
        self.retain(|_, s| s.count != 0);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Counters {
    /// Runs `f` on the map that holds `key`.
    fn with_map<R>(&self, key: &[u8], f: impl FnOnce(&mut dyn SlotMap) -> R) -> R {
        if CounterKey::is_stats(key) {
            f(&mut *lock(&self.series))
        } else {
            f(&mut *lock(&self.shards[shard_of(key)]))
        }
    }

    /// Runs `f` on every map in turn.
    fn each_map(&self, mut f: impl FnMut(&mut dyn SlotMap)) {
        for shard in &self.shards {
            f(&mut *lock(shard));
        }
        f(&mut *lock(&self.series));
    }

    pub fn get(&self, key: &[u8]) -> u64 {
        self.with_map(key, |m| {
            m.slot_mut(key).map_or(0, |s| s.count.max(0) as u64)
        })
    }

    pub fn add(&self, key: &[u8], delta: i64) {
        self.with_map(key, |m| match m.slot_mut(key) {
            Some(slot) => {
                slot.count += delta;
                slot.dirty = true;
            }
            None => m.put(
                key.to_vec(),
                Slot {
                    count: delta,
                    dirty: true,
                },
            ),
        })
    }

    pub fn apply(&self, deltas: &Deltas) {
        deltas.expand(|k, d| self.add(k, d));
    }

    /// The activity counters (not zero) with keys in `from..to`, in key order.
    pub fn series(&self, from: &[u8], to: &[u8]) -> Vec<(Vec<u8>, i64)> {
        lock(&self.series)
            .range::<[u8], _>((
                std::ops::Bound::Included(from),
                std::ops::Bound::Excluded(to),
            ))
            .filter(|(_, s)| s.count != 0)
            .map(|(k, s)| (k.clone(), s.count))
            .collect()
    }

    /// Every counter that is not zero.
    pub fn snapshot(&self) -> Vec<(Vec<u8>, i64)> {
        let mut out = Vec::new();
        self.each_map(|m| {
            m.for_each_mut(&mut |k, s| {
                if s.count != 0 {
                    out.push((k.clone(), s.count));
                }
            })
        });
        out.sort();
        out
    }

    /// The counters changed since the last call (zero for one to delete), marked clean.
    pub fn take_changed(&self) -> Vec<(Vec<u8>, i64)> {
        let mut out = Vec::new();
        self.each_map(|m| {
            m.for_each_mut(&mut |k, slot| {
                if slot.dirty {
                    slot.dirty = false;
                    out.push((k.clone(), slot.count));
                }
            });
            m.drop_zeros();
        });
        out
    }

    /// Marks counters changed again (their checkpoint failed).
    pub fn mark_changed(&self, keys: impl IntoIterator<Item = Vec<u8>>) {
        for k in keys {
            self.with_map(&k.clone(), |m| match m.slot_mut(&k) {
                Some(slot) => slot.dirty = true,
                None => m.put(
                    k,
                    Slot {
                        count: 0,
                        dirty: true,
                    },
                ),
            });
        }
    }

    /// Replaces every counter with what is stored (all clean).
    pub fn load(&self, all: impl IntoIterator<Item = (Vec<u8>, i64)>) {
        self.replace(all);
        self.each_map(|m| m.for_each_mut(&mut |_, slot| slot.dirty = false));
    }

    /// Replaces every counter (all changed).
    pub fn replace(&self, all: impl IntoIterator<Item = (Vec<u8>, i64)>) {
        for shard in &self.shards {
            lock(shard).clear();
        }
        lock(&self.series).clear();
        for (k, v) in all {
            self.add(&k, v);
        }
    }
}

/// A stored counter value.
pub fn encode_value(v: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    put_varint(&mut out, zigzag(v));
    out
}

/// Decodes a stored counter value.
pub fn decode_value(v: &[u8]) -> Result<i64> {
    let mut r = Reader { buf: v, at: 0 };
    match r.varint() {
        Some(n) if r.done() => Ok(unzigzag(n)),
        _ => Err(SessionError::Storage("corrupt stored counter".into())),
    }
}

/// Encodes counters as a checkpoint in the chunked format, in chunks of about `chunk`
/// bytes (for tests of its conversion).
#[cfg(test)]
pub fn encode_checkpoint(counters: &[(Vec<u8>, i64)], chunk: usize) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    for (k, v) in counters {
        let cur = out.last_mut().expect("one chunk");
        put_bytes(cur, k);
        put_varint(cur, zigzag(*v));
        if cur.len() >= chunk {
            out.push(Vec::new());
        }
    }
    if out.len() > 1 && out.last().is_some_and(Vec::is_empty) {
        out.pop();
    }
    out
}

/// Decodes one chunk of a checkpoint in the chunked format.
pub fn decode_checkpoint_chunk(v: &[u8], into: &mut Vec<(Vec<u8>, i64)>) -> Result<()> {
    let corrupt = || SessionError::Storage("corrupt counter checkpoint".into());
    let mut r = Reader { buf: v, at: 0 };
    while !r.done() {
        let k = r.bytes().ok_or_else(corrupt)?.to_vec();
        let v = unzigzag(r.varint().ok_or_else(corrupt)?);
        into.push((k, v));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::DeliveryStatus;

    #[test]
    fn name_prefixes_are_case_folded_and_deduplicated() {
        let prefixes = name_prefixes("Alice  Smith-Jones");
        for p in ["a", "al", "alice", "s", "smi", "smith", "j", "jones"] {
            assert!(prefixes.contains(p), "{p} missing from {prefixes:?}");
        }
        assert!(!prefixes.iter().any(|p| p.chars().any(char::is_uppercase)));
        assert_eq!(prefixes.len(), 5 + 5 + 5);
    }

    #[test]
    fn journal_entries_round_trip_and_expand() {
        let s = StoredSession {
            sid: [0; 16],
            subject_id: "alice".into(),
            display_name: Some("Alice Alison".into()),
            created_ms: 0,
            last_access_ms: 0,
            idle_expires_ms: 0,
            expires_ms: 0,
            client_ids: vec!["a".into(), "b".into()],
            properties: Default::default(),
            ip: None,
            user_agent: None,
            token_hash: [0; 32],
            network: None,
            last: None,
        };
        let mut d = Deltas::default();
        d.session(3, &s, true);
        d.counter(Counter::Deliveries(DeliveryStatus::Failed).key(3), -2);
        assert_eq!(Deltas::decode(&d.encode()).unwrap(), d);
        let c = Counters::default();
        c.apply(&d);
        assert_eq!(c.get(&Counter::Total.key(3)), 1);
        assert_eq!(c.get(&Counter::NamePrefix("ali").key(3)), 1, "counted once");
        assert_eq!(c.get(&Counter::NamePrefix("alis").key(3)), 1);
        let snap = c.snapshot();
        let chunks = encode_checkpoint(&snap, 16);
        assert!(chunks.len() > 1);
        let mut back = Vec::new();
        for ch in &chunks {
            decode_checkpoint_chunk(ch, &mut back).unwrap();
        }
        back.sort();
        assert_eq!(back, snap);
    }
}
