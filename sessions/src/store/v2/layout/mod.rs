//! Byte layout of every key of the v2 store: one sled tree, every key starting with a 4-byte realm
//! id (0 for what belongs to no realm) and a one-byte [`Tag`]. Each kind of key is a type here,
//! with its encoder, its decoder and the prefixes its scans use side by side; the rest of the store
//! builds and reads keys only through them.
//!
//! | tag | key after realm + tag                           | value                        | type               |
//! |-----|-------------------------------------------------|------------------------------|--------------------|
//! | `S` | created (8) + sid (16)                          | compact session record       | [`SessionKey`]     |
//! | `L` | last access (8) + sid                           | created (8) for legacy sids  | [`TimeIndexKey`]   |
//! | `E` | effective expiry (8) + sid                      | created (8) for legacy sids  | [`TimeIndexKey`]   |
//! | `U` | len + subject + created + sid                   | —                            | [`AttrKey`]        |
//! | `C` | len + client id + created + sid                 | —                            | [`AttrKey`]        |
//! | `W` | display-name word + 0 + created + sid           | —                            | [`WordKey`]        |
//! | `I` | client address (16) + created + sid             | —                            | [`AddressKey`]     |
//! | `x` | sid (legacy sids only)                          | created (8)                  | [`LegacySidKey`]   |
//! | `c` | client id                                       | registration (JSON)          | [`ClientRegKey`]   |
//! | `g` | grant id (16)                                   | grant record                 | [`GrantKey`]       |
//! | `h` | 1 + len + subject + id, 2 + sid + id, 3 + expiry + id | —                      | [`GrantIndexKey`]  |
//! | `o` | delivery id (8)                                 | delivery (postcard; JSON before) | [`DeliveryKey`] |
//! | `s` | status (1) + delivery id                        | —                            | [`DeliveryStatusKey`] |
//! | `H` | end time (8) + sid                              | ended-session record         | [`EndedKey`]       |
//! | `V` | len + subject + end time + sid                  | —                            | [`EndedSubjectKey`] |
//! | `D` | sid                                             | end time (8)                 | [`EndedSidKey`]    |
//!
//! Realm 0:
//!
//! | tag | key after realm 0 + tag                         | value                        | type               |
//! |-----|-------------------------------------------------|------------------------------|--------------------|
//! | `M` | name                                            | layout version, results-token key, id base, first journal entry the stored counters do not cover | [`MetaKey`] |
//! | `R` | realm name                                      | realm record (JSON)          | [`RealmKey`]       |
//! | `A` | audit entry id (8)                              | audit entry (JSON)           | [`AuditKey`]       |
//! | `J` | sequence number (8)                             | counter changes              | [`JournalKey`]     |
//! | `N` | counter key ([`CounterKey`])                    | count (varint)               | [`StoredCounterKey`] |
//! | `K` | chunk number (4; `u32::MAX` the header)         | counters in the chunked format, converted on open | [`CheckpointKey`] |
//! | `i` | id (4)                                          | interned string              | [`InternKey`]      |
//! | `Q` | realm + len + client id + due time + delivery id | —                           | [`QueueKey`]       |
//! | `T` | SHA-256 of a legacy session token (32)          | realm + created + sid ([`SessionLocator`]) | [`LegacyTokenKey`] |
//! | `t` | SHA-256 of a grant token (32)                   | realm + grant id ([`GrantLocator`]) | [`GrantTokenKey`] |
//!
//! Integers are big-endian, so byte order is numeric order; times are milliseconds (activity
//! counter buckets: seconds), big-endian with the sign bit flipped, so byte order is time order.
//! `(created, sid)` locates a record: index entries end with it, or (for the last-access and expiry
//! indexes) with the sid, whose creation time is in its high bits ([`created_of_sid`]); a legacy
//! sid (a UUIDv4, kept by sessions upgraded from the v1 layout) has its creation time beside it
//! instead ([`created_value`]).

mod counters;
mod ended;
mod grants;
mod outbox;
mod realms;
mod sessions;
mod store;

pub use counters::{end_code, end_from_code, Counter, CounterKey, JournalKey, StoredCounterKey};
pub use counters::{CheckpointHeader, CheckpointKey};
pub use ended::{EndedKey, EndedSidKey, EndedSubjectKey};
pub use grants::{GrantIndex, GrantIndexKey, GrantKey, GrantLocator, GrantTokenKey};
pub use outbox::{status_code, DeliveryKey, DeliveryStatusKey, QueueKey};
pub use realms::{ClientRegKey, RealmKey};
pub use sessions::{created_from_value, created_value, LegacySidKey, LegacyTokenKey};
pub use sessions::{AddressKey, Attr, AttrKey, SessionKey, SessionLocator, WordKey};
pub use sessions::{TimeIndex, TimeIndexKey, Timeline};
pub use store::{AuditKey, InternKey, MetaKey};

