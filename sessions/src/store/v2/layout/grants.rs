//! Keys of grants: records (`g`), the index by subject, session and expiry (`h`), and tokens by
//! their SHA-256 (`t`).

use crate::store::grants::GrantId;

use super::{fixed, growable, prefix, time_bytes, Fields, Tag, GLOBAL, HEAD_LEN};
use super::{RealmId, Sid};

/// A grant record's key: realm, `g`, grant id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GrantKey {
    pub realm: RealmId,
    pub id: GrantId,
}

impl GrantKey {
    pub const LEN: usize = HEAD_LEN + 16;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[&prefix(self.realm, Tag::Grant), &self.id])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let (realm, mut f) = Fields::of(key, Tag::Grant)?;
        let id = f.array()?;
        f.end()?;
        Some(GrantKey { realm, id })
    }

    /// Prefix of every grant record of a realm.
    pub fn prefix(realm: RealmId) -> [u8; HEAD_LEN] {
        prefix(realm, Tag::Grant)
    }
}

/// What a grant-index entry is by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GrantIndex<'a> {
    /// The grant's subject (1, then its length and bytes).
    Subject(&'a str),
    /// The session the grant was issued under (2, then the sid).
    Session(Sid),
    /// The grant's expiry (3, then the time), so the expired ones are a key range.
    Expiry(i64),
}

const BY_SUBJECT: u8 = 1;
const BY_SESSION: u8 = 2;
const BY_EXPIRY: u8 = 3;

/// A grant-index entry: realm, `h`, what it is by ([`GrantIndex`]), grant id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GrantIndexKey<'a> {
    pub realm: RealmId,
    pub by: GrantIndex<'a>,
    pub id: GrantId,
}

impl<'a> GrantIndexKey<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut k = Self::by_prefix(self.realm, &self.by, 16);
        k.extend_from_slice(&self.id);
        k
    }

    pub fn decode(key: &'a [u8]) -> Option<Self> {
        let (realm, mut f) = Fields::of(key, Tag::GrantIndex)?;
        let by = match f.byte()? {
            BY_SUBJECT => GrantIndex::Subject(f.short_str()?),
            BY_SESSION => GrantIndex::Session(f.array()?),
            BY_EXPIRY => GrantIndex::Expiry(f.time()?),
            _ => return None,
        };
        let id = f.array()?;
        f.end()?;
        Some(GrantIndexKey { realm, by, id })
    }

    /// Prefix of a subject's entries.
    pub fn subject_prefix(realm: RealmId, subject: &str) -> Vec<u8> {
        Self::by_prefix(realm, &GrantIndex::Subject(subject), 0)
    }

    /// Prefix of a session's entries.
    pub fn session_prefix(realm: RealmId, sid: &Sid) -> Vec<u8> {
        Self::by_prefix(realm, &GrantIndex::Session(*sid), 0)
    }

    /// The expiry entries of the grants that expire before `ms`, in expiry order.
    pub fn expiring_before(realm: RealmId, ms: i64) -> std::ops::Range<Vec<u8>> {
        let mut start = growable(realm, Tag::GrantIndex, 1);
        start.push(BY_EXPIRY);
        let end = Self::by_prefix(realm, &GrantIndex::Expiry(ms), 0);
        start..end
    }

    /// Realm, tag and `by`, with room for `more` bytes after them.
    fn by_prefix(realm: RealmId, by: &GrantIndex<'_>, more: usize) -> Vec<u8> {
        match by {
            GrantIndex::Subject(subject) => {
                let mut k = growable(realm, Tag::GrantIndex, 2 + subject.len() + more);
                k.push(BY_SUBJECT);
                k.push(subject.len() as u8);
                k.extend_from_slice(subject.as_bytes());
                k
            }
            GrantIndex::Session(sid) => {
                let mut k = growable(realm, Tag::GrantIndex, 1 + 16 + more);
                k.push(BY_SESSION);
                k.extend_from_slice(sid);
                k
            }
            GrantIndex::Expiry(ms) => {
                let mut k = growable(realm, Tag::GrantIndex, 1 + 8 + more);
                k.push(BY_EXPIRY);
                k.extend_from_slice(&time_bytes(*ms));
                k
            }
        }
    }
}

