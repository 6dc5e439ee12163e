//! Tests that need the store's internals.

use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone, Utc};
use sha2::Digest;

use super::{keys, DueCursor, SessionStore, SledStoreV1};
use crate::{
    AttemptResult, ClientRegistration, GrantKind, NewGrant, NewSession, RealmSettingsUpdate,
    RemoveAllSessions, RemoveSessions,
};

#[test]
fn every_way_of_ending_sessions_clears_every_index_and_counter() {
    let store = SledStoreV1::temporary().unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    let settings = RealmSettingsUpdate {
        idle_timeout_secs: Some(60),
        ..Default::default()
    };
    store.put_realm("r", &settings, "t", t0).unwrap();
    let reg = ClientRegistration {
        backchannel_logout_uri: Some("http://127.0.0.1:9/logout".into()),
        ..Default::default()
    };
    store.put_client("r", "a", &reg, "t", t0).unwrap();
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
        let grant = |kind: GrantKind, sid: Option<&str>, token: Option<String>| NewGrant {
            kind,
            subject_id: new.subject_id.clone(),
            sid: sid.map(Into::into),
            client_id: "a".into(),
            expires_at: t0 + TimeDelta::seconds(80),
            token,
            scopes: Vec::new(),
        };
        let refresh = grant(
            GrantKind::RefreshToken,
            Some(&c.session.sid),
            Some(format!("refresh-token-number-{i}")),
        );
        store.create_grant("r", &refresh, t0).unwrap();
        store
            .create_grant("r", &grant(GrantKind::Consent, None, None), t0)
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
        &trees.grants,
        &trees.grant_tokens,
        &trees.grant_index,
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
    // Nothing is left to expire: the reaper took the reaped sessions' tokens along, and each
    // subject's consents went with its first logout.
    assert!(
        !trees.outbox.is_empty(),
        "ended sessions queued notifications"
    );

    for (i, t) in session_trees.iter().enumerate() {
        assert!(t.is_empty(), "tree {i} still has {} entries", t.len());
    }
    assert_eq!(store.get_realm("r").unwrap().session_count, 0);
}

#[test]
fn a_grant_generation_left_by_an_earlier_version_goes_with_the_sessions_last_grant() {
    let store = SledStoreV1::temporary().unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    store
        .put_realm("r", &RealmSettingsUpdate::default(), "t", t0)
        .unwrap();
    let new = NewSession {
        subject_id: "alice".into(),
        ..Default::default()
    };
    let sid = store.create_session("r", &new, t0).unwrap().session.sid;
    let refresh = NewGrant {
        kind: GrantKind::RefreshToken,
        subject_id: "alice".into(),
        sid: Some(sid.clone()),
        client_id: "a".into(),
        expires_at: t0 + TimeDelta::seconds(10),
        token: Some("refresh-token-of-alice-1".into()),
        scopes: Vec::new(),
    };
    store.create_grant("r", &refresh, t0).unwrap();
    let keep_tokens = RemoveSessions {
        sids: vec![sid.clone()],
        revoke_tokens: false,
        ..Default::default()
    };
    store.remove("r", &keep_tokens, "t", t0).unwrap();
    assert!(store.trees.counts.is_empty(), "ending the session drops it");

    // An earlier version kept a live count until the session's last grant was removed.
    let realm = store.realm("r").unwrap();
    let sid_bytes = super::record::parse_sid(&sid).unwrap();
    let counter = super::grants::session_grants_counter(realm.id, &sid_bytes);
    store
        .trees
        .counts
        .insert(counter, &1u64.to_be_bytes())
        .unwrap();
    store
        .reap_expired(t0 + TimeDelta::seconds(11), 100)
        .unwrap();
    assert!(
        store.trees.counts.is_empty(),
        "the reaped grant took it along"
    );
}

