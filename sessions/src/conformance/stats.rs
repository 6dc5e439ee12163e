//! Activity counters ([`crate::stats`]): every sign-in, every way a session ends and every
//! delivery attempt lands in its hour's and its day's bucket with the exact number; a dry run or
//! a removal that keeps the session counts nothing; an administrator's removal counts as
//! `revoked` whatever free-text reason it gives; old buckets are pruned; the counters survive
//! reopening the store.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{fresh, Backend};
use crate::stats::{
    active_at_bucket_ends, AttemptCounts, EndedCounts, Span, StatsBucket, DAYS_KEPT, HOURS_KEPT,
};
use crate::store::{DueCursor, SessionStore};
use crate::{
    AttemptResult, ClientRegistration, EndAllSessions, EndSessions, NewSession, QuotaPolicy,
    RealmSettingsUpdate, SessionError,
};

/// 10:20 on a day: hour buckets start at 10:00, day buckets at midnight.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 7, 10, 20, 0).unwrap()
}

fn hours(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}

fn new(subject: &str) -> NewSession {
    NewSession {
        subject_id: subject.into(),
        client_ids: vec!["crm".into()],
        ..Default::default()
    }
}

/// A realm whose sessions idle out after an hour, allow two per subject (evicting the oldest),
/// and whose client `crm` takes back-channel logouts.
async fn setup(store: &dyn SessionStore, realm: &str) {
    let update = RealmSettingsUpdate {
        idle_timeout_secs: Some(3600),
        max_sessions_per_subject: Some(Some(2)),
        quota_policy: Some(QuotaPolicy::EvictOldest),
        ..Default::default()
    };
    store.put_realm(realm, &update, "test", t0()).await.unwrap();
    let reg = ClientRegistration {
        backchannel_logout_uri: Some("http://127.0.0.1:9/logout".into()),
        ..Default::default()
    };
    store
        .put_client(realm, "crm", &reg, "test", t0())
        .await
        .unwrap();
}

/// The hourly buckets from 10:00 through 13:00 of the test day.
async fn four_hours(store: &dyn SessionStore, realm: &str) -> Vec<StatsBucket> {
    store
        .stats(realm, Span::Hour, t0(), t0() + hours(3))
        .await
        .unwrap()
}

fn ended(f: impl FnOnce(&mut EndedCounts)) -> EndedCounts {
    let mut e = EndedCounts::default();
    f(&mut e);
    e
}

