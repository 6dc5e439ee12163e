//! Tests of the v2 layout that need its internals.

use chrono::{TimeDelta, TimeZone, Utc};

use super::layout::{self, CheckpointHeader, CheckpointKey, Counter, GrantIndex, GrantIndexKey};
use super::layout::{
    CounterKey, GrantTokenKey, MetaKey, StoredCounterKey, Tag, TimeIndex, TimeIndexKey,
};
use super::{counters, SledStoreV2, LAYOUT_VERSION};
use crate::store::SessionStore;
use crate::{
    ClientRegistration, EndSessions, GrantKind, NewGrant, NewSession, RealmSettingsUpdate,
};

fn open(dir: &std::path::Path) -> SledStoreV2 {
    let wait = std::time::Duration::from_secs(10);
    super::dir_lock::open_when_free(dir, wait, || SledStoreV2::open(dir)).unwrap()
}

/// Sessions with names, clients and grants, a logout queued to a client.
async fn workload(store: &SledStoreV2) {
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    store
        .put_realm("r", &RealmSettingsUpdate::default(), "t", t0)
        .await
        .unwrap();
    let reg = ClientRegistration {
        backchannel_logout_uri: Some("http://127.0.0.1:9/logout".into()),
        ..Default::default()
    };
    store.put_client("r", "crm", &reg, "t", t0).await.unwrap();
    for i in 0..20 {
        let new = NewSession {
            subject_id: format!("user{}", i % 4),
            display_name: Some(format!("Person{i} Family")),
            client_ids: vec!["crm".into(), format!("app{}", i % 3)],
            ..Default::default()
        };
        let c = store
            .create_session("r", &new, t0 + TimeDelta::seconds(i))
            .await
            .unwrap();
        let grant = NewGrant {
            kind: GrantKind::RefreshToken,
            subject_id: new.subject_id.clone(),
            sid: Some(c.session.sid.clone()),
            client_id: "crm".into(),
            expires_at: t0 + TimeDelta::seconds(300),
            token: Some(format!("refresh-token-number-{i}")),
            scopes: Vec::new(),
        };
        store.create_grant("r", &grant, t0).await.unwrap();
        if i == 19 {
            let rm = EndSessions {
                sids: vec![c.session.sid],
                ..Default::default()
            };
            store.end_sessions("r", &rm, "t", t0).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_damaged_entries_and_counts_and_repair_rewrites_them() {
    let dir = tempfile::tempdir().unwrap();
    let realm_id;
    {
        let store = open(dir.path());
        workload(&store).await;
        assert_eq!(store.check(false).unwrap().problems, Vec::<String>::new());
        realm_id = store.realms.load()["r"].id;
        let tree = &store.tree;
        // A subject index entry deleted.
        let (k, _) = tree
            .scan_prefix(layout::prefix(realm_id, Tag::Subject))
            .next()
            .unwrap()
            .unwrap();
        tree.remove(k).unwrap();
        // A dangling expiry entry, a dangling grant index entry, a grant token entry deleted, a
        // delivery status entry deleted.
        let dangling_expiry = TimeIndexKey {
            realm: realm_id,
            index: TimeIndex::Expiry,
            ms: 1,
            sid: [7; 16],
        };
        tree.insert(dangling_expiry.encode(), &[]).unwrap();
        let dangling_grant = GrantIndexKey {
            realm: realm_id,
            by: GrantIndex::Subject("nobody"),
            id: [9; 16],
        };
        tree.insert(dangling_grant.encode(), &[]).unwrap();
        let hash: [u8; 32] = super::sha256(b"refresh-token-number-1");
        tree.remove(GrantTokenKey { hash }.encode()).unwrap();
        let (k, _) = tree
            .scan_prefix(layout::prefix(realm_id, Tag::DeliveryStatus))
            .next()
            .unwrap()
            .unwrap();
        tree.remove(k).unwrap();
        // The realm's count wrong in the checkpoint, with no journal after it.
        store.checkpoint().unwrap();
        store.wait_durable().unwrap();
    }
    {
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree(super::TREE).unwrap();
        // Stored counters damaged: the realm's total wrong, a subject's gone.
        let stored = |c: Counter| {
            let counter = c.key(realm_id);
            StoredCounterKey { counter: &counter }.encode()
        };
        tree.insert(stored(Counter::Total), counters::encode_value(99))
            .unwrap();
        tree.remove(stored(Counter::Subject("user0"))).unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    let report = store.check(false).unwrap();
    let text = report.problems.join("\n");
    assert!(!report.repaired);
    for expected in [
        "is missing",
        "names no record",
        "session count of realm 'r' is 99, the records say 19",
        "session count of subject 'user0' in realm 'r' is 0, the records say 5",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert_eq!(
        report
            .problems
            .iter()
            .filter(|p| p.contains("is missing"))
            .count(),
        3,
        "{text}"
    );
    assert_eq!(
        report
            .problems
            .iter()
            .filter(|p| p.contains("names no record"))
            .count(),
        2,
        "{text}"
    );
    let repaired = store.check(true).unwrap();
    assert!(repaired.repaired);
    assert_eq!(store.check(false).unwrap().problems, Vec::<String>::new());
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 19);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.check(false).unwrap().problems, Vec::<String>::new());
    assert!(store
        .introspect(
            "r",
            "refresh-token-number-1",
            Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap()
        )
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_survive_reopening_with_and_without_a_checkpoint_after_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        workload(&store).await;
        // No checkpoint at close: the journal alone must bring the counts back.
        store
            .journal_len
            .store(0, std::sync::atomic::Ordering::SeqCst);
        store.wait_durable().unwrap();
    }
    let store = open(dir.path());
    assert!(store.open_stats().replayed > 0);
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 19);
    assert_eq!(store.check(false).unwrap().problems, Vec::<String>::new());
    store.checkpoint().unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.open_stats().replayed, 0);
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 19);
    assert_eq!(store.check(false).unwrap().problems, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_stored_in_the_earlier_chunked_format_are_converted_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot;
    {
        let store = open(dir.path());
        workload(&store).await;
        store.checkpoint().unwrap();
        snapshot = store.counters.snapshot();
    }
    {
        // Rewrite the stored counters in the chunked format: every counter in chunks,
        // a header with the first uncovered journal entry and the chunk count.
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree(super::TREE).unwrap();
        let upto = tree
            .remove(MetaKey::CountersUpto.encode())
            .unwrap()
            .unwrap();
        for k in tree.scan_prefix(StoredCounterKey::prefix()).keys() {
            tree.remove(k.unwrap()).unwrap();
        }
        let chunks = counters::encode_checkpoint(&snapshot, 64);
        assert!(chunks.len() > 1);
        for (i, c) in chunks.iter().enumerate() {
            let key = CheckpointKey { chunk: i as u32 };
            tree.insert(key.encode(), c.clone()).unwrap();
        }
        let header = CheckpointHeader {
            from: u64::from_be_bytes(upto.as_ref().try_into().unwrap()),
            chunks: chunks.len() as u32,
        };
        tree.insert(CheckpointKey::HEADER.encode(), &header.encode())
            .unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.counters.snapshot(), snapshot);
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 19);
    assert_eq!(store.check(false).unwrap().problems, Vec::<String>::new());
    assert_eq!(
        store.tree.scan_prefix(CheckpointKey::prefix()).count(),
        0,
        "the chunks are gone once converted"
    );
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.counters.snapshot(), snapshot);
}

