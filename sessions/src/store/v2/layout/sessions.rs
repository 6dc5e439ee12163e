//! Keys of sessions: records (`S`), the last-access and expiry indexes (`L`, `E`), the subject,
//! client, display-name word and client-address indexes (`U`, `C`, `W`, `I`), and for legacy sids
//! their creation time (`x`) and their tokens (`T`).

use std::ops::Bound;

use super::{fixed, growable, prefix, time_bytes, Fields, Tag, HEAD_LEN};
use super::{RealmId, Sid};

/// Length of a time and a sid, which record keys and most index entries end with.
const TIME_SID_LEN: usize = 8 + 16;

/// A session record's key: realm, `S`, creation time, sid. A realm's records are in creation
/// order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub realm: RealmId,
    pub created_ms: i64,
    pub sid: Sid,
}

impl SessionKey {
    pub const LEN: usize = HEAD_LEN + TIME_SID_LEN;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let head = prefix(self.realm, Tag::Record);
        fixed(&[&head, &time_bytes(self.created_ms), &self.sid])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let (realm, mut f) = Fields::of(key, Tag::Record)?;
        let created_ms = f.time()?;
        let sid = f.array()?;
        f.end()?;
        Some(SessionKey {
            realm,
            created_ms,
            sid,
        })
    }

    /// Prefix of every record of a realm.
    pub fn prefix(realm: RealmId) -> [u8; HEAD_LEN] {
        prefix(realm, Tag::Record)
    }
}

/// A sort index other than creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeIndex {
    /// By last access (`L`).
    LastAccess,
    /// By effective expiry (`E`).
    Expiry,
}

impl TimeIndex {
    fn tag(self) -> Tag {
        match self {
            TimeIndex::LastAccess => Tag::LastAccess,
            TimeIndex::Expiry => Tag::Expiry,
        }
    }
}

/// A last-access or expiry index entry: realm, `L` or `E`, time, sid. Its value is the session's
/// creation time for a legacy sid ([`created_value`]), empty otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeIndexKey {
    pub realm: RealmId,
    pub index: TimeIndex,
    pub ms: i64,
    pub sid: Sid,
}

impl TimeIndexKey {
    pub const LEN: usize = HEAD_LEN + TIME_SID_LEN;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let head = prefix(self.realm, self.index.tag());
        fixed(&[&head, &time_bytes(self.ms), &self.sid])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let (index, (realm, mut f)) = [TimeIndex::LastAccess, TimeIndex::Expiry]
            .into_iter()
            .find_map(|i| Some((i, Fields::of(key, i.tag())?)))?;
        let ms = f.time()?;
        let sid = f.array()?;
        f.end()?;
        Some(TimeIndexKey {
            realm,
            index,
            ms,
            sid,
        })
    }

    /// Prefix of every entry of one index of a realm.
    pub fn prefix(realm: RealmId, index: TimeIndex) -> [u8; HEAD_LEN] {
        prefix(realm, index.tag())
    }
}

/// The value of a last-access or expiry entry, or of a legacy sid's `x` entry: the creation time
/// of a session whose sid does not carry it (big-endian, sign bit as is).
pub fn created_value(created_ms: i64) -> [u8; 8] {
    created_ms.to_be_bytes()
}

/// Inverse of [`created_value`]; `None` for a value of another length (an empty one included).
pub fn created_from_value(v: &[u8]) -> Option<i64> {
    let mut f = Fields::value(v);
    let created = f.i64()?;
    f.end()?;
    Some(created)
}

/// What an attribute-index entry indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attr {
    /// The session's subject (`U`).
    Subject,
    /// One of the session's clients (`C`).
    Client,
}

impl Attr {
    fn tag(self) -> Tag {
        match self {
            Attr::Subject => Tag::Subject,
            Attr::Client => Tag::Client,
        }
    }
}

/// A subject- or client-index entry: realm, `U` or `C`, the value's length (one byte) and bytes,
/// creation time, sid. One value's entries are in creation order ([`Timeline::attr`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttrKey<'a> {
    pub realm: RealmId,
    pub attr: Attr,
    /// At most 255 bytes (identifiers are).
    pub value: &'a str,
    pub created_ms: i64,
    pub sid: Sid,
}

