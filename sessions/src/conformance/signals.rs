//! Shared Signals streams of a backend that also keeps the server's accounts
//! ([`AccountStore`]): stored and read back, and every way a session ends queues exactly one
//! `session-revoked` delivery per stream that takes it, in the ending's own write. Not in
//! [`conformance_suite!`](crate::conformance_suite): a backend with accounts calls these itself.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{fresh, Backend};
use crate::signal::{
    StreamDelivery, StreamRecord, StreamStatus, SubjectFormat, SESSION_REVOKED, STREAMS_REALM,
    VERIFICATION, VERIFICATION_REASON,
};
use crate::store::{AccountStore, SessionStore};
use crate::{
    AttemptResult, Delivery, DeliveryStatus, EndAllSessions, EndSessions, NewDelivery, NewSession,
    QuotaPolicy, RealmSettingsUpdate, SessionError,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn stream(
    id: &str,
    status: StreamStatus,
    realms: Option<&[&str]>,
    events: &[&str],
) -> StreamRecord {
    StreamRecord {
        id: id.to_owned(),
        key_name: format!("receiver-{id}"),
        aud: format!("https://{id}.example"),
        realms: realms.map(|r| r.iter().map(|s| s.to_string()).collect()),
        events_requested: events.iter().map(|s| s.to_string()).collect(),
        delivery: if id.ends_with("poll") {
            StreamDelivery::Poll
        } else {
            StreamDelivery::Push {
                endpoint_url: format!("https://{id}.example/events"),
                authorization_header: Some("Bearer s3cret".into()),
            }
        },
        description: Some(format!("stream {id}")),
        subject_format: SubjectFormat::Complex,
        status,
        status_reason: None,
        status_by_admin: false,
        created_at: t0(),
        updated_at: t0(),
    }
}

/// Streams are stored whole, listed by id, replaced by id and deleted, also across reopening.
pub async fn signal_streams_are_stored_replaced_and_deleted<B>(backend: &B)
where
    B: Backend,
    B::Store: AccountStore,
{
    let (store, location) = fresh(backend).await;
    assert_eq!(store.signal_streams().await.unwrap(), []);
    let a = stream("a", StreamStatus::Enabled, None, &[SESSION_REVOKED]);
    let b = stream(
        "b-poll",
        StreamStatus::Paused,
        Some(&["r"]),
        &[VERIFICATION],
    );
    store.put_signal_stream(&b).await.unwrap();
    store.put_signal_stream(&a).await.unwrap();
    assert_eq!(
        store.signal_streams().await.unwrap(),
        [a.clone(), b.clone()]
    );
    let a2 = StreamRecord {
        status: StreamStatus::Disabled,
        status_reason: Some("receiver retired".into()),
        description: None,
        updated_at: t0() + TimeDelta::hours(1),
        ..a.clone()
    };
    store.put_signal_stream(&a2).await.unwrap();
    let second_of_a_key = StreamRecord {
        id: "a-again".into(),
        ..a.clone()
    };
    assert!(matches!(
        store.put_signal_stream(&second_of_a_key).await,
        Err(SessionError::Conflict(_))
    ));
    backend.close(store).await;
    let store = backend.open(&location).await;
    assert_eq!(store.signal_streams().await.unwrap(), [a2, b.clone()]);
    assert!(store.delete_signal_stream("a").await.unwrap());
    assert!(!store.delete_signal_stream("a").await.unwrap());
    assert_eq!(store.signal_streams().await.unwrap(), [b]);
}

/// Logout, removal by selection (notifications off), by filter, eviction, realm sign-out and
/// expiry each queue one `session-revoked` per stream that covers the realm, is not disabled and
/// asked for it (a paused one holds its), with the ending's reason; a dry run counts them and
/// queues nothing; a removal that keeps the record ends nothing and queues nothing.
pub async fn every_ending_queues_one_session_revoked_per_stream<B>(backend: &B)
where
    B: Backend,
    B::Store: AccountStore,
{
    let (store, _location) = fresh(backend).await;
    let settings = RealmSettingsUpdate {
        idle_timeout_secs: Some(60),
        max_sessions_per_subject: Some(Some(2)),
        quota_policy: Some(QuotaPolicy::EvictOldest),
        ..Default::default()
    };
    for realm in ["r", "other"] {
        store
            .put_realm(realm, &settings, "test", t0())
            .await
            .unwrap();
    }
    let takes = [
        stream("all", StreamStatus::Enabled, None, &[SESSION_REVOKED]),
        stream(
            "r-poll",
            StreamStatus::Paused,
            Some(&["r"]),
            &[SESSION_REVOKED, VERIFICATION],
        ),
    ];
    let passes = [
        stream("off", StreamStatus::Disabled, None, &[SESSION_REVOKED]),
        stream(
            "elsewhere",
            StreamStatus::Enabled,
            Some(&["other"]),
            &[SESSION_REVOKED],
        ),
        stream("verify-only", StreamStatus::Enabled, None, &[VERIFICATION]),
    ];
    for s in takes.iter().chain(&passes) {
        store.put_signal_stream(s).await.unwrap();
    }
    let later = |s| t0() + TimeDelta::seconds(s);
    let create = async |subject: &str, at| {
        let new = NewSession {
            subject_id: subject.into(),
            ..Default::default()
        };
        let c = store.create_session("r", &new, at).await.unwrap();
        (c.session.sid, c.token)
    };
    let mut expected: BTreeMap<String, &str> = BTreeMap::new();

    let (sid, token) = create("ann", t0()).await;
    assert!(store.logout("r", &token, later(1)).await.unwrap());
    expected.insert(sid, "logout");

    let (sid, _) = create("ben", t0()).await;
    let selected = EndSessions {
        sids: vec![sid.clone()],
        send_backchannel_logout: false,
        ..Default::default()
    };
    let preview = EndSessions {
        dry_run: true,
        ..selected.clone()
    };
    let counted = store
        .end_sessions("r", &preview, "admin:ops", later(2))
        .await
        .unwrap();
    assert_eq!(
        counted.signals_queued, 2,
        "a dry run counts one per stream that takes it"
    );
    let kept = EndSessions {
        remove_server_side_session: false,
        ..selected.clone()
    };
    let kept = store
        .end_sessions("r", &kept, "admin:ops", later(2))
        .await
        .unwrap();
    assert_eq!(kept.signals_queued, 0, "keeping the record ends no session");
    let done = store
        .end_sessions("r", &selected, "admin:ops", later(3))
        .await
        .unwrap();
    assert_eq!(done.signals_queued, 2);
    expected.insert(sid, "revoked");

    let (sid, _) = create("cat", t0()).await;
    let by_subject = EndSessions {
        subject_id: Some("cat".into()),
        ..Default::default()
    };
    store
        .end_sessions("r", &by_subject, "api-key:ops", later(4))
        .await
        .unwrap();
    expected.insert(sid, "revoked");

    let (evicted, _) = create("dee", later(5)).await;
    create("dee", later(6)).await;
    create("dee", later(7)).await;
    expected.insert(evicted, "evicted");

    let all = store
        .end_all_sessions("r", &EndAllSessions::default(), "admin:root", later(8))
        .await
        .unwrap();
    assert_eq!(all.signals_queued, 4, "dee's two sessions, one per stream");
    let page = store.query("r", &Default::default()).await.unwrap();
    assert_eq!(page.total_count, 0);
    // The two dee sessions that were signed out.
    let signed_out = store
        .pending_deliveries("r", "ssf:all", 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.reason == "realm_sign_out")
        .map(|d| d.sid)
        .collect::<Vec<_>>();
    assert_eq!(signed_out.len(), 2);
    for sid in signed_out {
        expected.insert(sid, "realm_sign_out");
    }

    let (sid, _) = create("eve", later(9)).await;
    assert_eq!(store.reap_expired(later(200), 100).await.unwrap(), 1);
    expected.insert(sid, "expired");
    // A session of another realm reaches the stream that covers it alone.
    let other = NewSession {
        subject_id: "fay".into(),
        ..Default::default()
    };
    let c = store
        .create_session("other", &other, later(10))
        .await
        .unwrap();
    assert!(store.logout("other", &c.token, later(11)).await.unwrap());

    for s in &takes {
        let queued = store
            .pending_deliveries("r", &s.client_id(), 100)
            .await
            .unwrap();
        let got: BTreeMap<String, &str> = queued
            .iter()
            .map(|d| (d.sid.clone(), d.reason.as_str()))
            .collect();
        assert_eq!(got, expected, "stream {}", s.id);
        assert_eq!(
            queued.len(),
            expected.len(),
            "exactly one per ending for {}",
            s.id
        );
        for d in &queued {
            assert_eq!(d.uri, s.delivery.target());
            assert_eq!(d.status, DeliveryStatus::Pending);
        }
    }
    for s in &passes {
        let queued = store
            .pending_deliveries("r", &s.client_id(), 100)
            .await
            .unwrap();
        assert_eq!(queued, [], "stream {} takes nothing of realm r", s.id);
    }
    let elsewhere = store
        .pending_deliveries("other", "ssf:elsewhere", 100)
        .await
        .unwrap();
    assert_eq!(elsewhere.len(), 1);
    assert_eq!(
        (
            elsewhere[0].subject_id.as_str(),
            elsewhere[0].reason.as_str()
        ),
        ("fay", "logout")
    );
    let limited = store.pending_deliveries("r", "ssf:all", 3).await.unwrap();
    assert_eq!(limited.len(), 3);
}

/// A delivery queued by itself is pending and due at once, read back by id and in its client's
/// queue until an attempt delivers it; an unknown id is an error.
pub async fn a_queued_delivery_is_read_back_by_id_and_leaves_the_queue_once_delivered<B>(
    backend: &B,
) where
    B: Backend,
    B::Store: AccountStore,
{
    let (store, _location) = fresh(backend).await;
    store
        .put_realm(STREAMS_REALM, &RealmSettingsUpdate::default(), "test", t0())
        .await
        .unwrap();
    let new = NewDelivery {
        realm: STREAMS_REALM.into(),
        client_id: "ssf:s1".into(),
        uri: "https://s1.example/events".into(),
        subject_id: "state-42".into(),
        sid: "0b5e3f5c-6c1a-4d5e-9a43-1f2d3c4b5a69".into(),
        reason: VERIFICATION_REASON.into(),
    };
    let queued: Delivery = store.queue_delivery(&new, t0()).await.unwrap();
    assert_eq!(queued, Delivery::pending(queued.id, new.clone(), t0()));
    assert_eq!(
        store.get_delivery(STREAMS_REALM, queued.id).await.unwrap(),
        queued
    );
    assert_eq!(
        store
            .pending_deliveries(STREAMS_REALM, "ssf:s1", 10)
            .await
            .unwrap(),
        std::slice::from_ref(&queued)
    );
    let page = store
        .list_deliveries(STREAMS_REALM, None, None, 10)
        .await
        .unwrap();
    assert_eq!((page.deliveries.len(), page.counts.pending), (1, 1));
    store
        .record_attempt(&queued, "jti-1", &AttemptResult::Delivered, t0())
        .await
        .unwrap();
    assert_eq!(
        store
            .pending_deliveries(STREAMS_REALM, "ssf:s1", 10)
            .await
            .unwrap(),
        []
    );
    assert_eq!(
        store
            .get_delivery(STREAMS_REALM, queued.id)
            .await
            .unwrap()
            .status,
        DeliveryStatus::Delivered
    );
    assert!(matches!(
        store.get_delivery(STREAMS_REALM, queued.id + 1000).await,
        Err(SessionError::DeliveryNotFound(_))
    ));
    assert!(matches!(
        store
            .queue_delivery(
                &NewDelivery {
                    realm: "nowhere".into(),
                    ..new
                },
                t0()
            )
            .await,
        Err(SessionError::RealmNotFound(_))
    ));
}