#[test]
fn a_directory_of_a_newer_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .tree
            .insert(
                MetaKey::Version.encode(),
                &(LAYOUT_VERSION + 1).to_be_bytes(),
            )
            .unwrap();
        store.wait_durable().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let wait = std::time::Duration::from_secs(10);
    let opened =
        super::dir_lock::open_when_free(dir.path(), wait, || SledStoreV2::open(dir.path()));
    let err = opened.err().expect("a newer layout was opened").to_string();
    assert!(err.contains("newer version"), "{err}");
    assert!(
        err.contains(&format!("layout {}", LAYOUT_VERSION + 1)),
        "{err}"
    );
}

/// What a store compacted (or not) holds: session count, audit entries, every audit id distinct
/// from those before (the id generator continues).
async fn audit_ids(store: &SledStoreV2) -> Vec<u64> {
    store
        .audit_log(None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_everything_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let (before_ids, tokens) = {
        let store = open(dir.path());
        workload(&store).await;
        let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
        let mut tokens = Vec::new();
        for i in 0..5 {
            let new = NewSession {
                subject_id: format!("kept{i}"),
                ..Default::default()
            };
            tokens.push(store.create_session("r", &new, t0).await.unwrap().token);
        }
        store
            .companion_tree("keys")
            .unwrap()
            .insert("k", "v")
            .unwrap();
        store.wait_durable().unwrap();
        drop(store);
        // Reopened, sled's id generator starts again 2 million after its last persisted value,
        // as a fresh copy's does once reopened: ids from here are what a copy would reuse.
        let store = open(dir.path());
        for name in ["x", "y"] {
            store
                .put_realm(name, &RealmSettingsUpdate::default(), "t", t0)
                .await
                .unwrap();
        }
        store.wait_durable().unwrap();
        (audit_ids(&store).await, tokens)
    };
    let wait = std::time::Duration::from_secs(10);
    let stats =
        super::dir_lock::open_when_free(dir.path(), wait, || SledStoreV2::compact(dir.path()))
            .unwrap();
    assert!(stats.keys > 100, "{stats:?}");
    assert!(!dir.path().join("compact.new").exists());
    assert!(!dir.path().join("compact.old").exists());
    let store = open(dir.path());
    assert_eq!(store.check(false).unwrap().problems, Vec::<String>::new());
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 24);
    assert_eq!(store.open_stats().replayed, 0);
    let t1 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 1, 0).unwrap();
    for t in &tokens {
        assert!(store.validate("r", t, false, t1).await.unwrap().is_some());
    }
    assert_eq!(
        store.companion_tree("keys").unwrap().get("k").unwrap(),
        Some(sled::IVec::from("v"))
    );
    assert_eq!(audit_ids(&store).await, before_ids);
    store
        .put_realm("second", &RealmSettingsUpdate::default(), "t", t1)
        .await
        .unwrap();
    let after = audit_ids(&store).await;
    assert_eq!(
        after.len(),
        before_ids.len() + 1,
        "an audit entry was overwritten"
    );
    assert!(after[0] > before_ids[0]);
}