impl<'a> AttrKey<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut k = Self::prefix_with_room(self.realm, self.attr, self.value, TIME_SID_LEN);
        k.extend_from_slice(&time_bytes(self.created_ms));
        k.extend_from_slice(&self.sid);
        k
    }

    pub fn decode(key: &'a [u8]) -> Option<Self> {
        let (attr, (realm, mut f)) = [Attr::Subject, Attr::Client]
            .into_iter()
            .find_map(|a| Some((a, Fields::of(key, a.tag())?)))?;
        let value = f.short_str()?;
        let created_ms = f.time()?;
        let sid = f.array()?;
        f.end()?;
        Some(AttrKey {
            realm,
            attr,
            value,
            created_ms,
            sid,
        })
    }

    fn prefix_with_room(realm: RealmId, attr: Attr, value: &str, more: usize) -> Vec<u8> {
        let mut k = growable(realm, attr.tag(), 1 + value.len() + more);
        k.push(value.len() as u8);
        k.extend_from_slice(value.as_bytes());
        k
    }
}

/// A display-name word-index entry: realm, `W`, the word (case-folded, alphanumeric, so it holds
/// no 0 byte), 0, creation time, sid. Entries are in word order, then creation order; the words
/// starting with a prefix are a key range ([`WordKey::range`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WordKey<'a> {
    pub realm: RealmId,
    pub word: &'a str,
    pub created_ms: i64,
    pub sid: Sid,
}

impl<'a> WordKey<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut k = growable(self.realm, Tag::Word, self.word.len() + 1 + TIME_SID_LEN);
        k.extend_from_slice(self.word.as_bytes());
        k.push(0);
        k.extend_from_slice(&time_bytes(self.created_ms));
        k.extend_from_slice(&self.sid);
        k
    }

    pub fn decode(key: &'a [u8]) -> Option<Self> {
        let (realm, mut f) = Fields::of(key, Tag::Word)?;
        let sid = f.array_back()?;
        let created_ms = f.time_back()?;
        let [0] = f.array_back()? else {
            return None;
        };
        let word = f.rest_str()?;
        Some(WordKey {
            realm,
            word,
            created_ms,
            sid,
        })
    }

    /// Prefix of the entries of every word starting with `word_prefix`.
    pub fn prefix(realm: RealmId, word_prefix: &str) -> Vec<u8> {
        let mut k = growable(realm, Tag::Word, word_prefix.len());
        k.extend_from_slice(word_prefix.as_bytes());
        k
    }

    /// The entries of every word starting with `word_prefix`.
    pub fn range(realm: RealmId, word_prefix: &str) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let first = Self::prefix(realm, word_prefix);
        let mut last = first.clone();
        last.extend_from_slice(&[0xff; 40]);
        (Bound::Included(first), Bound::Included(last))
    }
}

/// A client-address index entry: realm, `I`, the address as 16 bytes (IPv4 as its IPv4-mapped
/// IPv6 form, see [`crate::address`]), creation time, sid. Entries are in address order, then
/// creation order, so a CIDR range is a key range ([`AddressKey::range`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressKey {
    pub realm: RealmId,
    pub address: [u8; 16],
    pub created_ms: i64,
    pub sid: Sid,
}

impl AddressKey {
    pub const LEN: usize = HEAD_LEN + 16 + TIME_SID_LEN;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let head = prefix(self.realm, Tag::Address);
        fixed(&[
            &head,
            &self.address,
            &time_bytes(self.created_ms),
            &self.sid,
        ])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let (realm, mut f) = Fields::of(key, Tag::Address)?;
        let address = f.array()?;
        let created_ms = f.time()?;
        let sid = f.array()?;
        f.end()?;
        Some(AddressKey {
            realm,
            address,
            created_ms,
            sid,
        })
    }

    /// Prefix of one address's entries.
    pub fn prefix(realm: RealmId, address: &[u8; 16]) -> [u8; HEAD_LEN + 16] {
        fixed(&[&prefix(realm, Tag::Address), address])
    }

    /// The entries of every address from `first` to `last`, both included.
    pub fn range(
        realm: RealmId,
        first: &[u8; 16],
        last: &[u8; 16],
    ) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let end = AddressKey {
            realm,
            address: *last,
            created_ms: i64::MAX,
            sid: [0xff; 16],
        };
        (
            Bound::Included(Self::prefix(realm, first).to_vec()),
            Bound::Included(end.encode().to_vec()),
        )
    }
}

