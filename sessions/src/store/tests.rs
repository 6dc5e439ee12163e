//! Tests that need the store's internals.

use chrono::{TimeDelta, TimeZone, Utc};

use super::{SessionStore, SledStore};
use crate::{NewSession, RealmSettingsUpdate, RemoveAllSessions, RemoveSessions};

#[test]
fn every_way_of_ending_sessions_clears_every_index_and_counter() {
    let store = SledStore::temporary().unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    let settings = RealmSettingsUpdate {
        idle_timeout_secs: Some(60),
        ..Default::default()
    };
    store.put_realm("r", &settings, "t", t0).unwrap();
    let mut tokens = Vec::new();
    for i in 0..40 {
        let new = NewSession {
            subject_id: format!("user{}", i % 5),
            display_name: Some(format!("Person{i} Surname-{} Ünïcode", i % 3)),
            client_ids: vec!["a".into(), format!("c{}", i % 4)],
            ..Default::default()
        };
        let c = store
            .create_session("r", &new, t0 + TimeDelta::seconds(i))
            .unwrap();
        store
            .add_client("r", &c.session.sid, "late-joiner")
            .unwrap();
        tokens.push((c.token, c.session.sid));
    }
    let trees = &store.trees;
    let session_trees = [
        &trees.sessions,
        &trees.tokens,
        &trees.by_created,
        &trees.by_last_access,
        &trees.by_expiry,
        &trees.by_attr,
        &trees.counts,
    ];
    assert!(session_trees.iter().all(|t| !t.is_empty()));

    // Refresh some (moves last-access and expiry entries), then end them every way there is.
    for (token, _) in &tokens[..10] {
        store
            .validate("r", token, true, t0 + TimeDelta::seconds(50))
            .unwrap();
    }
    for (token, _) in &tokens[..5] {
        assert!(store
            .logout("r", token, t0 + TimeDelta::seconds(51))
            .unwrap());
    }
    let sids: Vec<String> = tokens[5..15].iter().map(|(_, s)| s.clone()).collect();
    store
        .remove(
            "r",
            &RemoveSessions {
                sids,
                ..Default::default()
            },
            "t",
            t0,
        )
        .unwrap();
    store
        .remove(
            "r",
            &RemoveSessions {
                subject_id: Some("user3".into()),
                ..Default::default()
            },
            "t",
            t0,
        )
        .unwrap();
    let reaped = store.reap_expired(t0 + TimeDelta::seconds(90), 7).unwrap();
    assert_eq!(reaped, 7);
    store
        .remove_all("r", &RemoveAllSessions::default(), "t", t0)
        .unwrap();

    for (i, t) in session_trees.iter().enumerate() {
        assert!(t.is_empty(), "tree {i} still has {} entries", t.len());
    }
    assert_eq!(store.get_realm("r").unwrap().session_count, 0);
}