/// A store after a bit of everything: sessions with names, clients and properties, refreshes,
/// grants under sessions and offline, logouts, removals, an eviction, expiry, deliveries in every
/// status, a purge. Answers the realm the sessions left live are in.
fn mixed_workload(store: &SledStoreV1) -> &'static str {
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    let at = |s: i64| t0 + TimeDelta::seconds(s);
    let settings = RealmSettingsUpdate {
        idle_timeout_secs: Some(600),
        max_sessions_per_subject: Some(Some(3)),
        quota_policy: Some(crate::QuotaPolicy::EvictOldest),
        property_whitelist: Some(vec!["theme".into()]),
        backchannel_logout_on_expiry: Some(true),
        ..Default::default()
    };
    for realm in ["r", "other"] {
        store.put_realm(realm, &settings, "t", t0).unwrap();
        let reg = ClientRegistration {
            backchannel_logout_uri: Some("http://127.0.0.1:9/logout".into()),
            ..Default::default()
        };
        store.put_client(realm, "crm", &reg, "t", t0).unwrap();
    }
    let mut created = Vec::new();
    for i in 0..30 {
        let new = NewSession {
            subject_id: format!("user{}", i % 7),
            display_name: (i % 3 != 0).then(|| format!("Person{i} Family-{}", i % 4)),
            client_ids: vec!["crm".into(), format!("app{}", i % 3)],
            ..Default::default()
        };
        let realm = if i % 5 == 0 { "other" } else { "r" };
        let c = store.create_session(realm, &new, at(i)).unwrap();
        let grant = |kind: GrantKind, sid: Option<&str>, token: Option<String>| NewGrant {
            kind,
            subject_id: new.subject_id.clone(),
            sid: sid.map(Into::into),
            client_id: "crm".into(),
            expires_at: at(300 + i),
            token,
            scopes: vec!["openid".into()],
        };
        let refresh = Some(format!("refresh-token-number-{i}"));
        let offline = Some(format!("offline-token-number-{i}"));
        store
            .create_grant(
                realm,
                &grant(GrantKind::RefreshToken, Some(&c.session.sid), refresh),
                t0,
            )
            .unwrap();
        store
            .create_grant(realm, &grant(GrantKind::RefreshToken, None, offline), t0)
            .unwrap();
        store
            .create_grant(realm, &grant(GrantKind::Consent, None, None), t0)
            .unwrap();
        created.push((realm, c));
    }
    // Later sessions: the earlier ones of a subject were evicted under the quota.
    let (_, first) = &created[29];
    store.add_client("r", &first.session.sid, "late").unwrap();
    let theme = BTreeMap::from([("theme".to_string(), "dark".to_string())]);
    store
        .set_properties("r", &first.token, &theme, at(40))
        .unwrap();
    store
        .validate("r", &created[28].1.token, true, at(200))
        .unwrap();
    store.logout("r", &created[26].1.token, at(41)).unwrap();
    let keep_session = RemoveSessions {
        sids: vec![created[24].1.session.sid.clone()],
        remove_server_side_session: false,
        ..Default::default()
    };
    store.remove("r", &keep_session, "t", at(42)).unwrap();
    let by_subject = RemoveSessions {
        subject_id: Some("user6".into()),
        ..Default::default()
    };
    store.remove("r", &by_subject, "t", at(43)).unwrap();
    store
        .revoke_token("r", "offline-token-number-8", "t", at(44))
        .unwrap();
    // Everything created at t0 + 0..30 s idles out at 600..630 s but the one refreshed at 200 s.
    store.reap_expired(at(615), 4).unwrap();
    let mut cursor = DueCursor::default();
    let due = store
        .due_deliveries(at(700), 100, 100, &mut cursor, &|_, _, _| false)
        .unwrap();
    assert!(due.len() >= 3, "{} deliveries due", due.len());
    store
        .record_attempt(&due[0], "jti-0", &AttemptResult::Delivered, at(700))
        .unwrap();
    store
        .record_attempt(&due[1], "jti-1", &AttemptResult::Delivered, at(700))
        .unwrap();
    let give_up = AttemptResult::GiveUp {
        error: "refused".into(),
    };
    store
        .record_attempt(&due[2], "jti-2", &give_up, at(700))
        .unwrap();
    store.purge_delivered(at(1000), 1).unwrap();
    "r"
}

#[test]
fn a_store_after_a_mixed_workload_checks_clean() {
    let store = SledStoreV1::temporary().unwrap();
    let realm = mixed_workload(&store);
    let report = store.check(false).unwrap();
    assert_eq!(report.problems, Vec::<String>::new());
    assert!(!report.repaired);
    assert!(
        report.sessions > 0 && report.grants > 0 && report.deliveries > 0,
        "{report:?}"
    );
    assert_eq!(
        report.sessions,
        store.trees.sessions.len() as u64,
        "every record was read"
    );
    assert!(store.get_realm(realm).unwrap().session_count > 0);
    let again = store.check(true).unwrap();
    assert_eq!(again.problems, Vec::<String>::new());
    assert!(!again.repaired, "nothing to repair");
}

