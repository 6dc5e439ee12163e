//! `server check` on a store whose index was damaged on purpose: it names the damage and exits
//! non-zero; `--repair` fixes it; the next check is clean.

#![cfg(unix)]

mod common;

use std::process::Command;

use chrono::Utc;
use server::ServerError;
use sessions::store::{SessionStore, SledStore, LAYOUT_VERSION};
use sessions::{NewSession, RealmSettingsUpdate};

use common::{wait_unlocked, Running, Store};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_a_damaged_index_and_repair_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .put_realm("acme", &RealmSettingsUpdate::default(), "t", Utc::now())
            .await
            .unwrap();
        for i in 0..30 {
            let new = NewSession {
                subject_id: format!("user{}", i % 3),
                display_name: Some(format!("Person {i}")),
                client_ids: vec!["portal".into()],
                ..Default::default()
            };
            store
                .create_session("acme", &new, Utc::now())
                .await
                .unwrap();
        }
        store.wait_durable().unwrap();
    }
    wait_unlocked(dir.path());
    let (ok, out) = check(dir.path(), false);
    assert!(ok, "a fresh store is consistent: {out}");
    assert!(out.contains("checked 30 sessions"), "{out}");

    // Damage: one subject-index entry deleted behind the store's back. In the v2 layout every
    // key is realm id (4 bytes, 0 for none) + tag; `U` is the subject index.
    {
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("sessions_v2").unwrap();
        let key = tree
            .iter()
            .keys()
            .map(|k| k.unwrap())
            .find(|k| k[..4] != [0; 4] && k[4] == b'U')
            .expect("a subject-index entry");
        tree.remove(key).unwrap();
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

/// Copies the v1 fixture (written by the previous layout's code) to a scratch directory.
fn v1_fixture() -> tempfile::TempDir {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sessions/tests/fixtures/v1-store");
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

#[test]
fn the_server_upgrades_a_v1_directory_and_refuses_a_newer_one() {
    let dir = v1_fixture();
    let (ok, out) = check(dir.path(), false);
    assert!(ok, "the upgraded store is consistent: {out}");
    assert!(out.contains("consistent"), "{out}");
    wait_unlocked(dir.path());
    {
        let db = sled::open(dir.path()).unwrap();
        let names: Vec<String> = db
            .tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        assert!(names.contains(&"sessions_v2".to_owned()), "{names:?}");
        assert!(
            !names.contains(&"by_created".to_owned()),
            "v1 trees left: {names:?}"
        );
        // A later version wrote the layout after this one: realm 0, tag `M`, "version".
        let tree = db.open_tree("sessions_v2").unwrap();
        tree.insert(b"\0\0\0\0Mversion", &(LAYOUT_VERSION + 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    wait_unlocked(dir.path());
    let (ok, out) = check(dir.path(), false);
    assert!(!ok, "a newer layout is refused: {out}");
    assert!(out.contains("newer version"), "{out}");
    assert!(
        out.contains(&format!("layout {}", LAYOUT_VERSION + 1)),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_rewrites_the_store_and_keeps_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .put_realm("acme", &RealmSettingsUpdate::default(), "t", Utc::now())
            .await
            .unwrap();
        for i in 0..30 {
            let new = NewSession {
                subject_id: format!("user{}", i % 3),
                ..Default::default()
            };
            store
                .create_session("acme", &new, Utc::now())
                .await
                .unwrap();
        }
        store.wait_durable().unwrap();
    }
    wait_unlocked(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["compact", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("compacted"), "{text}");
    assert!(!dir.path().join("compact.new").exists());
    wait_unlocked(dir.path());
    let (ok, out) = check(dir.path(), false);
    assert!(ok, "{out}");
    assert!(out.contains("checked 30 sessions"), "{out}");
}

/// The binary's command `args` on the data directory `dir`: whether it succeeded, and its
/// standard error.
fn command(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .arg(if args[0] == "migrate-store" {
            "--from"
        } else {
            "--data-dir"
        })
        .arg(dir)
        .env_remove("SESSIONS_STORE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_directory_a_server_holds_is_refused_as_in_use() {
    let store = Store::embedded();
    let srv = Running::start(store.clone(), &[]).await;
    let dir = store.data_dir();
    // A second server of this process: the typed error.
    match Running::try_start(store.clone(), true, &[]).await {
        Err(ServerError::StoreInUse { dir: named }) => assert_eq!(named, dir),
        Err(e) => panic!("not refused as in use: {e}"),
        Ok(_) => panic!("a second server opened a data directory in use"),
    }
    // The commands: the message.
    for args in [
        &["check"][..],
        &["compact"],
        &["api-key", "list"],
        &["admin", "list"],
        &["signing-key", "show"],
        &["migrate-store", "--to", "postgres://127.0.0.1:1/none"],
    ] {
        let (ok, err) = command(dir, args);
        assert!(!ok, "{args:?} ran on a data directory in use");
        let expected = format!(
            "error: {} is in use by another process (a running server?): stop it first",
            dir.display()
        );
        assert_eq!(err.trim_end(), expected, "{args:?}");
    }
    srv.stop().await;
    wait_unlocked(dir);
    let (ok, out) = check(dir, false);
    assert!(ok, "free again once the server stopped: {out}");
}
