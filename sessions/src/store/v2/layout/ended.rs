//! Keys of the ended-session history: the entries (`H`, in end order), and their subject (`V`)
//! and sid (`D`) indexes.

use super::{fixed, growable, prefix, time_bytes, Fields, RealmId, Sid, Tag, HEAD_LEN};

/// A history entry's key: realm, `H`, end time, sid. A realm's entries are in end order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndedKey {
    pub realm: RealmId,
    pub ended_ms: i64,
    pub sid: Sid,
}

impl EndedKey {
    pub const LEN: usize = HEAD_LEN + 8 + 16;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[
            &prefix(self.realm, Tag::Ended),
            &time_bytes(self.ended_ms),
            &self.sid,
        ])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let (realm, mut f) = Fields::of(key, Tag::Ended)?;
        let ended_ms = f.time()?;
        let sid = f.array()?;
        f.end()?;
        Some(EndedKey {
            realm,
            ended_ms,
            sid,
        })
    }

    /// Prefix of every history entry of a realm.
    pub fn prefix(realm: RealmId) -> [u8; HEAD_LEN] {
        prefix(realm, Tag::Ended)
    }
}

/// A history entry's subject index entry: realm, `V`, the subject (its length, one byte, and
/// bytes), end time, sid; no value. One subject's entries are in end order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndedSubjectKey<'a> {
    pub realm: RealmId,
    /// At most 255 bytes (identifiers are).
    pub subject: &'a str,
    pub ended_ms: i64,
    pub sid: Sid,
}

impl<'a> EndedSubjectKey<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut k = Self::prefix(self.realm, self.subject);
        k.extend_from_slice(&time_bytes(self.ended_ms));
        k.extend_from_slice(&self.sid);
        k
    }

    pub fn decode(key: &'a [u8]) -> Option<Self> {
        let (realm, mut f) = Fields::of(key, Tag::EndedSubject)?;
        let subject = f.short_str()?;
        let ended_ms = f.time()?;
        let sid = f.array()?;
        f.end()?;
        Some(EndedSubjectKey {
            realm,
            subject,
            ended_ms,
            sid,
        })
    }

    /// Prefix of one subject's entries.
    pub fn prefix(realm: RealmId, subject: &str) -> Vec<u8> {
        let mut k = growable(realm, Tag::EndedSubject, 1 + subject.len() + 24);
        k.push(subject.len() as u8);
        k.extend_from_slice(subject.as_bytes());
        k
    }
}

/// A history entry's sid index entry: realm, `D`, sid; the value is the end time (8 bytes, as
/// in keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndedSidKey {
    pub realm: RealmId,
    pub sid: Sid,
}

impl EndedSidKey {
    pub const LEN: usize = HEAD_LEN + 16;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[&prefix(self.realm, Tag::EndedSid), &self.sid])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let (realm, mut f) = Fields::of(key, Tag::EndedSid)?;
        let sid = f.array()?;
        f.end()?;
        Some(EndedSidKey { realm, sid })
    }

    /// The value: the end time.
    pub fn value(ended_ms: i64) -> [u8; 8] {
        time_bytes(ended_ms)
    }

    /// The end time a value holds.
    pub fn ended_of(value: &[u8]) -> Option<i64> {
        let mut f = Fields::value(value);
        let t = f.time()?;
        f.end()?;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::super::strategy;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ended_keys_round_trip_in_end_order(
            realm in strategy::realm(), a in strategy::time(), b in strategy::time(),
            sid in strategy::sid(), subject in strategy::ident(),
        ) {
            let k = EndedKey { realm, ended_ms: a, sid };
            prop_assert_eq!(EndedKey::decode(&k.encode()), Some(k));
            let later = EndedKey { realm, ended_ms: b, sid };
            prop_assert_eq!(k.encode().cmp(&later.encode()), a.cmp(&b));
            let s = EndedSubjectKey { realm, subject: &subject, ended_ms: a, sid };
            let bytes = s.encode();
            prop_assert_eq!(EndedSubjectKey::decode(&bytes), Some(s));
            prop_assert!(bytes.starts_with(&EndedSubjectKey::prefix(realm, &subject)));
            let d = EndedSidKey { realm, sid };
            prop_assert_eq!(EndedSidKey::decode(&d.encode()), Some(d));
            prop_assert_eq!(EndedSidKey::ended_of(&EndedSidKey::value(a)), Some(a));
        }
    }
}