#[test]
fn check_reports_each_damaged_index_entry_and_counter_and_repair_rewrites_them() {
    let store = SledStoreV1::temporary().unwrap();
    let realm = mixed_workload(&store);
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    let id = store.realm(realm).unwrap().id;
    let trees = &store.trees;
    let live = store
        .query(realm, &crate::SessionQuery::default())
        .unwrap()
        .results;
    let victim = live[0].clone();
    let victim_sid = super::parse_sid(&victim.sid).unwrap();

    // One index entry deleted: the victim's subject entry.
    let subject_prefix =
        keys::attr_prefix(id, keys::AttrKind::Subject, victim.subject_id.as_bytes());
    let subject_entry = trees
        .by_attr
        .scan_prefix(&subject_prefix)
        .map(|item| item.unwrap().0)
        .find(|k| keys::split_time_sid(k).1 == victim_sid)
        .unwrap();
    trees.by_attr.remove(&subject_entry).unwrap();
    // A dangling sort entry, for a session that does not exist.
    trees
        .by_expiry
        .insert(keys::sort_key(id, 1, &[7; 16]), &[])
        .unwrap();
    // The realm's session count, and a client's, wrong.
    let count = store.get_realm(realm).unwrap().session_count;
    trees
        .counts
        .insert(keys::realm_count_key(id), &(count + 5).to_be_bytes())
        .unwrap();
    trees
        .counts
        .insert(
            keys::attr_prefix(id, keys::AttrKind::Client, b"crm"),
            &[1, 2, 3],
        )
        .unwrap();
    // A grant's token entry deleted, and a dangling grant index entry.
    let offline = store
        .introspect(realm, "offline-token-number-1", t0)
        .unwrap();
    assert!(offline.is_some());
    let hash: [u8; 32] = sha2::Sha256::digest(b"offline-token-number-1").into();
    trees.grant_tokens.remove(hash).unwrap();
    let stray_grant = [&super::grants::subject_prefix(id, "nobody")[..], &[9; 16]].concat();
    trees.grant_index.insert(stray_grant, &[]).unwrap();
    // A delivery's status entry deleted, and a status counter wrong.
    let (dkey, dvalue) = trees.outbox.iter().next().unwrap().unwrap();
    let delivery = super::outbox::decode(&dvalue).unwrap();
    let realm_of_delivery = u32::from_be_bytes(dkey[..4].try_into().unwrap());
    let status_entry = super::outbox::index_keys(realm_of_delivery, &delivery).remove(0);
    trees.outbox_index.remove(&status_entry).unwrap();
    trees
        .outbox_index
        .insert(
            super::outbox::count_key(id, crate::DeliveryStatus::Failed),
            &9u64.to_be_bytes(),
        )
        .unwrap();

    let report = store.check(false).unwrap();
    let expected = [
        format!(
            "session {} in realm 'r': its attribute index entry for subject '{}' is missing",
            victim.sid, victim.subject_id
        ),
        "by_expiry entry (".to_string(),
        format!(
            "session count of realm 'r' is {}, the records say {count}",
            count + 5
        ),
        "session count of client 'crm' in realm 'r' is malformed (010203)".to_string(),
        "its token index entry is missing".to_string(),
        "grant index entry".to_string(),
        "its outbox index entry".to_string(),
        "failed deliveries counter of realm 'r' is 9, the records say 1".to_string(),
    ];
    assert_eq!(
        report.problems.len(),
        expected.len(),
        "{:#?}",
        report.problems
    );
    for want in &expected {
        assert!(
            report.problems.iter().any(|p| p.contains(want.as_str())),
            "no problem says {want:?}: {:#?}",
            report.problems
        );
    }
    assert!(!report.repaired);
    assert_eq!(
        store.check(false).unwrap(),
        report,
        "a plain check changes nothing"
    );

    let repaired = store.check(true).unwrap();
    assert_eq!(repaired.problems, report.problems);
    assert!(repaired.repaired);
    let after = store.check(false).unwrap();
    assert_eq!(after.problems, Vec::<String>::new());
    assert_eq!(
        (after.sessions, after.grants, after.deliveries),
        (report.sessions, report.grants, report.deliveries)
    );

    // What the damage broke works again.
    assert_eq!(store.get_realm(realm).unwrap().session_count, count);
    assert!(trees.by_attr.contains_key(&subject_entry).unwrap());
    assert!(store
        .introspect(realm, "offline-token-number-1", t0)
        .unwrap()
        .is_some());
    let page = store.list_deliveries(realm, None, None, 100).unwrap();
    assert_eq!(page.counts.failed, 1);
}

#[test]
fn check_reports_an_unreadable_record_and_repair_leaves_it_alone() {
    let store = SledStoreV1::temporary().unwrap();
    let realm = mixed_workload(&store);
    let id = store.realm(realm).unwrap().id;
    let key = keys::session_key(id, &[5; 16]);
    store.trees.sessions.insert(key, &[9, 9, 9]).unwrap();
    for repair in [false, true, false] {
        let report = store.check(repair).unwrap();
        assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
        assert!(
            report.problems[0].contains("cannot be read"),
            "{}",
            report.problems[0]
        );
        assert!(!report.repaired, "records are the truth, not rewritten");
    }
    assert!(store.trees.sessions.contains_key(key).unwrap());
}
