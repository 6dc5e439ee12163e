//! Keys of the v1 layout (one sled tree per entity and index), as the upgrade (`upgrade.rs`) reads
//! them: sessions, grants and deliveries are keyed by realm id (4 bytes, big-endian) and what
//! names them in that realm, clients by realm id and client id, realms by name, audit entries by
//! id (8 bytes, big-endian). The upgrade reads the records themselves with the decoders both
//! layouts use and writes them under the keys of [`super::layout`].

use super::super::keys::RealmId;
use crate::error::{Result, SessionError};

fn bad(what: &str) -> SessionError {
    SessionError::Storage(format!("bad {what} key in the v1 layout"))
}

/// The realm id and the rest of a key of the `sessions`, `grants`, `outbox` or `clients` tree.
pub fn split_realm(key: &[u8]) -> Result<(RealmId, &[u8])> {
    let (realm, rest) = key.split_first_chunk::<4>().ok_or_else(|| bad("realm"))?;
    Ok((RealmId::from_be_bytes(*realm), rest))
}

/// The realm id and client id of a key of the `clients` tree.
pub fn client(key: &[u8]) -> Result<(RealmId, &str)> {
    let (realm, id) = split_realm(key)?;
    Ok((realm, std::str::from_utf8(id).map_err(|_| bad("client"))?))
}

/// The realm name of a key of the `realms` tree.
pub fn realm_name(key: &[u8]) -> Result<&str> {
    std::str::from_utf8(key).map_err(|_| bad("realm"))
}

/// The id of a key of the `audit` tree.
pub fn audit_id(key: &[u8]) -> Result<u64> {
    Ok(u64::from_be_bytes(
        key.try_into().map_err(|_| bad("audit"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_keys_read_back() {
        assert_eq!(
            split_realm(b"\0\0\x01\x02rest").unwrap(),
            (258, &b"rest"[..])
        );
        assert!(split_realm(b"\0\0\x01").is_err());
        assert_eq!(client(b"\0\0\0\x07crm").unwrap(), (7, "crm"));
        assert!(client(b"\0\0\0\x07\xff").is_err());
        assert_eq!(realm_name(b"main").unwrap(), "main");
        assert_eq!(audit_id(&42u64.to_be_bytes()).unwrap(), 42);
        assert!(audit_id(b"short").is_err());
    }
}
