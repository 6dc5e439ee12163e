//! Byte layout of every key of the v2 store: one sled tree, every key starting with a 4-byte realm
//! id (0 for what belongs to no realm) and a one-byte tag.
//!
//! | tag | key after realm + tag                          | value                        |
//! |-----|------------------------------------------------|------------------------------|
//! | `S` | created (8) + sid (16)                         | compact session record       |
//! | `L` | last access (8) + sid                          | created (8) for legacy sids  |
//! | `E` | effective expiry (8) + sid                     | created (8) for legacy sids  |
//! | `U` | len + subject + created + sid                  | —                            |
//! | `C` | len + client id + created + sid                | —                            |
//! | `W` | display-name word + 0 + created + sid          | —                            |
//! | `I` | client address (16) + created + sid            | —                            |
//! | `x` | sid (legacy v4 sids only)                      | created (8)                  |
//! | `c` | client id                                      | registration (JSON)          |
//! | `g` | grant id (16)                                  | grant record                 |
//! | `h` | 1 + len + subject + id, 2 + sid + id, 3 + expiry + id | —                     |
//! | `o` | delivery id (8)                                | delivery (JSON)              |
//! | `s` | status + delivery id                           | —                            |
//!
//! Realm 0: `M` meta (version, results-token key), `R` realm records, `A` audit log, `J` counter
//! journal, `N` stored counters (counter key → value), `K` counter checkpoint chunks (earlier
//! format, converted on open), `i` interned strings, `Q` outbox queues (across realms, as
//! before), `T` legacy session tokens (SHA-256 of the token text → realm + created + sid), `t`
//! grant tokens (SHA-256 → realm + grant id).
//!
//! Times are milliseconds, big-endian with the sign bit flipped so byte order is time order.
//! `(created, sid)` locates a record: index entries end with it, or (for the last-access and expiry
//! indexes) with the sid, whose creation time is in its high bits ([`created_of_sid`]); a sid
//! migrated from the previous layout (UUIDv4) has its creation time beside it instead.

use super::super::keys::{time_bytes, time_from_bytes, RealmId, Sid};

/// The realm id of keys that belong to no realm.
pub const GLOBAL: RealmId = 0;

pub const RECORD: u8 = b'S';
pub const LAST_ACCESS: u8 = b'L';
pub const EXPIRY: u8 = b'E';
pub const SUBJECT: u8 = b'U';
pub const CLIENT: u8 = b'C';
pub const WORD: u8 = b'W';
pub const ADDRESS: u8 = b'I';
pub const LEGACY_SID: u8 = b'x';
pub const CLIENT_REG: u8 = b'c';
pub const GRANT: u8 = b'g';
pub const GRANT_INDEX: u8 = b'h';
pub const DELIVERY: u8 = b'o';
pub const DELIVERY_STATUS: u8 = b's';

pub const META: u8 = b'M';
pub const REALM: u8 = b'R';
pub const AUDIT: u8 = b'A';
pub const JOURNAL: u8 = b'J';
pub const CHECKPOINT: u8 = b'K';
pub const COUNTER: u8 = b'N';
pub const INTERN: u8 = b'i';
pub const QUEUE: u8 = b'Q';
pub const LEGACY_TOKEN: u8 = b'T';
pub const GRANT_TOKEN: u8 = b't';

/// Realm id and tag: the prefix of one kind of key.
pub fn prefix(realm: RealmId, tag: u8) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[..4].copy_from_slice(&realm.to_be_bytes());
    k[4] = tag;
    k
}

/// A key of realm 0.
pub fn global(tag: u8, rest: &[u8]) -> Vec<u8> {
    [&prefix(GLOBAL, tag)[..], rest].concat()
}

/// Length of a record key, and of a last-access or expiry index key.
pub const TIMED_KEY_LEN: usize = 5 + 8 + 16;

/// A key of realm + tag + time + sid: a record (time = created) or a sort-index entry.
pub fn timed_key(realm: RealmId, tag: u8, ms: i64, sid: &Sid) -> [u8; TIMED_KEY_LEN] {
    let mut k = [0u8; TIMED_KEY_LEN];
    k[..5].copy_from_slice(&prefix(realm, tag));
    k[5..13].copy_from_slice(&time_bytes(ms));
    k[13..].copy_from_slice(sid);
    k
}

/// Key of a session record.
pub fn record_key(realm: RealmId, created_ms: i64, sid: &Sid) -> [u8; TIMED_KEY_LEN] {
    timed_key(realm, RECORD, created_ms, sid)
}

/// The (time, sid) a key ends with.
pub fn split_time_sid(key: &[u8]) -> (i64, Sid) {
    let n = key.len();
    let mut sid = [0u8; 16];
    sid.copy_from_slice(&key[n - 16..]);
    (time_from_bytes(&key[n - 24..n - 16]), sid)
}

/// The realm id a key starts with.
pub fn realm_of(key: &[u8]) -> Option<RealmId> {
    Some(RealmId::from_be_bytes(key.get(..4)?.try_into().ok()?))
}

/// Prefix of the subject- or client-index entries of one value.
pub fn attr_prefix(realm: RealmId, tag: u8, value: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + value.len() + 24);
    k.extend_from_slice(&prefix(realm, tag));
    k.push(value.len() as u8);
    k.extend_from_slice(value);
    k
}

/// A subject- or client-index entry.
pub fn attr_key(realm: RealmId, tag: u8, value: &[u8], created_ms: i64, sid: &Sid) -> Vec<u8> {
    let mut k = attr_prefix(realm, tag, value);
    k.extend_from_slice(&time_bytes(created_ms));
    k.extend_from_slice(sid);
    k
}

