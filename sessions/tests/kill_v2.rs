//! SIGKILL in a loop: a child process creates, refreshes and removes sessions (with grants and
//! logout notifications) until it is killed at a random moment; each time, the reopened store
//! checks clean (every count equals a recount, every index entry agrees with its record) and
//! every removal the child saw acknowledged is still removed.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use sessions::store::{dir_lock, SessionStore, SledStoreV2};
use sessions::{
    ClientRegistration, EndSessions, GrantKind, NewGrant, NewSession, RealmSettingsUpdate,
};

const CHILD_ENV: &str = "SESSIONS_KILL_TEST_DIR";

fn open(dir: &str) -> SledStoreV2 {
    let wait = Duration::from_secs(20);
    dir_lock::open_when_free(dir.as_ref(), wait, || SledStoreV2::open(dir))
        .unwrap_or_else(|e| panic!("opening {dir}: {e}"))
}

/// In the child: works until killed, printing each acknowledged removal.
async fn child(dir: &str, round: u64) -> ! {
    let store = open(dir);
    let now = Utc::now();
    if store.get_realm("r").await.is_err() {
        let settings = RealmSettingsUpdate {
            max_sessions_per_subject: Some(Some(6)),
            quota_policy: Some(sessions::QuotaPolicy::EvictOldest),
            ..Default::default()
        };
        store.put_realm("r", &settings, "t", now).await.unwrap();
        let reg = ClientRegistration {
            backchannel_logout_uri: Some("http://127.0.0.1:9/logout".into()),
            ..Default::default()
        };
        store.put_client("r", "crm", &reg, "t", now).await.unwrap();
    }
    println!("READY");
    let mut i: u64 = round * 1_000_000;
    loop {
        i += 1;
        let new = NewSession {
            subject_id: format!("user{}", i % 13),
            display_name: Some(format!("Person{} Family{}", i % 7, i % 5)),
            client_ids: vec!["crm".into(), format!("app{}", i % 3)],
            ..Default::default()
        };
        let c = store.create_session("r", &new, now).await.unwrap();
        if i.is_multiple_of(2) {
            let grant = NewGrant {
                kind: GrantKind::RefreshToken,
                subject_id: new.subject_id.clone(),
                sid: Some(c.session.sid.clone()),
                client_id: "crm".into(),
                expires_at: now + TimeDelta::days(1),
                token: Some(format!("refresh-token-{i:012}")),
                scopes: Vec::new(),
            };
            store.create_grant("r", &grant, now).await.unwrap();
        }
        if i.is_multiple_of(3) {
            store
                .validate("r", &c.token, true, now + TimeDelta::seconds(90))
                .await
                .unwrap();
        }
        if i.is_multiple_of(4) {
            let req = EndSessions {
                sids: vec![c.session.sid.clone()],
                ..Default::default()
            };
            let out = store.end_sessions("r", &req, "t", now).await.unwrap();
            if out.records_deleted == 1 {
                println!("REMOVED {}", c.session.sid);
            }
        }
        if i.is_multiple_of(29) {
            let req = EndSessions {
                subject_id: Some(format!("user{}", i % 13)),
                ..Default::default()
            };
            let out = store.end_sessions("r", &req, "t", now).await.unwrap();
            for sid in out.ended {
                println!("REMOVED {sid}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_stay_exact_and_removals_stay_removed_across_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var("SESSIONS_KILL_ROUND")
            .unwrap()
            .parse()
            .unwrap();
        child(&dir, round).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let mut removed_total = Vec::new();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for round in 0..8u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "counts_stay_exact_and_removals_stay_removed_across_sigkill",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .env("SESSIONS_KILL_ROUND", round.to_string())
            // Checkpoints often, so kills land before, during and after them.
            .env("SESSIONS_CHECKPOINT_EVERY", "50")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let removed = Arc::new(Mutex::new(Vec::new()));
        let ready = Arc::new(Mutex::new(false));
        let reader = {
            let (removed, ready) = (removed.clone(), ready.clone());
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.ends_with("READY") {
                        *ready.lock().unwrap() = true;
                    }
                    if let Some((_, sid)) = line.split_once("REMOVED ") {
                        removed.lock().unwrap().push(sid.trim().to_owned());
                    }
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !*ready.lock().unwrap() {
            assert!(Instant::now() < deadline, "the child never got ready");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(150 + seed % 500));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        removed_total.extend(removed.lock().unwrap().drain(..));

        let store = open(&path);
        let report = store.check(false).unwrap();
        assert_eq!(
            report.problems,
            Vec::<String>::new(),
            "round {round}: the store is inconsistent after SIGKILL"
        );
        assert!(report.sessions > 0, "round {round}: nothing was written");
        println!(
            "round {round}: {} sessions, {} grants, {} deliveries, {} acknowledged removals so far",
            report.sessions,
            report.grants,
            report.deliveries,
            removed_total.len()
        );
        for sid in &removed_total {
            assert!(
                store.get_session("r", sid).await.is_err(),
                "round {round}: acknowledged removal of {sid} was lost"
            );
        }
        drop(store);
    }
    assert!(!removed_total.is_empty());
}
