//! In-process locks striped by what they protect, in place of sled's transactions.
//!
//! Four families, always taken in this order (never the other way round), and within a family
//! all at once in stripe order ([`Stripes::lock_all`]): subjects (a quota check and the insert it
//! allows), sessions (a record's read-modify-write, its grants' additions and its ending),
//! grants (a grant's deletion, a token's uniqueness), deliveries (a delivery's
//! read-modify-write).

use std::sync::{Mutex, MutexGuard};

use super::super::keys::{RealmId, Sid};

const STRIPES: usize = 1024;

pub struct Stripes {
    locks: Vec<Mutex<()>>,
}

impl Default for Stripes {
    fn default() -> Self {
        Stripes {
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }
}

pub type Guards<'a> = Vec<MutexGuard<'a, ()>>;

/// What a session's lock is taken by: its realm id and sid (the key of its stripe, not a key
/// of the tree).
pub fn session_lock(realm: RealmId, sid: &Sid) -> [u8; 20] {
    let mut k = [0u8; 20];
    let (r, s) = k.split_at_mut(4);
    r.copy_from_slice(&realm.to_be_bytes());
    s.copy_from_slice(sid);
    k
}

fn stripe_of(key: &[u8]) -> usize {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % STRIPES as u64) as usize
}

impl Stripes {
    pub fn lock(&self, key: &[u8]) -> MutexGuard<'_, ()> {
        self.locks[stripe_of(key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the stripes of every key, in stripe order.
    pub fn lock_all<'a, K: AsRef<[u8]>>(&'a self, keys: impl IntoIterator<Item = K>) -> Guards<'a> {
        let mut idx: Vec<usize> = keys.into_iter().map(|k| stripe_of(k.as_ref())).collect();
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter()
            .map(|i| self.locks[i].lock().unwrap_or_else(|e| e.into_inner()))
            .collect()
    }
}