use super::super::keys::{RealmId, Sid};

/// The realm id of keys that belong to no realm.
pub const GLOBAL: RealmId = 0;

/// Length of the realm id and tag every key starts with.
const HEAD_LEN: usize = 5;

/// The byte after the realm id that says what kind of key it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Tag {
    Record = b'S',
    LastAccess = b'L',
    Expiry = b'E',
    Subject = b'U',
    Client = b'C',
    Word = b'W',
    Address = b'I',
    LegacySid = b'x',
    ClientReg = b'c',
    Grant = b'g',
    GrantIndex = b'h',
    Delivery = b'o',
    DeliveryStatus = b's',
    Meta = b'M',
    Realm = b'R',
    Audit = b'A',
    Journal = b'J',
    Checkpoint = b'K',
    Counter = b'N',
    Intern = b'i',
    Queue = b'Q',
    LegacyToken = b'T',
    GrantToken = b't',
    Ended = b'H',
    EndedSubject = b'V',
    EndedSid = b'D',
}

impl Tag {
    /// Every tag.
    pub const ALL: [Tag; 26] = [
        Tag::Record,
        Tag::LastAccess,
        Tag::Expiry,
        Tag::Subject,
        Tag::Client,
        Tag::Word,
        Tag::Address,
        Tag::LegacySid,
        Tag::ClientReg,
        Tag::Grant,
        Tag::GrantIndex,
        Tag::Delivery,
        Tag::DeliveryStatus,
        Tag::Meta,
        Tag::Realm,
        Tag::Audit,
        Tag::Journal,
        Tag::Checkpoint,
        Tag::Counter,
        Tag::Intern,
        Tag::Queue,
        Tag::LegacyToken,
        Tag::GrantToken,
        Tag::Ended,
        Tag::EndedSubject,
        Tag::EndedSid,
    ];

    /// The tag this byte stands for.
    pub fn from_byte(b: u8) -> Option<Tag> {
        Tag::ALL.into_iter().find(|t| *t as u8 == b)
    }
}

/// Realm id and tag: the prefix of every key of one kind in one realm.
pub fn prefix(realm: RealmId, tag: Tag) -> [u8; HEAD_LEN] {
    let r = realm.to_be_bytes();
    [r[0], r[1], r[2], r[3], tag as u8]
}

/// The realm id and the tag a key starts with (`None` for a byte that is no tag); `None` for a key
/// too short to have both.
pub fn head(key: &[u8]) -> Option<(RealmId, Option<Tag>)> {
    let (realm, rest) = key.split_first_chunk::<4>()?;
    let (&tag, _) = rest.split_first()?;
    Some((RealmId::from_be_bytes(*realm), Tag::from_byte(tag)))
}

/// A time in milliseconds (or seconds), encoded so unsigned byte order is time order.
fn time_bytes(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`time_bytes`].
fn time_from_bytes(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

/// A key of `N` bytes made of these parts, in order (their lengths add up to `N`).
fn fixed<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut k = [0u8; N];
    let mut rest = &mut k[..];
    for p in parts {
        let (here, after) = rest.split_at_mut(p.len());
        here.copy_from_slice(p);
        rest = after;
    }
    debug_assert!(rest.is_empty(), "parts shorter than the key");
    k
}

/// A key of variable length: realm id and tag, with room for `more` bytes after them.
fn growable(realm: RealmId, tag: Tag, more: usize) -> Vec<u8> {
    let mut k = Vec::with_capacity(HEAD_LEN + more);
    k.extend_from_slice(&prefix(realm, tag));
    k
}