/// The entry keeping a legacy sid's creation time: realm, `x`, sid. Its value is
/// [`created_value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LegacySidKey {
    pub realm: RealmId,
    pub sid: Sid,
}

impl LegacySidKey {
    pub const LEN: usize = HEAD_LEN + 16;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[&prefix(self.realm, Tag::LegacySid), &self.sid])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let (realm, mut f) = Fields::of(key, Tag::LegacySid)?;
        let sid = f.array()?;
        f.end()?;
        Some(LegacySidKey { realm, sid })
    }
}

/// The entry by which a legacy session token (32 random bytes, of a session upgraded from the v1
/// layout) finds its session: realm 0, `T`, the token's SHA-256. Its value is a
/// [`SessionLocator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LegacyTokenKey {
    pub hash: [u8; 32],
}

impl LegacyTokenKey {
    pub const LEN: usize = HEAD_LEN + 32;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[&prefix(super::GLOBAL, Tag::LegacyToken), &self.hash])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let mut f = Fields::global(key, Tag::LegacyToken)?;
        let hash = f.array()?;
        f.end()?;
        Some(LegacyTokenKey { hash })
    }
}

/// Where a session is: the value of a [`LegacyTokenKey`], realm (4), creation time (8,
/// big-endian, sign bit as is), sid (16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionLocator {
    pub realm: RealmId,
    pub created_ms: i64,
    pub sid: Sid,
}

impl SessionLocator {
    pub const LEN: usize = 4 + 8 + 16;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[
            &self.realm.to_be_bytes(),
            &self.created_ms.to_be_bytes(),
            &self.sid,
        ])
    }

    pub fn decode(v: &[u8]) -> Option<Self> {
        let mut f = Fields::value(v);
        let realm = f.u32()?;
        let created_ms = f.i64()?;
        let sid = f.array()?;
        f.end()?;
        Some(SessionLocator {
            realm,
            created_ms,
            sid,
        })
    }
}

/// The keys under one prefix that each are that prefix, a time and a sid, so that a scan of them
/// goes in (time, sid) order: a realm's records (creation time), its last-access or expiry index,
/// and the subject, client or address entries of one value (creation time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    prefix: Vec<u8>,
}

impl Timeline {
    /// A realm's records ([`SessionKey`]).
    pub fn records(realm: RealmId) -> Self {
        Timeline {
            prefix: SessionKey::prefix(realm).to_vec(),
        }
    }

    /// A realm's last-access or expiry index ([`TimeIndexKey`]).
    pub fn index(realm: RealmId, index: TimeIndex) -> Self {
        Timeline {
            prefix: TimeIndexKey::prefix(realm, index).to_vec(),
        }
    }

    /// The entries of one subject or client ([`AttrKey`]).
    pub fn attr(realm: RealmId, attr: Attr, value: &str) -> Self {
        Timeline {
            prefix: AttrKey::prefix_with_room(realm, attr, value, 0),
        }
    }

    /// The entries of one client address ([`AddressKey`]).
    pub fn address(realm: RealmId, address: &[u8; 16]) -> Self {
        Timeline {
            prefix: AddressKey::prefix(realm, address).to_vec(),
        }
    }

    /// The key of the entry at this time and sid.
    pub fn key(&self, ms: i64, sid: &Sid) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + TIME_SID_LEN);
        k.extend_from_slice(&self.prefix);
        k.extend_from_slice(&time_bytes(ms));
        k.extend_from_slice(sid);
        k
    }

    /// Every entry.
    pub fn all(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (
            Bound::Included(self.key(i64::MIN, &[0; 16])),
            Bound::Included(self.key(i64::MAX, &[0xff; 16])),
        )
    }

    /// The entries with a time from `from_ms` (included) to `until_ms` (excluded).
    pub fn between(&self, from_ms: i64, until_ms: i64) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (
            Bound::Included(self.key(from_ms, &[0; 16])),
            Bound::Excluded(self.key(until_ms, &[0; 16])),
        )
    }

    /// The time and sid of an entry; `None` for a key that is not one of these entries.
    pub fn position(&self, key: &[u8]) -> Option<(i64, Sid)> {
        let mut f = Fields(key.strip_prefix(self.prefix.as_slice())?);
        let ms = f.time()?;
        let sid = f.array()?;
        f.end()?;
        Some((ms, sid))
    }
}

