//! `server check` on a store whose index was damaged on purpose: it names the damage and exits
//! non-zero; `--repair` fixes it; the next check is clean.

#![cfg(unix)]

use std::process::Command;

use chrono::Utc;
use sessions::store::{SessionStore, SledStore};
use sessions::{NewSession, RealmSettingsUpdate};

/// Waits until no thread of this process holds the store's lock (sled's background threads
/// let go of it a moment after the store is dropped).
fn wait_unlocked(dir: &std::path::Path) {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::File::open(dir.join("db")).unwrap();
    for _ in 0..200 {
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            // SAFETY: as above.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the store stayed locked");
}

fn check(dir: &std::path::Path, repair: bool) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.arg("check")
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn");
    if repair {
        cmd.arg("--repair");
    }
    let out = cmd.output().expect("server check runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn check_finds_a_damaged_index_and_repair_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .put_realm("acme", &RealmSettingsUpdate::default(), "t", Utc::now())
            .unwrap();
        for i in 0..30 {
            let new = NewSession {
                subject_id: format!("user{}", i % 3),
                display_name: Some(format!("Person {i}")),
                client_ids: vec!["portal".into()],
                ..Default::default()
            };
            store.create_session("acme", &new, Utc::now()).unwrap();
        }
        store.wait_durable().unwrap();
    }
    wait_unlocked(dir.path());
    let (ok, out) = check(dir.path(), false);
    assert!(ok, "a fresh store is consistent: {out}");
    assert!(out.contains("checked 30 sessions"), "{out}");

    // Damage: one creation-index entry deleted behind the store's back.
    {
        let db = sled::open(dir.path()).unwrap();
        let index = db.open_tree("by_created").unwrap();
        let (key, _) = index.iter().next().unwrap().unwrap();
        index.remove(key).unwrap();
        db.flush().unwrap();
    }
    wait_unlocked(dir.path());
    let (ok, out) = check(dir.path(), false);
    assert!(!ok, "the damage is found: {out}");
    assert!(out.contains("problem:"), "{out}");
    let (ok, out) = check(dir.path(), true);
    assert!(ok, "repair succeeds: {out}");
    let (ok, out) = check(dir.path(), false);
    assert!(ok, "clean after the repair: {out}");
    assert!(out.contains("consistent"), "{out}");
}
