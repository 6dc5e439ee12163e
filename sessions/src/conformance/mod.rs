//! The behavioural conformance suite of [`SessionStore`]: every backend must pass it.
//!
//! Enabled by the `conformance` feature. Each behaviour is one `pub async fn` taking a [`Backend`],
//! written against the [`SessionStore`] trait only;
//! [`conformance_suite!`](crate::conformance_suite) turns the whole list into one `#[test]` per
//! behaviour for a backend:
//!
//! ```ignore
//! struct MyBackend;
//! impl crate::conformance::Backend for MyBackend {
//!     type Location = tempfile::TempDir;          // or a guard that drops a scratch database
//!     type Store = MyStore;
//!     async fn create(&self) -> Self::Location { tempfile::tempdir().unwrap() }
//!     async fn open(&self, at: &Self::Location) -> MyStore { MyStore::open(at.path()).unwrap() }
//! }
//! crate::conformance_suite!(my_store, MyBackend);
//! ```
//!
//! A backend provides a *location* (a directory, a scratch database: anything that names one
//! store and deletes it when dropped) and opens a store there, as often as a test asks: tests of
//! persistence drop or [`Backend::close`] the store and open the same location again. Optional
//! hooks let a backend offer more checks: [`Backend::stored_bytes`] (no token is kept in clear)
//! and [`Backend::check`] (its own consistency check, run after busy tests).

use std::path::Path;

use crate::store::SessionStore;

mod accounts;
mod address_and_time;
mod changes;
mod counts;
mod devices;
mod ended;
mod exact_ids;
mod lifecycle;
mod networks;
mod paging;
mod revocation;
mod signals;
mod stats;

pub use accounts::*;
pub use address_and_time::*;
pub use changes::*;
pub use counts::*;
pub use devices::*;
pub use ended::*;
pub use exact_ids::*;
pub use lifecycle::*;
pub use networks::*;
pub use paging::*;
pub use revocation::*;
pub use signals::*;
pub use stats::*;

/// A storage backend under test. Its methods are `async fn`s in the trait (not `Send`-bound):
/// the suite awaits them on its test's own task.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// Where one store lives: a temporary directory, a scratch database (by name). Dropping it
    /// deletes the store; every [`Backend::create`] answers a new, empty one.
    type Location;
    /// The store. The suite uses it only through [`SessionStore`] (and the hooks below).
    type Store: SessionStore + 'static;

    /// A new location, holding no store yet (or an empty one).
    async fn create(&self) -> Self::Location;
    /// Opens the store at `location`: empty when new, else with everything stored there before.
    /// The suite opens a location again only after dropping (or closing) the store it opened
    /// before; if the backend's resources linger after a drop (a directory lock, connections),
    /// wait for them here.
    async fn open(&self, location: &Self::Location) -> Self::Store;
    /// Shuts the store down cleanly: the next [`Backend::open`] of its location must find
    /// everything written through it, also what its methods do not promise is durable when they
    /// return. The default drops it.
    async fn close(&self, store: Self::Store) {
        drop(store)
    }
    /// Every byte the store keeps at `location` (after it was closed), as chunks (files, rows),
    /// to check that no token is kept in clear. `None`, the default, skips that check.
    async fn stored_bytes(&self, _location: &Self::Location) -> Option<Vec<Vec<u8>>> {
        None
    }
    /// The problems the backend's own consistency check finds (indexes, counters); the suite
    /// asserts there are none after its busier tests. The default finds none.
    async fn check(&self, _store: &Self::Store) -> Vec<String> {
        Vec::new()
    }
}

/// A new location and the store opened there. The store comes first, so it is dropped before its
/// location.
pub async fn fresh<B: Backend>(backend: &B) -> (B::Store, B::Location) {
    let location = backend.create().await;
    (backend.open(&location).await, location)
}

/// The contents of every file under `dir`, for [`Backend::stored_bytes`] of a backend that keeps
/// its data in files.
pub fn files_under(dir: &Path) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for entry in std::fs::read_dir(&p).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path)
            } else {
                files.push(std::fs::read(&path).unwrap())
            }
        }
    }
    files
}

