//! Transparent huge pages, switched off for the store's allocation pattern.

/// Turns transparent huge pages off for this process.
///
/// mimalloc (the server's allocator) asks for huge pages on its arenas and hands freed 64 KiB
/// spans back to the kernel after 10 ms; sled allocates and frees node copies by the megabyte on
/// every batch. Together, the next allocation in a returned span faults in and zeroes a whole
/// 2 MiB page: a profile of removing 1,000 sessions spent 40 % of its time in the kernel's
/// `clear_page_erms`, and creates through HTTP had twice the p99 with huge pages on. Ordinary
/// pages are zeroed 4 KiB at a time, as they are touched. Does nothing where the kernel has no
/// such switch.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
