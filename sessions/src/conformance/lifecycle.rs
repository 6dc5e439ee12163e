//! Sessions from creation to removal: validation, refresh, expiry, quotas, properties, removal,
//! realm isolation, reopening, and no token in clear.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{fresh, Backend};
use crate::store::SessionStore;
use crate::{
    EndAllSessions, EndSessions, NewSession, QuotaPolicy, RealmSettingsUpdate, SessionError,
    SessionQuery,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

async fn realm(store: &dyn SessionStore, name: &str, update: RealmSettingsUpdate) {
    store.put_realm(name, &update, "test", t0()).await.unwrap();
}

fn new(subject: &str) -> NewSession {
    NewSession {
        subject_id: subject.into(),
        display_name: Some(format!("{subject} Example")),
        client_ids: vec!["portal".into()],
        ..Default::default()
    }
}

pub async fn unknown_realms_are_errors_everywhere<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    let nf = |r: Result<_, SessionError>| matches!(r, Err(SessionError::RealmNotFound(_)));
    assert!(nf(store.get_realm("nope").await.map(drop)));
    assert!(nf(store
        .create_session("nope", &new("a"), t0())
        .await
        .map(drop)));
    assert!(nf(store.validate("nope", "t", true, t0()).await.map(drop)));
    assert!(nf(store.logout("nope", "t", t0()).await.map(drop)));
    assert!(nf(store.add_client("nope", "s", "c").await.map(drop)));
    assert!(nf(store.get_session("nope", "s").await.map(drop)));
    assert!(nf(store.get_properties("nope", "t", t0()).await.map(drop)));
    assert!(nf(store
        .set_properties("nope", "t", &BTreeMap::new(), t0())
        .await
        .map(drop)));
    assert!(nf(store
        .query("nope", &SessionQuery::default())
        .await
        .map(drop)));
    let rm = EndSessions {
        subject_id: Some("a".into()),
        ..Default::default()
    };
    assert!(nf(store
        .end_sessions("nope", &rm, "t", t0())
        .await
        .map(drop)));
    assert!(nf(store
        .end_all_sessions("nope", &EndAllSessions::default(), "t", t0())
        .await
        .map(drop)));
    assert!(
        store.list_realms().await.unwrap().is_empty(),
        "a lookup created a realm"
    );
    for bad in ["a/b", "", "tab\there", &"x".repeat(65)] {
        assert!(matches!(
            store.put_realm(bad, &Default::default(), "t", t0()).await,
            Err(SessionError::InvalidRequest(_))
        ));
    }
}

pub async fn validate_refresh_and_expiry<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    let update = RealmSettingsUpdate {
        idle_timeout_secs: Some(600),
        absolute_lifetime_secs: Some(3600),
        latest_access_update_interval_secs: Some(60),
        ..Default::default()
    };
    realm(&store, "r", update).await;
    let c = store
        .create_session("r", &new("alice"), t0())
        .await
        .unwrap();
    assert!(c.token.len() >= 43, "token too short for 256 bits");
    let at = |s: i64| t0() + TimeDelta::seconds(s);

    // refresh=false never writes, even long after the interval.
    let s = store
        .validate("r", &c.token, false, at(300))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.last_access_at, t0());
    // refresh=true within the interval does not write either.
    let s = store
        .validate("r", &c.token, true, at(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.last_access_at, t0());
    // After the interval it writes once and extends the idle expiry.
    let s = store
        .validate("r", &c.token, true, at(300))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.last_access_at, at(300));
    assert_eq!(s.idle_expires_at, at(900));
    let s = store
        .validate("r", &c.token, true, at(320))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.last_access_at, at(300), "wrote again within the interval");
    // Idle expiry: not valid at 900 s without use, even though nothing reaped it.
    assert!(store
        .validate("r", &c.token, false, at(900))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .validate("r", &c.token, true, at(901))
        .await
        .unwrap()
        .is_none());
    // Absolute expiry wins over refreshing.
    let c2 = store.create_session("r", &new("bob"), t0()).await.unwrap();
    for m in 1..=59 {
        assert!(
            store
                .validate("r", &c2.token, true, at(m * 60))
                .await
                .unwrap()
                .is_some(),
            "minute {m}"
        );
    }
    assert!(store
        .validate("r", &c2.token, true, at(3600))
        .await
        .unwrap()
        .is_none());
    // Garbage tokens are simply not valid.
    for t in ["", "x", &"y".repeat(10_000)] {
        assert!(store.validate("r", t, true, at(1)).await.unwrap().is_none());
    }
}

