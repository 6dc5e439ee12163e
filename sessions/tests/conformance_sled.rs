//! The store's conformance suite ([`sessions::conformance`]) on the previous sled layout (v1,
//! `SledStoreV1`), in a temporary directory per test.

use std::time::{Duration, Instant};

use sessions::conformance::{files_under, Backend};
use sessions::store::SledStoreV1;

/// The sled store (today's layout) in a temporary directory.
struct SledBackend;

impl Backend for SledBackend {
    type Location = tempfile::TempDir;
    type Store = SledStoreV1;

    fn create(&self) -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    /// Waits for the lock a store dropped in this process may still hold: sled's background IO
    /// threads can keep the directory's lock for a moment after the drop.
    fn open(&self, dir: &tempfile::TempDir) -> SledStoreV1 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match SledStoreV1::open(dir.path()) {
                Ok(store) => return store,
                Err(e) if e.to_string().contains("lock") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("opening {}: {e}", dir.path().display()),
            }
        }
    }

    fn close(&self, store: SledStoreV1) {
        store.wait_durable().unwrap();
    }

    fn stored_bytes(&self, dir: &tempfile::TempDir) -> Option<Vec<Vec<u8>>> {
        Some(files_under(dir.path()))
    }

    fn check(&self, store: &SledStoreV1) -> Vec<String> {
        store.check(false).unwrap().problems
    }
}

sessions::conformance_suite!(sled_v1, SledBackend);
