//! The two ids the store's keys are built from: a session's and a realm's. The byte layout of
//! every key of the embedded store is in `v2::layout`; the v1 layout's keys, read only when a v1
//! directory is upgraded, are in `v2::v1_keys`.

/// Bytes of a session id.
pub type Sid = [u8; 16];

/// Internal id of a realm; the prefix of all its keys.
pub type RealmId = u32;