/// Runs a property test: `cases` cases of `strategy`, each awaited in turn on the test's
/// runtime (proptest's runner is synchronous, so it runs as a blocking section of the worker).
/// Failures are persisted where proptest puts those of library code,
/// `sessions/proptest-regressions/conformance/<file>.txt` for the suite file `source` (its
/// `file!()`), and replayed first.
fn check_property<S, F>(cases: u32, source: &'static str, strategy: S, test: impl Fn(S::Value) -> F)
where
    S: proptest::strategy::Strategy,
    S::Value: std::fmt::Debug,
    F: std::future::Future<Output = Result<(), proptest::test_runner::TestCaseError>>,
{
    use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
    let config = Config {
        cases,
        source_file: Some(source),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let runtime = tokio::runtime::Handle::current();
    let ran = tokio::task::block_in_place(|| runner.run(&strategy, |v| runtime.block_on(test(v))));
    if let Err(e) = ran {
        panic!("{e}\n{runner}");
    }
}

/// Expands to one `#[tokio::test]` (multi-threaded) per behaviour of the suite, in a module of the given name, for the
/// backend expression (evaluated in that module, which sees its parent's items):
/// `crate::conformance_suite!(sled_v1, SledBackend);`
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $backend:expr) => {
        $crate::conformance_suite!(@tests $name, $backend,
            // lifecycle
            unknown_realms_are_errors_everywhere,
            validate_refresh_and_expiry,
            reaper_removes_expired_sessions_in_batches,
            quotas_deny_or_evict_the_oldest,
            properties_clients_and_lookup,
            removal_selected_filtered_dry_run_and_realm_wide,
            reopening_keeps_everything_and_no_token_is_stored_in_clear,
            concurrent_removals_leave_exact_counts,
            // exact ids
            blank_ids_in_a_removal_are_refused_before_anything_happens,
            padded_ids_match_nothing_in_removal_and_listing,
            session_ids_compare_as_parsed_values,
            a_blank_or_padded_id_removes_nothing_it_was_not_asked_for,
            // paging
            paging_forward_and_back_visits_every_match_once,
            rows_present_throughout_are_seen_exactly_once_while_others_come_and_go,
            results_tokens_are_bound_to_their_query_and_tamper_evident,
            // grants, revocation, outbox
            a_client_scoped_revocation_takes_only_that_clients_tokens_and_consents,
            grants_are_checked_against_their_session,
            logout_realm_sign_out_and_expiry_queue_notifications_that_survive_reopening,
            attempts_move_deliveries_between_statuses_and_retry_now_requeues_a_failed_one,
            the_due_scan_passes_over_busy_clients,
            a_busy_clients_backlog_costs_a_scan_no_more_than_its_queue_head_and_clients_take_turns,
            retry_now_during_an_attempt_keeps_the_delivery_due_whatever_the_attempt_says,
            a_removal_by_subject_takes_its_offline_tokens_within_the_client_scope,
            logout_ends_a_session_that_expired_but_was_not_reaped_yet,
            the_reaper_revokes_the_tokens_of_the_sessions_it_reaps_and_keeps_consents,
            a_grant_lives_no_longer_than_the_realms_max_grant_lifetime,
            revoking_a_token_deletes_its_grant_once_and_audits_it,
            revoking_a_subjects_grants_takes_every_kind_within_the_client_scope,
            revoking_many_grants_of_a_subject_goes_in_batches_and_counts_them_all,
            // counts
            a_mixed_workload_keeps_every_count_exact,
            counts_stay_exact_under_random_operations,
            // client address and creation time
            address_and_creation_time_filters_page_and_count_exactly,
            creation_time_bounds_are_inclusive_after_and_exclusive_before,
            removal_by_address_range_and_creation_time_ends_exactly_the_matches,
            malformed_or_blank_address_filters_are_refused,
            a_narrowed_removal_leaves_the_subjects_offline_tokens,
            // activity counters
            sign_ins_endings_and_attempts_land_in_their_buckets_exactly,
            old_buckets_are_pruned_and_counters_survive_reopening,
            // the change feed
            creates_and_every_kind_of_removal_name_their_realm_in_the_change_feed,
            devices_are_read_at_create_and_filter_listings_exactly,
            removal_by_device_ends_exactly_the_matches_and_unknown_values_are_refused,
            every_ending_leaves_one_history_entry_saying_how_and_by_whom,
            history_pages_newest_first_filters_counts_and_prunes,
            networks_are_kept_at_create_and_follow_a_refresh_from_elsewhere,
            country_and_network_filters_match_either_address,
            anomaly_filters_find_spread_new_devices_and_changed_countries,
        );
    };
    (@tests $name:ident, $backend:expr, $($test:ident),* $(,)?) => {
        #[cfg(test)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    $crate::conformance::$test(&$backend).await;
                }
            )*
        }
    };
}
