//! Byte layouts of every sled key. Integers are big-endian so byte order is numeric order, and
//! every session key starts with the 4-byte realm id so a realm is one contiguous range.

/// Bytes of a session id.
pub type Sid = [u8; 16];

/// Internal id of a realm; the prefix of all its keys.
pub type RealmId = u32;

/// Length of a sort-index key: realm, time, sid.
pub const SORT_KEY_LEN: usize = 4 + 8 + 16;

/// What an attribute-index entry indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum AttrKind {
    Subject = 1,
    Client = 2,
    /// A case-folded prefix of a display-name word.
    NamePrefix = 3,
}

/// A timestamp in milliseconds, encoded so unsigned byte order is time order.
pub fn time_bytes(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`time_bytes`].
pub fn time_from_bytes(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    (u64::from_be_bytes(a) ^ (1 << 63)) as i64
}

/// Key of a session record: realm id, sid.
pub fn session_key(realm: RealmId, sid: &Sid) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..4].copy_from_slice(&realm.to_be_bytes());
    k[4..].copy_from_slice(sid);
    k
}

/// Key of a sort-index entry: realm id, time, sid.
pub fn sort_key(realm: RealmId, ms: i64, sid: &Sid) -> [u8; SORT_KEY_LEN] {
    let mut k = [0u8; SORT_KEY_LEN];
    k[..4].copy_from_slice(&realm.to_be_bytes());
    k[4..12].copy_from_slice(&time_bytes(ms));
    k[12..].copy_from_slice(sid);
    k
}

/// Prefix shared by every attribute-index entry of one (kind, value) in a realm; also the key of
/// that attribute's counter.
pub fn attr_prefix(realm: RealmId, kind: AttrKind, value: &[u8]) -> Vec<u8> {
    debug_assert!(value.len() <= u8::MAX as usize);
    let mut k = Vec::with_capacity(6 + value.len() + 24);
    k.extend_from_slice(&realm.to_be_bytes());
    k.push(kind as u8);
    k.push(value.len() as u8);
    k.extend_from_slice(value);
    k
}

/// Key of an attribute-index entry: the attribute prefix, creation time, sid.
pub fn attr_key(
    realm: RealmId,
    kind: AttrKind,
    value: &[u8],
    created_ms: i64,
    sid: &Sid,
) -> Vec<u8> {
    let mut k = attr_prefix(realm, kind, value);
    k.extend_from_slice(&time_bytes(created_ms));
    k.extend_from_slice(sid);
    k
}

/// The prefix covering all keys of a realm.
pub fn realm_prefix(realm: RealmId) -> [u8; 4] {
    realm.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bytes_preserve_order() {
        let times = [i64::MIN, -5, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for w in times.windows(2) {
            assert!(time_bytes(w[0]) < time_bytes(w[1]));
            assert_eq!(time_from_bytes(&time_bytes(w[0])), w[0]);
        }
    }
}