/// Builds the copy of a store with 20 sessions, then adds one more to the old store only (so
/// which of the two a later open finds is visible), and leaves both on disk as a crash would.
async fn interrupted_compaction(dir: &std::path::Path) {
    let store = open(dir);
    workload(&store).await;
    super::compact::build_copy(&store, dir).unwrap();
    let new = NewSession {
        subject_id: "only-in-the-old-store".into(),
        ..Default::default()
    };
    store
        .create_session(
            "r",
            &new,
            Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap(),
        )
        .await
        .unwrap();
    store.wait_durable().unwrap();
    drop(store);
    std::thread::sleep(std::time::Duration::from_millis(300));
}

async fn sessions_in(dir: &std::path::Path) -> u64 {
    let store = open(dir);
    assert_eq!(store.check(false).unwrap().problems, Vec::<String>::new());
    assert!(!dir.join("compact.new").exists() && !dir.join("compact.old").exists());
    store.get_realm("r").await.unwrap().session_count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_compaction_is_undone_before_its_marker_and_finished_after() {
    // Copy not marked complete: the old store stays.
    let dir = tempfile::tempdir().unwrap();
    interrupted_compaction(dir.path()).await;
    std::fs::remove_file(dir.path().join("compact.new/COMPLETE")).unwrap();
    assert_eq!(sessions_in(dir.path()).await, 20);

    // Marked complete, nothing moved yet: the copy wins.
    let dir = tempfile::tempdir().unwrap();
    interrupted_compaction(dir.path()).await;
    assert_eq!(sessions_in(dir.path()).await, 19);

    // Part of the old store moved aside.
    let dir = tempfile::tempdir().unwrap();
    interrupted_compaction(dir.path()).await;
    std::fs::create_dir(dir.path().join("compact.old")).unwrap();
    std::fs::rename(dir.path().join("db"), dir.path().join("compact.old/db")).unwrap();
    assert_eq!(sessions_in(dir.path()).await, 19);

    // All of it moved aside and part of the copy moved up.
    let dir = tempfile::tempdir().unwrap();
    interrupted_compaction(dir.path()).await;
    std::fs::create_dir(dir.path().join("compact.old")).unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "db" || name == "conf" || name.starts_with("snap.") {
            std::fs::rename(e.path(), dir.path().join("compact.old").join(&name)).unwrap();
        }
    }
    std::fs::write(dir.path().join("compact.old/MOVED"), b"").unwrap();
    std::fs::rename(dir.path().join("compact.new/db"), dir.path().join("db")).unwrap();
    assert_eq!(sessions_in(dir.path()).await, 19);
}

