//! Tests that need the store's internals.

use chrono::{TimeDelta, TimeZone, Utc};

use super::{SessionStore, SledStore};
use crate::{
    ClientRegistration, GrantKind, NewGrant, NewSession, RealmSettingsUpdate, RemoveAllSessions,
    RemoveSessions,
};

#[test]
fn every_way_of_ending_sessions_clears_every_index_and_counter() {
    let store = SledStore::temporary().unwrap();
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
    let store = SledStore::temporary().unwrap();
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
