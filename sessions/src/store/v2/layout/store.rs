//! Keys of the store's own values, in realm 0: meta values (`M`), interned strings (`i`) and the
//! audit log (`A`).

use super::{fixed, growable, prefix, Fields, Tag, GLOBAL, HEAD_LEN};

/// A meta value's key: realm 0, `M`, the value's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaKey {
    /// The layout version (`u32`, big-endian).
    Version,
    /// The key results tokens are signed with (32 bytes).
    ResultsTokenKey,
    /// What is added to sled's generated ids (`u64`, big-endian), so that a compacted copy goes
    /// on from the ids the original handed out.
    IdBase,
    /// The first journal entry the stored counters do not cover (`u64`, big-endian).
    CountersUpto,
}

impl MetaKey {
    #[cfg(test)]
    const ALL: [MetaKey; 4] = [
        MetaKey::Version,
        MetaKey::ResultsTokenKey,
        MetaKey::IdBase,
        MetaKey::CountersUpto,
    ];

    fn name(self) -> &'static str {
        match self {
            MetaKey::Version => "version",
            MetaKey::ResultsTokenKey => "results_token_key",
            MetaKey::IdBase => "id_base",
            MetaKey::CountersUpto => "counters_upto",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let name = self.name();
        let mut k = growable(GLOBAL, Tag::Meta, name.len());
        k.extend_from_slice(name.as_bytes());
        k
    }

    /// (The store only reads the values it names; this is for the round-trip test.)
    #[cfg(test)]
    pub fn decode(key: &[u8]) -> Option<Self> {
        let name = Fields::global(key, Tag::Meta)?.rest();
        MetaKey::ALL
            .into_iter()
            .find(|m| m.name().as_bytes() == name)
    }
}

/// An interned string's key: realm 0, `i`, its id (4). Ids are handed out in order from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InternKey {
    pub id: u32,
}

impl InternKey {
    pub const LEN: usize = HEAD_LEN + 4;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[&prefix(GLOBAL, Tag::Intern), &self.id.to_be_bytes()])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let mut f = Fields::global(key, Tag::Intern)?;
        let id = f.u32()?;
        f.end()?;
        Some(InternKey { id })
    }

    /// Prefix of every interned string, in id order.
    pub fn prefix() -> [u8; HEAD_LEN] {
        prefix(GLOBAL, Tag::Intern)
    }
}

/// An audit entry's key: realm 0, `A`, its id (8). The log is in id order, newest last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AuditKey {
    pub id: u64,
}

impl AuditKey {
    pub const LEN: usize = HEAD_LEN + 8;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[&prefix(GLOBAL, Tag::Audit), &self.id.to_be_bytes()])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let mut f = Fields::global(key, Tag::Audit)?;
        let id = f.u64()?;
        f.end()?;
        Some(AuditKey { id })
    }

    /// Prefix of every audit entry.
    pub fn prefix() -> [u8; HEAD_LEN] {
        prefix(GLOBAL, Tag::Audit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn meta_keys_round_trip_and_are_their_names() {
        for m in MetaKey::ALL {
            assert_eq!(MetaKey::decode(&m.encode()), Some(m));
        }
        assert_eq!(MetaKey::Version.encode(), b"\0\0\0\0Mversion");
        assert_eq!(MetaKey::decode(b"\0\0\0\0Mother"), None);
    }

    proptest! {
        #[test]
        fn intern_keys_round_trip_in_id_order(a in any::<u32>(), b in any::<u32>()) {
            let (x, y) = (InternKey { id: a }, InternKey { id: b });
            prop_assert_eq!(InternKey::decode(&x.encode()), Some(x));
            prop_assert!(x.encode().starts_with(&InternKey::prefix()));
            prop_assert_eq!(x.encode().cmp(&y.encode()), a.cmp(&b));
        }

        #[test]
        fn audit_keys_round_trip_in_id_order(a in any::<u64>(), b in any::<u64>()) {
            let (x, y) = (AuditKey { id: a }, AuditKey { id: b });
            prop_assert_eq!(AuditKey::decode(&x.encode()), Some(x));
            prop_assert!(x.encode().starts_with(&AuditKey::prefix()));
            prop_assert_eq!(x.encode().cmp(&y.encode()), a.cmp(&b));
        }
    }
}
