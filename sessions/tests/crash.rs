//! A revocation that returned survives a crash: the writer aborts right after removing, with no
//! clean shutdown, and a new process finds the removal on disk.

use std::process::Command;

use chrono::Utc;
use sessions::store::{SessionStore, SledStore};
use sessions::{EndSessions, NewSession, RealmSettingsUpdate, SessionQuery};

const CHILD_ENV: &str = "SESSIONS_CRASH_TEST_DIR";

/// In the child: create sessions, remove every other one, report, and abort.
async fn child(dir: &str) -> ! {
    let store = SledStore::open(dir).unwrap();
    store
        .put_realm("r", &RealmSettingsUpdate::default(), "t", Utc::now())
        .await
        .unwrap();
    let mut removed = Vec::new();
    for i in 0..50 {
        let new = NewSession {
            subject_id: format!("u{i}"),
            ..Default::default()
        };
        let c = store.create_session("r", &new, Utc::now()).await.unwrap();
        if i % 2 == 0 {
            let req = EndSessions {
                sids: vec![c.session.sid.clone()],
                ..Default::default()
            };
            assert_eq!(
                store
                    .end_sessions("r", &req, "t", Utc::now())
                    .await
                    .unwrap()
                    .records_deleted,
                1
            );
            removed.push(c.session.sid);
        }
    }
    println!("REMOVED {}", removed.join(","));
    std::process::abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_survive_an_abort() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "removals_survive_an_abort",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child was meant to abort");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("REMOVED ").map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| {
            panic!(
                "child did not report: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let removed: Vec<&str> = line.split(',').collect();
    assert_eq!(removed.len(), 25);

    let store = SledStore::open(dir.path()).unwrap();
    for sid in removed {
        assert!(
            store.get_session("r", sid).await.is_err(),
            "removed session {sid} came back after the crash"
        );
    }
    let left = store.query("r", &SessionQuery::default()).await.unwrap();
    assert_eq!(
        left.total_count,
        store.get_realm("r").await.unwrap().session_count
    );
    assert!(left.total_count <= 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_removals_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
    store
        .put_realm("r", &RealmSettingsUpdate::default(), "t", Utc::now())
        .await
        .unwrap();
    let mut sids = Vec::new();
    for i in 0..160 {
        let new = NewSession {
            subject_id: format!("u{i}"),
            ..Default::default()
        };
        sids.push(
            store
                .create_session("r", &new, Utc::now())
                .await
                .unwrap()
                .session
                .sid,
        );
    }
    let before = store.durable_flushes();
    // Eight tasks at once; each waits for the disk as a blocking section, so they overlap.
    let tasks: Vec<_> = sids
        .chunks(20)
        .map(|chunk| {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            tokio::spawn(async move {
                for sid in chunk {
                    let req = EndSessions {
                        sids: vec![sid],
                        ..Default::default()
                    };
                    store
                        .end_sessions("r", &req, "t", Utc::now())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let flushes = store.durable_flushes() - before;
    assert!(
        flushes > 0 && flushes < 160,
        "{flushes} flushes for 160 durable removals"
    );
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 0);
}