#[cfg(test)]
mod tests {
    use super::super::strategy::{ident, realm, sid, time};
    use super::*;
    use proptest::prelude::*;

    fn time_index() -> impl Strategy<Value = TimeIndex> {
        prop_oneof![Just(TimeIndex::LastAccess), Just(TimeIndex::Expiry)]
    }

    fn attr() -> impl Strategy<Value = Attr> {
        prop_oneof![Just(Attr::Subject), Just(Attr::Client)]
    }

    /// A case-folded display-name word (alphanumeric: no 0 byte).
    fn word() -> impl Strategy<Value = String> {
        "[a-z0-9éß]{0,14}"
    }

    fn address() -> impl Strategy<Value = [u8; 16]> {
        prop_oneof![
            any::<[u8; 16]>(),
            any::<[u8; 4]>().prop_map(|a| std::net::Ipv4Addr::from(a).to_ipv6_mapped().octets())
        ]
    }

    #[test]
    fn a_record_key_is_realm_tag_time_and_sid() {
        let k = SessionKey {
            realm: 0x0102_0304,
            created_ms: 0,
            sid: [9; 16],
        };
        let mut want = vec![1, 2, 3, 4, b'S', 0x80, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(&[9; 16]);
        assert_eq!(k.encode().to_vec(), want);
        assert_eq!(SessionKey::decode(&want[..28]), None);
        assert_eq!(TimeIndexKey::decode(&want), None, "another tag");
    }

    #[test]
    fn word_keys_sort_by_word_then_time_and_parse_back() {
        let at = |word, created_ms| WordKey {
            realm: 1,
            word,
            created_ms,
            sid: [1; 16],
        };
        let (a, b) = (at("smi", 5).encode(), at("smith", 1).encode());
        assert!(a < b);
        let prefix = WordKey::prefix(1, "smi");
        assert!(a.starts_with(&prefix) && b.starts_with(&prefix));
        let (from, to) = WordKey::range(1, "smi");
        for k in [&a, &b] {
            assert!(matches!(&from, Bound::Included(f) if f <= k));
            assert!(matches!(&to, Bound::Included(t) if k <= t));
        }
        assert_eq!(WordKey::decode(&b), Some(at("smith", 1)));
        let mut no_zero = b.clone();
        no_zero[5 + "smith".len()] = b'x';
        assert_eq!(WordKey::decode(&no_zero), None);
    }

    proptest! {
        #[test]
        fn session_keys_round_trip_in_creation_order(
            r in realm(), t1 in time(), s1 in sid(), t2 in time(), s2 in sid(),
        ) {
            let a = SessionKey { realm: r, created_ms: t1, sid: s1 };
            let b = SessionKey { realm: r, created_ms: t2, sid: s2 };
            prop_assert_eq!(SessionKey::decode(&a.encode()), Some(a));
            prop_assert!(a.encode().starts_with(&SessionKey::prefix(r)));
            prop_assert_eq!(a.encode().cmp(&b.encode()), (t1, s1).cmp(&(t2, s2)));
            let records = Timeline::records(r);
            prop_assert_eq!(records.key(t1, &s1), a.encode().to_vec());
            prop_assert_eq!(records.position(&a.encode()), Some((t1, s1)));
        }

        #[test]
        fn time_index_keys_round_trip_in_time_order(
            r in realm(), i in time_index(), t1 in time(), s1 in sid(), t2 in time(), s2 in sid(),
        ) {
            let a = TimeIndexKey { realm: r, index: i, ms: t1, sid: s1 };
            let b = TimeIndexKey { realm: r, index: i, ms: t2, sid: s2 };
            prop_assert_eq!(TimeIndexKey::decode(&a.encode()), Some(a));
            prop_assert_eq!(SessionKey::decode(&a.encode()), None);
            prop_assert_eq!(a.encode().cmp(&b.encode()), (t1, s1).cmp(&(t2, s2)));
            let index = Timeline::index(r, i);
            prop_assert_eq!(index.key(t1, &s1), a.encode().to_vec());
            prop_assert_eq!(index.position(&a.encode()), Some((t1, s1)));
            let (Bound::Included(lo), Bound::Included(hi)) = index.all() else {
                panic!("inclusive bounds");
            };
            prop_assert!(lo.as_slice() <= &a.encode()[..] && &a.encode()[..] <= hi.as_slice());
        }

        #[test]
        fn created_values_round_trip(t in time()) {
            prop_assert_eq!(created_from_value(&created_value(t)), Some(t));
            prop_assert_eq!(created_from_value(&[]), None);
        }

        #[test]
        fn attr_keys_round_trip_in_creation_order_per_value(
            r in realm(), a in attr(), v in ident(), t1 in time(), s1 in sid(), t2 in time(),
            s2 in sid(), (from, until) in (time(), time()),
        ) {
            let k1 = AttrKey { realm: r, attr: a, value: &v, created_ms: t1, sid: s1 };
            let k2 = AttrKey { created_ms: t2, sid: s2, ..k1 };
            let e1 = k1.encode();
            prop_assert_eq!(AttrKey::decode(&e1), Some(k1));
            prop_assert_eq!(e1.cmp(&k2.encode()), (t1, s1).cmp(&(t2, s2)));
            let line = Timeline::attr(r, a, &v);
            prop_assert_eq!(line.key(t1, &s1), e1.clone());
            prop_assert_eq!(line.position(&e1), Some((t1, s1)));
            let (lo, hi) = line.between(from, until);
            let inside = matches!(&lo, Bound::Included(l) if *l <= e1)
                && matches!(&hi, Bound::Excluded(h) if e1 < *h);
            prop_assert_eq!(inside, from <= t1 && t1 < until);
        }

        #[test]
        fn word_keys_round_trip_in_word_then_creation_order(
            r in realm(), w1 in word(), w2 in word(), t1 in time(), s1 in sid(), t2 in time(),
            s2 in sid(),
        ) {
            let a = WordKey { realm: r, word: &w1, created_ms: t1, sid: s1 };
            let b = WordKey { realm: r, word: &w2, created_ms: t2, sid: s2 };
            let bytes = a.encode();
            prop_assert_eq!(WordKey::decode(&bytes), Some(a));
            let order = if w1 == w2 {
                (t1, s1).cmp(&(t2, s2))
            } else if w1.starts_with(w2.as_str()) {
                std::cmp::Ordering::Greater
            } else if w2.starts_with(w1.as_str()) {
                std::cmp::Ordering::Less
            } else {
                w1.cmp(&w2)
            };
            prop_assert_eq!(a.encode().cmp(&b.encode()), order);
            let (Bound::Included(lo), Bound::Included(hi)) = WordKey::range(r, &w1) else {
                panic!("inclusive bounds");
            };
            prop_assert!(lo <= a.encode() && a.encode() <= hi);
        }

        #[test]
        fn address_keys_round_trip_in_address_then_creation_order(
            r in realm(), a1 in address(), a2 in address(), t1 in time(), s1 in sid(),
            t2 in time(), s2 in sid(),
        ) {
            let a = AddressKey { realm: r, address: a1, created_ms: t1, sid: s1 };
            let b = AddressKey { realm: r, address: a2, created_ms: t2, sid: s2 };
            prop_assert_eq!(AddressKey::decode(&a.encode()), Some(a));
            prop_assert_eq!(a.encode().cmp(&b.encode()), (a1, t1, s1).cmp(&(a2, t2, s2)));
            let line = Timeline::address(r, &a1);
            prop_assert_eq!(line.key(t1, &s1), a.encode().to_vec());
            let (first, last) = if a1 <= a2 { (a1, a2) } else { (a2, a1) };
            let (Bound::Included(lo), Bound::Included(hi)) = AddressKey::range(r, &first, &last)
            else {
                panic!("inclusive bounds");
            };
            for k in [a.encode(), b.encode()] {
                prop_assert!(lo.as_slice() <= &k[..] && &k[..] <= hi.as_slice());
            }
        }

        #[test]
        fn legacy_sid_and_token_keys_and_locators_round_trip(
            r in realm(), s in sid(), t in time(), hash in any::<[u8; 32]>(),
        ) {
            let k = LegacySidKey { realm: r, sid: s };
            prop_assert_eq!(LegacySidKey::decode(&k.encode()), Some(k));
            let k = LegacyTokenKey { hash };
            prop_assert_eq!(LegacyTokenKey::decode(&k.encode()), Some(k));
            let at = SessionLocator { realm: r, created_ms: t, sid: s };
            prop_assert_eq!(SessionLocator::decode(&at.encode()), Some(at));
            prop_assert_eq!(SessionLocator::decode(&at.encode()[1..]), None);
        }
    }
}
