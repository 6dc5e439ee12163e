//! Helpers shared by the store's integration tests.

use std::path::Path;
use std::time::{Duration, Instant};

use sessions::store::SledStore;

/// Opens the store in `dir` again after it was dropped in this process: sled's background IO
/// threads can hold the directory's lock for a moment after the drop.
pub fn reopen(dir: &Path) -> SledStore {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match SledStore::open(dir) {
            Ok(store) => return store,
            Err(e) if e.to_string().contains("lock") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("reopening {}: {e}", dir.display()),
        }
    }
}