/// Prefix of every word-index entry of words starting with `word_prefix`.
pub fn word_prefix(realm: RealmId, word_prefix: &str) -> Vec<u8> {
    [&prefix(realm, WORD)[..], word_prefix.as_bytes()].concat()
}

/// A word-index entry: the word (alphanumeric, so it holds no 0 byte), 0, created, sid.
pub fn word_key(realm: RealmId, word: &str, created_ms: i64, sid: &Sid) -> Vec<u8> {
    let mut k = word_prefix(realm, word);
    k.push(0);
    k.extend_from_slice(&time_bytes(created_ms));
    k.extend_from_slice(sid);
    k
}

/// The word of a word-index key.
#[allow(dead_code)]
pub fn word_of_key(key: &[u8]) -> Option<&[u8]> {
    key.get(5..key.len().checked_sub(25)?)
}

/// Length of a client-address index key.
pub const ADDRESS_KEY_LEN: usize = 5 + 16 + 24;

/// Prefix of the client-address index entries of one address (16 bytes, IPv4 mapped: see
/// [`crate::address`]), in creation order.
pub fn address_prefix(realm: RealmId, address: &[u8; 16]) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[..5].copy_from_slice(&prefix(realm, ADDRESS));
    k[5..].copy_from_slice(address);
    k
}

/// A client-address index entry.
pub fn address_key(
    realm: RealmId,
    address: &[u8; 16],
    created_ms: i64,
    sid: &Sid,
) -> [u8; ADDRESS_KEY_LEN] {
    let mut k = [0u8; ADDRESS_KEY_LEN];
    k[..21].copy_from_slice(&address_prefix(realm, address));
    k[21..29].copy_from_slice(&time_bytes(created_ms));
    k[29..].copy_from_slice(sid);
    k
}

/// Key of a legacy sid's creation time.
pub fn legacy_sid_key(realm: RealmId, sid: &Sid) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[..5].copy_from_slice(&prefix(realm, LEGACY_SID));
    k[5..].copy_from_slice(sid);
    k
}

/// The creation time a sid carries: its high 48 bits, for a UUIDv7; `None` for other sids
/// (migrated ones), whose creation time is stored beside them.
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

/// Key of a journal entry.
pub fn journal_key(seq: u64) -> Vec<u8> {
    global(JOURNAL, &seq.to_be_bytes())
}

/// Key of a stored counter.
pub fn counter_key(counter: &[u8]) -> Vec<u8> {
    global(COUNTER, counter)
}

/// Key of a meta value.
pub fn meta_key(name: &str) -> Vec<u8> {
    global(META, name.as_bytes())
}

/// Key of a realm record.
pub fn realm_key(name: &str) -> Vec<u8> {
    global(REALM, name.as_bytes())
}

/// Key of a client registration.
pub fn client_reg_key(realm: RealmId, client_id: &str) -> Vec<u8> {
    [&prefix(realm, CLIENT_REG)[..], client_id.as_bytes()].concat()
}

/// Key of an audit entry.
pub fn audit_key(id: u64) -> Vec<u8> {
    global(AUDIT, &id.to_be_bytes())
}

/// Key of a grant record.
pub fn grant_key(realm: RealmId, id: &[u8; 16]) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[..5].copy_from_slice(&prefix(realm, GRANT));
    k[5..].copy_from_slice(id);
    k
}

/// Key of a grant token entry.
pub fn grant_token_key(hash: &[u8; 32]) -> Vec<u8> {
    global(GRANT_TOKEN, hash)
}

/// Key of a legacy session token entry.
pub fn legacy_token_key(hash: &[u8; 32]) -> Vec<u8> {
    global(LEGACY_TOKEN, hash)
}

/// Prefix of a subject's grant-index entries.
pub fn grant_subject_prefix(realm: RealmId, subject: &str) -> Vec<u8> {
    let mut k = prefix(realm, GRANT_INDEX).to_vec();
    k.push(1);
    k.push(subject.len() as u8);
    k.extend_from_slice(subject.as_bytes());
    k
}

/// Prefix of a session's grant-index entries.
pub fn grant_session_prefix(realm: RealmId, sid: &Sid) -> Vec<u8> {
    let mut k = prefix(realm, GRANT_INDEX).to_vec();
    k.push(2);
    k.extend_from_slice(sid);
    k
}

/// Prefix of a realm's grant-expiry entries.
pub fn grant_expiry_prefix(realm: RealmId) -> Vec<u8> {
    let mut k = prefix(realm, GRANT_INDEX).to_vec();
    k.push(3);
    k
}

/// Key of a delivery record.
pub fn delivery_key(realm: RealmId, id: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..5].copy_from_slice(&prefix(realm, DELIVERY));
    k[5..].copy_from_slice(&id.to_be_bytes());
    k
}

/// Key of an interned string.
pub fn intern_key(id: u32) -> Vec<u8> {
    global(INTERN, &id.to_be_bytes())
}

/// Key of a checkpoint chunk (`u32::MAX`: the header).
pub fn checkpoint_key(chunk: u32) -> Vec<u8> {
    global(CHECKPOINT, &chunk.to_be_bytes())
}

/// Time bytes re-exported for the modules that build ranges.
pub fn time(ms: i64) -> [u8; 8] {
    time_bytes(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn word_keys_sort_by_word_then_time_and_parse_back() {
        let a = word_key(1, "smi", 5, &[1; 16]);
        let b = word_key(1, "smith", 1, &[1; 16]);
        assert!(a < b);
        assert!(a.starts_with(&word_prefix(1, "smi")) && b.starts_with(&word_prefix(1, "smi")));
        assert_eq!(word_of_key(&b), Some(&b"smith"[..]));
        assert_eq!(split_time_sid(&b), (1, [1; 16]));
    }
}