/// The entry by which a grant's token finds it: realm 0, `t`, the token's SHA-256. Its value is
/// a [`GrantLocator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GrantTokenKey {
    pub hash: [u8; 32],
}

impl GrantTokenKey {
    pub const LEN: usize = HEAD_LEN + 32;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[&prefix(GLOBAL, Tag::GrantToken), &self.hash])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let mut f = Fields::global(key, Tag::GrantToken)?;
        let hash = f.array()?;
        f.end()?;
        Some(GrantTokenKey { hash })
    }
}

/// Where a grant is: the value of a [`GrantTokenKey`], realm (4), grant id (16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GrantLocator {
    pub realm: RealmId,
    pub id: GrantId,
}

impl GrantLocator {
    pub const LEN: usize = 4 + 16;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[&self.realm.to_be_bytes(), &self.id])
    }

    pub fn decode(v: &[u8]) -> Option<Self> {
        let mut f = Fields::value(v);
        let realm = f.u32()?;
        let id = f.array()?;
        f.end()?;
        Some(GrantLocator { realm, id })
    }
}

#[cfg(test)]
mod tests {
    use super::super::strategy::{ident, realm, sid, time};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn grant_keys_round_trip_in_id_order(
            r in realm(), a in any::<GrantId>(), b in any::<GrantId>(),
        ) {
            let (x, y) = (GrantKey { realm: r, id: a }, GrantKey { realm: r, id: b });
            prop_assert_eq!(GrantKey::decode(&x.encode()), Some(x));
            prop_assert!(x.encode().starts_with(&GrantKey::prefix(r)));
            prop_assert_eq!(x.encode().cmp(&y.encode()), a.cmp(&b));
        }

        #[test]
        fn grant_index_keys_round_trip_under_their_prefixes(
            r in realm(), subject in ident(), s in sid(), t in time(), id in any::<GrantId>(),
        ) {
            let by_subject = GrantIndexKey { realm: r, by: GrantIndex::Subject(&subject), id };
            let by_session = GrantIndexKey { realm: r, by: GrantIndex::Session(s), id };
            let by_expiry = GrantIndexKey { realm: r, by: GrantIndex::Expiry(t), id };
            for k in [by_subject, by_session, by_expiry] {
                let bytes = k.encode();
                prop_assert_eq!(GrantIndexKey::decode(&bytes), Some(k));
            }
            let subject_prefix = GrantIndexKey::subject_prefix(r, &subject);
            prop_assert!(by_subject.encode().starts_with(&subject_prefix));
            prop_assert!(by_session.encode().starts_with(&GrantIndexKey::session_prefix(r, &s)));
            // Expired before a time: exactly the expiry entries with an earlier time.
            let expiry_entry = by_expiry.encode();
            if t < i64::MAX {
                prop_assert!(GrantIndexKey::expiring_before(r, t + 1).contains(&expiry_entry));
            }
            prop_assert!(!GrantIndexKey::expiring_before(r, t).contains(&expiry_entry));
            let every_expiry = GrantIndexKey::expiring_before(r, i64::MAX);
            prop_assert!(!every_expiry.contains(&by_subject.encode()));
            prop_assert!(!every_expiry.contains(&by_session.encode()));
        }

        #[test]
        fn grant_token_keys_and_locators_round_trip(
            r in realm(), hash in any::<[u8; 32]>(), id in any::<GrantId>(),
        ) {
            let k = GrantTokenKey { hash };
            prop_assert_eq!(GrantTokenKey::decode(&k.encode()), Some(k));
            let at = GrantLocator { realm: r, id };
            prop_assert_eq!(GrantLocator::decode(&at.encode()), Some(at));
            prop_assert_eq!(GrantLocator::decode(&at.encode()[..19]), None);
        }
    }
}