/// Hour by hour: 10:xx four sign-ins (one evicts), a logout, an administrator's removal, a dry
/// run and a token-only removal (neither ends anything); 11:xx two sign-ins and the reaper
/// (two sessions idled out); 12:xx a realm sign-out; then delivery attempts at 13:xx.
pub async fn sign_ins_endings_and_attempts_land_in_their_buckets_exactly<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    setup(&store, "r").await;
    setup(&store, "other").await;
    let a1 = store.create_session("r", &new("a"), t0()).await.unwrap();
    let a2 = store
        .create_session("r", &new("a"), t0() + TimeDelta::seconds(1))
        .await
        .unwrap();
    let b = store.create_session("r", &new("b"), t0()).await.unwrap();
    // A third session of `a` evicts the oldest.
    let a3 = store
        .create_session("r", &new("a"), t0() + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert!(store.get_session("r", &a1.session.sid).await.is_err());
    assert!(store.logout("r", &a2.token, t0()).await.unwrap());
    let dry = EndSessions {
        sids: vec![b.session.sid.clone()],
        dry_run: true,
        reason: Some("incident 42: a reason must never become a key".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .end_sessions("r", &dry, "admin", t0())
            .await
            .unwrap()
            .records_deleted,
        1
    );
    let tokens_only = EndSessions {
        sids: vec![b.session.sid.clone()],
        remove_server_side_session: false,
        send_backchannel_logout: false,
        ..Default::default()
    };
    store
        .end_sessions("r", &tokens_only, "admin", t0())
        .await
        .unwrap();
    let revoke = EndSessions {
        sids: vec![a3.session.sid.clone()],
        reason: Some("incident 42: a reason must never become a key".into()),
        ..Default::default()
    };
    store
        .end_sessions("r", &revoke, "admin", t0())
        .await
        .unwrap();
    // `b` (created 10:20) idles out at 11:20; two more at 11:30, one of which idles out at
    // 12:30 and is signed out with the realm before that.
    let at_1130 = t0() + hours(1) + TimeDelta::minutes(10);
    store.create_session("r", &new("c"), at_1130).await.unwrap();
    store.create_session("r", &new("d"), at_1130).await.unwrap();
    store
        .create_session("other", &new("x"), at_1130)
        .await
        .unwrap();
    assert_eq!(
        store.reap_expired(at_1130, 100).await.unwrap(),
        1,
        "b expired"
    );
    let at_1210 = t0() + hours(2) - TimeDelta::minutes(10);
    store
        .end_all_sessions("r", &EndAllSessions::default(), "admin", at_1210)
        .await
        .unwrap();
    let dry_all = EndAllSessions {
        dry_run: true,
        ..Default::default()
    };
    store
        .end_all_sessions("r", &dry_all, "admin", at_1210)
        .await
        .unwrap();

    // Deliveries queued: eviction (a1), logout (a2), revocation (a3), expiry is not notified
    // (the realm does not ask for it), realm sign-out (c, d): five. Attempts at 13:05.
    let at_1305 = t0() + hours(3) - TimeDelta::minutes(15);
    let mut cursor = DueCursor::default();
    let due = store
        .due_deliveries(at_1305, 100, usize::MAX, &mut cursor, &|_, _, _| false)
        .await
        .unwrap();
    assert_eq!(due.len(), 5);
    let results = [
        AttemptResult::Delivered,
        AttemptResult::Delivered,
        AttemptResult::Retry {
            at: at_1305 + TimeDelta::seconds(30),
            error: "HTTP 503".into(),
        },
        AttemptResult::GiveUp {
            error: "connection refused".into(),
        },
        AttemptResult::Retry {
            at: at_1305 + TimeDelta::seconds(30),
            error: "HTTP 503".into(),
        },
    ];
    for (d, result) in due.iter().zip(&results) {
        store
            .record_attempt(d, "jti", result, at_1305)
            .await
            .unwrap();
    }

    let h = four_hours(&store, "r").await;
    let starts: Vec<_> = h.iter().map(|b| b.start).collect();
    let ten = Utc.with_ymd_and_hms(2026, 4, 7, 10, 0, 0).unwrap();
    assert_eq!(starts, (0..4).map(|i| ten + hours(i)).collect::<Vec<_>>());
    assert_eq!(
        h.iter().map(|b| b.sign_ins).collect::<Vec<_>>(),
        [4, 2, 0, 0]
    );
    assert_eq!(
        h[0].ended,
        ended(|e| {
            e.evicted = 1;
            e.logout = 1;
            e.revoked = 1;
        })
    );
    assert_eq!(h[1].ended, ended(|e| e.expired = 1));
    assert_eq!(h[2].ended, ended(|e| e.realm_sign_out = 2));
    assert_eq!(h[3].ended, EndedCounts::default());
    assert!(h[..3]
        .iter()
        .all(|b| b.deliveries == AttemptCounts::default()));
    assert_eq!(
        h[3].deliveries,
        AttemptCounts {
            delivered: 2,
            failed: 2,
            gave_up: 1
        }
    );

    // The day bucket holds the sum of the hours.
    let days = store.stats("r", Span::Day, t0(), t0()).await.unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(
        days[0].start,
        Utc.with_ymd_and_hms(2026, 4, 7, 0, 0, 0).unwrap()
    );
    assert_eq!(days[0].sign_ins, 6);
    assert_eq!(days[0].ended.total(), 6);
    assert_eq!(days[0].deliveries.total(), 5);

    // The other realm has its own counters.
    let other = four_hours(&store, "other").await;
    assert_eq!(
        other.iter().map(|b| b.sign_ins).collect::<Vec<_>>(),
        [0, 1, 0, 0]
    );
    assert!(other.iter().all(|b| b.ended.total() == 0));

    // Active sessions at each hour's end follow from the count now.
    let now = store.get_realm("r").await.unwrap().session_count;
    assert_eq!(now, 0);
    assert_eq!(active_at_bucket_ends(now, &h), [1, 2, 0, 0]);

    assert!(matches!(
        store.stats("nope", Span::Hour, t0(), t0()).await,
        Err(SessionError::RealmNotFound(_))
    ));
}

/// Buckets older than the hours and days kept are pruned; newer ones stay; the counters are
/// read back exactly after the store is reopened.
pub async fn old_buckets_are_pruned_and_counters_survive_reopening<B: Backend>(backend: &B) {
    let location = backend.create().await;
    let store = backend.open(&location).await;
    setup(&store, "r").await;
    let long_ago = t0() - TimeDelta::days(DAYS_KEPT + 3);
    for (i, at) in [
        long_ago,
        t0() - hours(HOURS_KEPT + 2),
        t0() - hours(2),
        t0(),
    ]
    .into_iter()
    .enumerate()
    {
        for j in 0..=i {
            store
                .create_session("r", &new(&format!("s{i}-{j}")), at)
                .await
                .unwrap();
        }
    }
    let window = async |store: &B::Store, span: Span| {
        let from = t0() - TimeDelta::seconds(span.seconds() * (span.kept() + 5));
        store
            .stats("r", span, from, t0())
            .await
            .unwrap()
            .into_iter()
            .filter(|b| b.sign_ins > 0)
            .map(|b| (b.start, b.sign_ins))
            .collect::<Vec<_>>()
    };
    let hour = |at: DateTime<Utc>| {
        Utc.timestamp_opt(Span::Hour.bucket_of(at), 0)
            .single()
            .unwrap()
    };
    let day = |at: DateTime<Utc>| {
        Utc.timestamp_opt(Span::Day.bucket_of(at), 0)
            .single()
            .unwrap()
    };
    let before_hours = vec![
        (hour(t0() - hours(HOURS_KEPT + 2)), 2),
        (hour(t0() - hours(2)), 3),
        (hour(t0()), 4),
    ];
    assert_eq!(window(&store, Span::Hour).await, before_hours);
    backend.close(store).await;

    let store = backend.open(&location).await;
    assert_eq!(
        window(&store, Span::Hour).await,
        before_hours,
        "kept on reopening"
    );
    assert!(store.prune_stats(t0()).await.unwrap() > 0);
    assert_eq!(
        window(&store, Span::Hour).await,
        vec![(hour(t0() - hours(2)), 3), (hour(t0()), 4)]
    );
    let days = vec![(day(t0() - hours(HOURS_KEPT + 2)), 2), (day(t0()), 7)];
    assert_eq!(
        window(&store, Span::Day).await,
        days,
        "the long-ago day is pruned"
    );
    assert_eq!(
        store.prune_stats(t0()).await.unwrap(),
        0,
        "nothing left to prune"
    );
    backend.close(store).await;

    let store = backend.open(&location).await;
    assert_eq!(window(&store, Span::Day).await, days, "pruned for good");
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 10);
}