pub async fn reaper_removes_expired_sessions_in_batches<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    realm(
        &store,
        "r",
        RealmSettingsUpdate {
            idle_timeout_secs: Some(60),
            ..Default::default()
        },
    )
    .await;
    for i in 0..25 {
        store
            .create_session("r", &new(&format!("old{i}")), t0())
            .await
            .unwrap();
    }
    let fresh = store
        .create_session("r", &new("fresh"), t0() + TimeDelta::seconds(50))
        .await
        .unwrap();
    let later = t0() + TimeDelta::seconds(61);
    assert_eq!(store.reap_expired(later, 10).await.unwrap(), 10);
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 16);
    assert_eq!(store.reap_expired(later, 100).await.unwrap(), 15);
    assert_eq!(store.reap_expired(later, 100).await.unwrap(), 0);
    let realm = store.get_realm("r").await.unwrap();
    assert_eq!(realm.session_count, 1);
    assert!(store
        .validate("r", &fresh.token, false, later)
        .await
        .unwrap()
        .is_some());
    let q = SessionQuery {
        filters: crate::SessionFilters {
            display_name: Some("example".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(store.query("r", &q).await.unwrap().total_count, 1);
}

pub async fn quotas_deny_or_evict_the_oldest<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    realm(
        &store,
        "deny",
        RealmSettingsUpdate {
            max_sessions_per_subject: Some(Some(2)),
            ..Default::default()
        },
    )
    .await;
    let evict = RealmSettingsUpdate {
        max_sessions_per_subject: Some(Some(2)),
        quota_policy: Some(QuotaPolicy::EvictOldest),
        ..Default::default()
    };
    realm(&store, "evict", evict).await;
    store.create_session("deny", &new("a"), t0()).await.unwrap();
    store.create_session("deny", &new("a"), t0()).await.unwrap();
    assert_eq!(
        store.create_session("deny", &new("a"), t0()).await,
        Err(SessionError::QuotaExceeded("a".into()))
    );
    store.create_session("deny", &new("b"), t0()).await.unwrap();

    let first = store
        .create_session("evict", &new("a"), t0())
        .await
        .unwrap();
    let second = store
        .create_session("evict", &new("a"), t0() + TimeDelta::seconds(1))
        .await
        .unwrap();
    let third = store
        .create_session("evict", &new("a"), t0() + TimeDelta::seconds(2))
        .await
        .unwrap();
    let now = t0() + TimeDelta::seconds(3);
    assert!(store
        .validate("evict", &first.token, false, now)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .validate("evict", &second.token, false, now)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .validate("evict", &third.token, false, now)
        .await
        .unwrap()
        .is_some());
    let q = SessionQuery {
        filters: crate::SessionFilters {
            subject_id: Some("a".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(store.query("evict", &q).await.unwrap().total_count, 2);
    // Lifting the quota with an explicit null.
    realm(
        &store,
        "deny",
        RealmSettingsUpdate {
            max_sessions_per_subject: Some(None),
            ..Default::default()
        },
    )
    .await;
    store.create_session("deny", &new("a"), t0()).await.unwrap();
}

pub async fn properties_clients_and_lookup<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    realm(
        &store,
        "r",
        RealmSettingsUpdate {
            property_whitelist: Some(vec!["theme".into()]),
            ..Default::default()
        },
    )
    .await;
    let mut n = new("alice");
    n.properties = BTreeMap::from([
        ("theme".into(), "dark".into()),
        ("risk".into(), "high".into()),
    ]);
    let c = store.create_session("r", &n, t0()).await.unwrap();
    assert_eq!(
        store.get_properties("r", &c.token, t0()).await.unwrap(),
        BTreeMap::from([("theme".into(), "dark".into())])
    );
    // Validation shows its holder the same properties, with or without a refreshing write.
    let later = t0() + chrono::TimeDelta::seconds(120);
    for (refresh, at) in [(false, t0()), (true, later), (true, later)] {
        let seen = store
            .validate("r", &c.token, refresh, at)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            seen.properties,
            BTreeMap::from([("theme".into(), "dark".into())]),
            "validate (refresh {refresh}) shows only whitelisted properties"
        );
    }
    let forbidden = BTreeMap::from([("risk".to_string(), "low".to_string())]);
    assert_eq!(
        store.set_properties("r", &c.token, &forbidden, t0()).await,
        Err(SessionError::PropertyNotAllowed("risk".into()))
    );
    let set = BTreeMap::from([("theme".to_string(), "light".to_string())]);
    store
        .set_properties("r", &c.token, &set, t0())
        .await
        .unwrap();
    let s = store.get_session("r", &c.session.sid).await.unwrap();
    assert_eq!(s.properties.get("theme").map(String::as_str), Some("light"));
    assert_eq!(
        s.properties.get("risk").map(String::as_str),
        Some("high"),
        "admins see every property"
    );

    let s = store.add_client("r", &c.session.sid, "mail").await.unwrap();
    assert_eq!(s.client_ids, vec!["portal".to_string(), "mail".to_string()]);
    store.add_client("r", &c.session.sid, "mail").await.unwrap();
    let q = SessionQuery {
        filters: crate::SessionFilters {
            client_id: Some("mail".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(store.query("r", &q).await.unwrap().total_count, 1);
    assert!(matches!(
        store.add_client("r", "not-a-sid", "mail").await,
        Err(SessionError::SessionNotFound(_))
    ));
    assert!(matches!(
        store
            .get_session("r", "00000000-0000-4000-8000-000000000000")
            .await,
        Err(SessionError::SessionNotFound(_))
    ));
    let long = NewSession {
        subject_id: "x".repeat(256),
        ..Default::default()
    };
    assert!(matches!(
        store.create_session("r", &long, t0()).await,
        Err(SessionError::InvalidRequest(_))
    ));
}

pub async fn removal_selected_filtered_dry_run_and_realm_wide<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    realm(&store, "r", RealmSettingsUpdate::default()).await;
    realm(&store, "other", RealmSettingsUpdate::default()).await;
    let a1 = store
        .create_session("r", &new("alice"), t0())
        .await
        .unwrap();
    let a2 = store
        .create_session("r", &new("alice"), t0())
        .await
        .unwrap();
    let mut mail = new("bob");
    mail.client_ids.push("mail".into());
    let b = store.create_session("r", &mail, t0()).await.unwrap();
    let o = store
        .create_session("other", &new("alice"), t0())
        .await
        .unwrap();

    let empty = EndSessions::default();
    assert!(matches!(
        store.end_sessions("r", &empty, "t", t0()).await,
        Err(SessionError::InvalidRequest(_))
    ));
    let both = EndSessions {
        sids: vec![a1.session.sid.clone()],
        subject_id: Some("alice".into()),
        ..Default::default()
    };
    assert!(matches!(
        store.end_sessions("r", &both, "t", t0()).await,
        Err(SessionError::InvalidRequest(_))
    ));

    let preview = EndSessions {
        subject_id: Some("alice".into()),
        dry_run: true,
        ..Default::default()
    };
    let out = store.end_sessions("r", &preview, "t", t0()).await.unwrap();
    assert_eq!(
        (
            out.ended.len(),
            out.records_deleted,
            out.clients_affected,
            out.dry_run
        ),
        (2, 2, 1, true)
    );
    assert_eq!(
        store.get_realm("r").await.unwrap().session_count,
        3,
        "a dry run removed something"
    );

    let selected = EndSessions {
        sids: vec![a1.session.sid.clone(), o.session.sid.clone(), "junk".into()],
        ..Default::default()
    };
    let out = store.end_sessions("r", &selected, "t", t0()).await.unwrap();
    assert_eq!(out.ended, vec![a1.session.sid.clone()]);
    assert_eq!(
        out.not_found,
        vec![o.session.sid.clone(), "junk".to_string()],
        "another realm's session was found"
    );
    assert_eq!(out.records_deleted, 1);

    let scoped = EndSessions {
        subject_id: Some("bob".into()),
        client_ids: Some(vec!["mail".into()]),
        ..Default::default()
    };
    assert_eq!(
        store
            .end_sessions("r", &scoped, "t", t0())
            .await
            .unwrap()
            .clients_affected,
        1
    );
    assert!(store
        .validate("r", &b.token, false, t0())
        .await
        .unwrap()
        .is_none());

    let keep = EndSessions {
        sid: Some(a2.session.sid.clone()),
        remove_server_side_session: false,
        ..Default::default()
    };
    assert_eq!(
        store
            .end_sessions("r", &keep, "t", t0())
            .await
            .unwrap()
            .records_deleted,
        0
    );
    assert!(store
        .validate("r", &a2.token, false, t0())
        .await
        .unwrap()
        .is_some());

    let all = store
        .end_all_sessions("r", &EndAllSessions::default(), "t", t0())
        .await
        .unwrap();
    assert_eq!(all.records_deleted, 1);
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 0);
    assert!(
        store
            .validate("other", &o.token, false, t0())
            .await
            .unwrap()
            .is_some(),
        "realm-wide removal crossed realms"
    );
    assert!(
        store
            .validate("r", &o.token, false, t0())
            .await
            .unwrap()
            .is_none(),
        "a token validated in another realm"
    );
    assert!(store.logout("other", &o.token, t0()).await.unwrap());
    assert!(!store.logout("other", &o.token, t0()).await.unwrap());

    let actions: Vec<String> = store
        .audit_log(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "end_sessions").count(),
        3,
        "{actions:?}"
    );
    assert_eq!(actions[0], "end_all_sessions");
}

pub async fn reopening_keeps_everything_and_no_token_is_stored_in_clear<B: Backend>(backend: &B) {
    let at = backend.create().await;
    let (tokens, page_token) = {
        let store = backend.open(&at).await;
        realm(&store, "r", RealmSettingsUpdate::default()).await;
        let mut tokens = Vec::new();
        for i in 0..20 {
            let created = store
                .create_session("r", &new(&format!("u{i}")), t0())
                .await;
            tokens.push(created.unwrap().token);
        }
        let q = SessionQuery {
            count: Some(5),
            ..Default::default()
        };
        let page = store.query("r", &q).await.unwrap();
        backend.close(store).await;
        (tokens, page.results_token.unwrap())
    };
    let store = backend.open(&at).await;
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 20);
    for t in &tokens {
        assert!(store.validate("r", t, false, t0()).await.unwrap().is_some());
    }
    let q = SessionQuery {
        count: Some(5),
        results_token: Some(page_token),
        ..Default::default()
    };
    let page = store.query("r", &q).await.unwrap();
    assert_eq!((page.current_page, page.results.len()), (2, 5));
    backend.close(store).await;

    // Only where the backend shows what it stores.
    let Some(files) = backend.stored_bytes(&at).await else {
        return;
    };
    assert!(files.iter().map(Vec::len).sum::<usize>() > 0);
    use base64::Engine;
    for t in &tokens {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .unwrap();
        for f in &files {
            assert!(
                !f.windows(t.len()).any(|w| w == t.as_bytes()),
                "a token is stored in clear"
            );
            assert!(
                !f.windows(raw.len()).any(|w| w == raw.as_slice()),
                "a token's bytes are stored"
            );
        }
    }
}

/// Removals from several threads at once each take their session, and the counts end exact.
/// (From `tests/crash.rs`, whose flush counting stays there: group commit is sled's.)
pub async fn concurrent_removals_leave_exact_counts<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    realm(&store, "r", RealmSettingsUpdate::default()).await;
    let portal = crate::ClientRegistration::default();
    store
        .put_client("r", "portal", &portal, "t", t0())
        .await
        .unwrap();
    let mut sids = Vec::new();
    for i in 0..160 {
        let new = NewSession {
            subject_id: format!("u{i}"),
            client_ids: vec!["portal".into()],
            ..Default::default()
        };
        sids.push(
            store
                .create_session("r", &new, t0())
                .await
                .unwrap()
                .session
                .sid,
        );
    }
    let store: &dyn SessionStore = &store;
    // Eight callers on threads of their own, each ending its sessions one at a time.
    let runtime = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            for chunk in sids.chunks(20) {
                let runtime = runtime.clone();
                scope.spawn(move || {
                    runtime.block_on(async {
                        for sid in chunk {
                            let req = EndSessions {
                                sids: vec![sid.clone()],
                                ..Default::default()
                            };
                            let out = store.end_sessions("r", &req, "t", t0()).await.unwrap();
                            assert_eq!(out.records_deleted, 1, "{sid}");
                        }
                    })
                });
            }
        })
    });
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 0);
    assert_eq!(
        store.get_client("r", "portal").await.unwrap().session_count,
        0
    );
    assert_eq!(
        store
            .query("r", &SessionQuery::default())
            .await
            .unwrap()
            .total_count,
        0
    );
}
