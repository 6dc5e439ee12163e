//! Keys of realms (`R`, realm 0) and of the clients registered in them (`c`).

use super::RealmId;
use super::{growable, prefix, Fields, Tag, GLOBAL, HEAD_LEN};

/// A realm record's key: realm 0, `R`, the realm's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RealmKey<'a> {
    pub name: &'a str,
}

impl<'a> RealmKey<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut k = growable(GLOBAL, Tag::Realm, self.name.len());
        k.extend_from_slice(self.name.as_bytes());
        k
    }

    /// (The store finds realms by their records; this is for the round-trip test.)
    #[cfg(test)]
    pub fn decode(key: &'a [u8]) -> Option<Self> {
        let name = Fields::global(key, Tag::Realm)?.rest_str()?;
        Some(RealmKey { name })
    }

    /// Prefix of every realm record.
    pub fn prefix() -> [u8; HEAD_LEN] {
        prefix(GLOBAL, Tag::Realm)
    }
}

/// A client registration's key: realm, `c`, client id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientRegKey<'a> {
    pub realm: RealmId,
    pub client_id: &'a str,
}

impl<'a> ClientRegKey<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut k = growable(self.realm, Tag::ClientReg, self.client_id.len());
        k.extend_from_slice(self.client_id.as_bytes());
        k
    }

    pub fn decode(key: &'a [u8]) -> Option<Self> {
        let (realm, f) = Fields::of(key, Tag::ClientReg)?;
        let client_id = f.rest_str()?;
        Some(ClientRegKey { realm, client_id })
    }

    /// Prefix of every client registration of a realm, in client-id order.
    pub fn prefix(realm: RealmId) -> [u8; HEAD_LEN] {
        prefix(realm, Tag::ClientReg)
    }
}

#[cfg(test)]
mod tests {
    use super::super::strategy::{ident, realm};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn realm_keys_round_trip(name in ident()) {
            let k = RealmKey { name: &name };
            let bytes = k.encode();
            prop_assert_eq!(RealmKey::decode(&bytes), Some(k));
            prop_assert!(k.encode().starts_with(&RealmKey::prefix()));
        }

        #[test]
        fn client_keys_round_trip_in_client_order(r in realm(), a in ident(), b in ident()) {
            let x = ClientRegKey { realm: r, client_id: &a };
            let y = ClientRegKey { realm: r, client_id: &b };
            let bytes = x.encode();
            prop_assert_eq!(ClientRegKey::decode(&bytes), Some(x));
            prop_assert!(x.encode().starts_with(&ClientRegKey::prefix(r)));
            prop_assert_eq!(x.encode().cmp(&y.encode()), a.cmp(&b));
        }
    }
}
