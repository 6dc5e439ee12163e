//! The store's conformance suite ([`sessions::conformance`]) on the v2 layout, in a temporary
//! directory per test.

use std::time::Duration;

use sessions::conformance::{files_under, Backend};
use sessions::store::{dir_lock, SledStoreV2};

/// The sled store (v2 layout) in a temporary directory.
struct SledV2Backend;

impl Backend for SledV2Backend {
    type Location = tempfile::TempDir;
    type Store = SledStoreV2;

    async fn create(&self) -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    /// Waits for the lock a store dropped in this process may still hold.
    async fn open(&self, dir: &tempfile::TempDir) -> SledStoreV2 {
        let wait = Duration::from_secs(10);
        dir_lock::open_when_free(dir.path(), wait, || SledStoreV2::open(dir.path()))
            .unwrap_or_else(|e| panic!("opening {}: {e}", dir.path().display()))
    }

    async fn close(&self, store: SledStoreV2) {
        store.wait_durable().unwrap();
    }

    async fn stored_bytes(&self, dir: &tempfile::TempDir) -> Option<Vec<Vec<u8>>> {
        Some(files_under(dir.path()))
    }

    async fn check(&self, store: &SledStoreV2) -> Vec<String> {
        store.check(false).unwrap().problems
    }
}

sessions::conformance_suite!(sled_v2, SledV2Backend);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_records_keep_their_role() {
    sessions::conformance::admin_records_keep_their_role(&SledV2Backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_streams_are_stored_replaced_and_deleted() {
    sessions::conformance::signal_streams_are_stored_replaced_and_deleted(&SledV2Backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ending_queues_one_session_revoked_per_stream() {
    sessions::conformance::every_ending_queues_one_session_revoked_per_stream(&SledV2Backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_delivery_is_read_back_by_id_and_leaves_the_queue_once_delivered() {
    sessions::conformance::a_queued_delivery_is_read_back_by_id_and_leaves_the_queue_once_delivered(&SledV2Backend).await;
}