/// Reads a key's fields front to back (or a value's: [`Fields::value`]).
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    /// The fields after the realm id and tag of a key of kind `tag`, with its realm id; `None`
    /// for a key of another kind.
    fn of(key: &'a [u8], tag: Tag) -> Option<(RealmId, Self)> {
        let (realm, rest) = key.split_first_chunk::<4>()?;
        let (&t, rest) = rest.split_first()?;
        (t == tag as u8).then_some((RealmId::from_be_bytes(*realm), Fields(rest)))
    }

    /// As [`Fields::of`], for a kind of key that only realm 0 has.
    fn global(key: &'a [u8], tag: Tag) -> Option<Self> {
        Fields::of(key, tag).and_then(|(realm, f)| (realm == GLOBAL).then_some(f))
    }

    /// The fields of a value.
    fn value(v: &'a [u8]) -> Self {
        Fields(v)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (a, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*a)
    }

    /// The last `N` bytes, taken off the end.
    fn array_back<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (rest, a) = self.0.split_last_chunk::<N>()?;
        self.0 = rest;
        Some(*a)
    }

    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_be_bytes)
    }

    fn time(&mut self) -> Option<i64> {
        self.array().map(time_from_bytes)
    }

    fn time_back(&mut self) -> Option<i64> {
        self.array_back().map(time_from_bytes)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(a)
    }

    /// A string of one length byte and that many bytes.
    fn short_str(&mut self) -> Option<&'a str> {
        let n = self.byte()?;
        std::str::from_utf8(self.take(usize::from(n))?).ok()
    }

    /// Everything left.
    fn rest(self) -> &'a [u8] {
        self.0
    }

    /// Everything left, as a string.
    fn rest_str(self) -> Option<&'a str> {
        std::str::from_utf8(self.0).ok()
    }

    /// Nothing is left.
    fn end(self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

/// The creation time a sid carries: its high 48 bits, for a UUIDv7; `None` for other sids
/// (legacy ones), whose creation time is stored beside them.
pub fn created_of_sid(sid: &Sid) -> Option<i64> {
    if sid[6] >> 4 != 7 || sid[8] >> 6 != 0b10 {
        return None;
    }
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&sid[..6]);
    Some(u64::from_be_bytes(b) as i64)
}

/// A UUIDv7 sid for a session created at `created_ms` with these random bytes; `None` when the
/// time does not fit its 48 bits.
pub fn new_sid(created_ms: i64, random: [u8; 10]) -> Option<Sid> {
    if !(0..1 << 48).contains(&created_ms) {
        return None;
    }
    let mut sid = [0u8; 16];
    sid[..6].copy_from_slice(&(created_ms as u64).to_be_bytes()[2..]);
    sid[6..].copy_from_slice(&random);
    sid[6] = 0x70 | (sid[6] & 0x0f);
    sid[8] = 0x80 | (sid[8] & 0x3f);
    Some(sid)
}

#[cfg(test)]
pub(super) mod strategy {
    //! proptest strategies for the fields keys are made of.

    use proptest::prelude::*;

    use super::{RealmId, Sid};

    pub fn realm() -> impl Strategy<Value = RealmId> {
        prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()]
    }

    pub fn time() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0i64),
            -1_000i64..1_000,
            any::<i64>()
        ]
    }

    pub fn sid() -> impl Strategy<Value = Sid> {
        any::<[u8; 16]>()
    }

    /// An identifier (subject, client id) of at most 255 bytes, any characters.
    pub fn ident() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9]{0,3}",
            ".{0,40}",
            "[a-zé]{100,127}",
            "[a-z]{250,255}"
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_tag_is_one_byte_of_its_own() {
        let mut bytes: Vec<u8> = Tag::ALL.iter().map(|t| *t as u8).collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), Tag::ALL.len());
        for t in Tag::ALL {
            assert_eq!(Tag::from_byte(t as u8), Some(t));
        }
        assert_eq!(Tag::from_byte(0), None);
    }

    #[test]
    fn the_head_of_a_key_is_its_realm_and_tag() {
        assert_eq!(head(&prefix(7, Tag::Word)), Some((7, Some(Tag::Word))));
        assert_eq!(head(b"\0\0\0\x07?rest"), Some((7, None)));
        assert_eq!(head(b"\0\0\0\x07"), None);
    }

    #[test]
    fn v7_sids_carry_their_creation_time() {
        for ms in [0, 1, 1_780_000_000_123, (1 << 48) - 1] {
            let sid = new_sid(ms, [0xff; 10]).unwrap();
            assert_eq!(created_of_sid(&sid), Some(ms));
            let u = uuid::Uuid::from_bytes(sid);
            assert_eq!(u.get_version_num(), 7);
        }
        assert_eq!(new_sid(-1, [0; 10]), None);
        let v4 = *uuid::Builder::from_random_bytes([7; 16])
            .into_uuid()
            .as_bytes();
        assert_eq!(created_of_sid(&v4), None);
    }

    proptest! {
        #[test]
        fn time_bytes_round_trip_in_time_order(a in strategy::time(), b in strategy::time()) {
            prop_assert_eq!(time_from_bytes(time_bytes(a)), a);
            prop_assert_eq!(time_bytes(a).cmp(&time_bytes(b)), a.cmp(&b));
        }
    }
}