/// A store of layout 2 (no client-address index) gains the index when opened, and a crash during
/// that step (the version still 2, part of the index written) is finished by the next open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_2_store_gains_the_address_index_on_open() {
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let in_range = async |store: &SledStoreV2| {
        let q = crate::SessionQuery {
            filters: crate::SessionFilters {
                ip: Some("203.0.113.0/24".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        store.query("r", &q).await.unwrap().total_count
    };
    {
        let store = open(dir.path());
        store
            .put_realm("r", &RealmSettingsUpdate::default(), "t", t0)
            .await
            .unwrap();
        for i in 0..30 {
            let new = NewSession {
                subject_id: format!("user{i}"),
                ip: Some(format!("203.0.{}.{i}", 113 + i % 2)),
                ..Default::default()
            };
            store
                .create_session("r", &new, t0 + TimeDelta::seconds(i))
                .await
                .unwrap();
        }
        assert_eq!(in_range(&store).await, 15);
        // Back to layout 2: no address entries, except one (as if a step had been interrupted).
        let entries: Vec<_> = store
            .tree
            .scan_prefix(layout::prefix(store.realm("r").unwrap().id, Tag::Address))
            .keys()
            .map(|k| k.unwrap())
            .collect();
        assert_eq!(entries.len(), 30, "one entry per session with an address");
        for k in &entries[1..] {
            store.tree.remove(k).unwrap();
        }
        store
            .tree
            .insert(MetaKey::Version.encode(), &2u32.to_be_bytes())
            .unwrap();
        assert!(!store.check(false).unwrap().problems.is_empty());
        store.wait_durable().unwrap();
    }
    let store = open(dir.path());
    assert!(store.open_stats().upgraded);
    assert_eq!(in_range(&store).await, 15);
    assert_eq!(store.check(false).unwrap().problems, Vec::<String>::new());
    let version = store.tree.get(MetaKey::Version.encode()).unwrap().unwrap();
    assert_eq!(version.as_ref(), &LAYOUT_VERSION.to_be_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_3_store_gains_the_device_counts_on_open() {
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let phones = async |store: &SledStoreV2| {
        let q = crate::SessionQuery {
            filters: crate::SessionFilters {
                device_type: Some("phone".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        store.query("r", &q).await.unwrap().total_count
    };
    let agents = crate::sample::USER_AGENTS;
    {
        let store = open(dir.path());
        store
            .put_realm("r", &RealmSettingsUpdate::default(), "t", t0)
            .await
            .unwrap();
        for i in 0..30 {
            let new = NewSession {
                subject_id: format!("user{i}"),
                user_agent: Some(agents[i % agents.len()].into()),
                ..Default::default()
            };
            store
                .create_session("r", &new, t0 + TimeDelta::seconds(i as i64))
                .await
                .unwrap();
        }
        assert_eq!(
            phones(&store).await,
            12,
            "the iPhone and the Android agents"
        );
        // Back to layout 3: no device counters.
        let kept: Vec<_> = store
            .counters
            .snapshot()
            .into_iter()
            .filter(|(k, _)| {
                !matches!(
                    CounterKey::decode(k),
                    Some(CounterKey {
                        counter: Counter::Device(_),
                        ..
                    })
                )
            })
            .collect();
        store.counters.replace(kept);
        store.checkpoint_all().unwrap();
        store
            .tree
            .insert(MetaKey::Version.encode(), &3u32.to_be_bytes())
            .unwrap();
        assert_eq!(phones(&store).await, 0);
        store.wait_durable().unwrap();
    }
    let store = open(dir.path());
    assert!(store.open_stats().upgraded);
    assert_eq!(phones(&store).await, 12);
    assert_eq!(store.check(false).unwrap().problems, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_broad_name_words_are_answered_from_their_index_entries_and_page_exactly() {
    // Both words match more sessions than are read one by one (10,000), their common ones
    // fewer: the listing intersects the two word ranges' entries.
    let store = SledStoreV2::temporary().unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    let long = RealmSettingsUpdate {
        idle_timeout_secs: Some(30 * 24 * 3600),
        ..Default::default()
    };
    store.put_realm("r", &long, "t", t0).await.unwrap();
    let mut want = Vec::new();
    for i in 0..24_000i64 {
        let first = if i % 2 == 0 { "Alice" } else { "Bob" };
        let last = ["Smith", "Smithers", "Jones"][(i % 3) as usize];
        let c = store
            .create_session(
                "r",
                &NewSession {
                    subject_id: format!("user{}", i % 7),
                    display_name: Some(format!("{first} {last}")),
                    client_ids: vec![["crm", "mail"][(i % 5 == 0) as usize].into()],
                    ..Default::default()
                },
                t0 + TimeDelta::milliseconds(i),
            )
            .await
            .unwrap();
        if first == "Alice" && last.starts_with("Smi") && i % 5 != 0 {
            want.push(c.session.sid);
        }
    }
    want.reverse(); // newest first
    let query = crate::SessionQuery {
        filters: crate::SessionFilters {
            display_name: Some("smi ALI".into()),
            client_id: Some("crm".into()),
            ..Default::default()
        },
        count: Some(1000),
        ..Default::default()
    };
    let mut q = query.clone();
    let mut got = Vec::new();
    loop {
        let page = store.query("r", &q).await.unwrap();
        assert_eq!(page.total_count, want.len() as u64);
        got.extend(page.results.into_iter().map(|s| s.sid));
        if !page.has_next {
            break;
        }
        q.results_token = page.results_token;
    }
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    // In last-access order too (the same here: nobody refreshed).
    let by_access = store
        .query(
            "r",
            &crate::SessionQuery {
                sort: crate::SortKey::LastAccess,
                ..query
            },
        )
        .await
        .unwrap();
    assert_eq!(by_access.total_count, want.len() as u64);
    assert_eq!(
        by_access.results.iter().map(|s| &s.sid).collect::<Vec<_>>(),
        want.iter().take(1000).collect::<Vec<_>>()
    );
}
