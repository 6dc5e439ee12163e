//! Ended-session history: every way a session ends leaves one entry with how and by whom, each
//! client's notice follows its delivery (also once the delivery is purged); listings page newest
//! end first, filter and count exactly; pruning takes the oldest; entries survive reopening.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{fresh, Backend};
use crate::stats::EndReason;
use crate::store::{DueCursor, SessionStore};
use crate::{
    AttemptResult, ClientRegistration, EndAllSessions, EndSessions, EndedPage, EndedQuery,
    EndedSession, NewSession, Notice, QuotaPolicy, RealmSettingsUpdate, SessionError,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A realm whose sessions idle out after a minute, at most 3 per subject (the oldest evicted),
/// with `crm` (a back-channel URI) and `wiki` (none).
async fn setup(store: &dyn SessionStore) {
    let settings = RealmSettingsUpdate {
        idle_timeout_secs: Some(60),
        max_sessions_per_subject: Some(Some(3)),
        quota_policy: Some(QuotaPolicy::EvictOldest),
        ..Default::default()
    };
    store.put_realm("r", &settings, "test", t0()).await.unwrap();
    for (id, uri) in [("crm", Some("http://127.0.0.1:9/crm")), ("wiki", None)] {
        let reg = ClientRegistration {
            backchannel_logout_uri: uri.map(Into::into),
            ..Default::default()
        };
        store.put_client("r", id, &reg, "test", t0()).await.unwrap();
    }
}

async fn create(store: &dyn SessionStore, subject: &str, at: DateTime<Utc>) -> (String, String) {
    let new = NewSession {
        subject_id: subject.into(),
        display_name: Some(format!("{subject} Example")),
        client_ids: vec!["crm".into(), "wiki".into()],
        ip: Some("203.0.113.7".into()),
        user_agent: Some(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
                .into(),
        ),
        ..Default::default()
    };
    let c = store.create_session("r", &new, at).await.unwrap();
    (c.session.sid, c.token)
}

async fn page(store: &dyn SessionStore, q: EndedQuery) -> EndedPage {
    store.ended_sessions("r", &q).await.unwrap()
}

/// The one entry of a sid.
async fn entry(store: &dyn SessionStore, sid: &str) -> EndedSession {
    let found = page(
        store,
        EndedQuery {
            sid: Some(sid.into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(found.total_count, 1, "one entry for {sid}");
    assert_eq!(found.results.len(), 1);
    found.results.into_iter().next().unwrap()
}

fn notices(e: &EndedSession) -> Vec<(&str, Notice)> {
    e.clients
        .iter()
        .map(|c| (c.client_id.as_str(), c.notice))
        .collect()
}

/// Logout, revocation by selection and by filter (with actor and reason), realm sign-out, quota
/// eviction and expiry each leave exactly one entry saying how; a preview or a removal that
/// keeps the record leaves none. Each client's notice follows its delivery, also after a
/// delivered one is purged.
pub async fn every_ending_leaves_one_history_entry_saying_how_and_by_whom<B: Backend>(backend: &B) {
    let (store, at) = fresh(backend).await;
    setup(&store).await;
    let later = |s| t0() + TimeDelta::seconds(s);

    let (logged_out, token) = create(&store, "ann", t0()).await;
    assert!(store.logout("r", &token, later(1)).await.unwrap());

    let (selected, _) = create(&store, "ben", t0()).await;
    let by_selection = EndSessions {
        sids: vec![selected.clone()],
        reason: Some("stolen laptop".into()),
        ..Default::default()
    };
    let preview = EndSessions {
        dry_run: true,
        ..by_selection.clone()
    };
    store
        .end_sessions("r", &preview, "admin:ops", later(2))
        .await
        .unwrap();
    let kept = EndSessions {
        remove_server_side_session: false,
        ..by_selection.clone()
    };
    store
        .end_sessions("r", &kept, "admin:ops", later(2))
        .await
        .unwrap();
    assert_eq!(
        page(&store, EndedQuery::default()).await.total_count,
        1,
        "only the logout"
    );
    store
        .end_sessions("r", &by_selection, "admin:ops", later(3))
        .await
        .unwrap();

    let (filtered, _) = create(&store, "cat", t0()).await;
    let by_filter = EndSessions {
        subject_id: Some("cat".into()),
        send_backchannel_logout: false,
        ..Default::default()
    };
    store
        .end_sessions("r", &by_filter, "api-key:ops", later(4))
        .await
        .unwrap();

    let mut dee = Vec::new();
    for i in 0..4 {
        dee.push(create(&store, "dee", later(5 + i)).await.0);
    }
    let evicted = dee[0].clone();

    let (signed_out, _) = create(&store, "eve", later(10)).await;
    let everyone = EndAllSessions {
        reason: Some("key rotation".into()),
        ..Default::default()
    };
    // Everything left ends here but `expiring`, created after.
    store
        .end_all_sessions("r", &everyone, "admin:root", later(11))
        .await
        .unwrap();
    let (expiring, _) = create(&store, "fay", later(12)).await;
    assert_eq!(store.reap_expired(later(200), 100).await.unwrap(), 1);

    let e = entry(&store, &logged_out).await;
    assert_eq!(
        (e.how, e.actor.as_deref(), e.reason.as_deref()),
        (EndReason::Logout, None, None)
    );
    assert_eq!(e.subject_id, "ann");
    assert_eq!(e.display_name.as_deref(), Some("ann Example"));
    assert_eq!(e.ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(
        e.device.map(|d| d.label()).as_deref(),
        Some("Firefox 133 on Windows")
    );
    assert_eq!((e.created_at, e.ended_at), (t0(), later(1)));
    assert_eq!(
        notices(&e),
        [("crm", Notice::Pending), ("wiki", Notice::NotSent)]
    );
    assert!(e.clients[0].delivery_id.is_some() && e.clients[1].delivery_id.is_none());

    let e = entry(&store, &selected).await;
    assert_eq!(
        (e.how, e.actor.as_deref(), e.reason.as_deref()),
        (EndReason::Revoked, Some("admin:ops"), Some("stolen laptop"))
    );
    assert_eq!(
        e.ended_at,
        later(3),
        "the removal that deleted it, not the preview"
    );

    let e = entry(&store, &filtered).await;
    assert_eq!(
        (e.how, e.actor.as_deref()),
        (EndReason::Revoked, Some("api-key:ops"))
    );
    assert_eq!(
        notices(&e),
        [("crm", Notice::NotSent), ("wiki", Notice::NotSent)],
        "a removal without notifications tells no client"
    );

    let e = entry(&store, &evicted).await;
    assert_eq!((e.how, e.actor.as_deref()), (EndReason::Evicted, None));
    assert_eq!(e.ended_at, later(8));

    let e = entry(&store, &signed_out).await;
    assert_eq!(
        (e.how, e.actor.as_deref(), e.reason.as_deref()),
        (
            EndReason::RealmSignOut,
            Some("admin:root"),
            Some("key rotation")
        )
    );
    assert_eq!(entry(&store, &dee[3]).await.how, EndReason::RealmSignOut);

    let e = entry(&store, &expiring).await;
    assert_eq!((e.how, e.actor.as_deref()), (EndReason::Expired, None));
    assert_eq!(
        notices(&e),
        [("crm", Notice::NotSent), ("wiki", Notice::NotSent)],
        "this realm does not notify on expiry"
    );
    // ann, ben, cat, dee ×4, eve, fay.
    assert_eq!(page(&store, EndedQuery::default()).await.total_count, 9);

    // The logout's notification: delivered, then purged; and a failed one.
    let mut cursor = DueCursor::default();
    let due = store
        .due_deliveries(later(300), 100, usize::MAX, &mut cursor, &|_, _, _| false)
        .await
        .unwrap();
    // The delivery an entry names (`selected` also had one queued by the removal that kept it).
    let of = async |sid: &str| {
        let id = entry(&store, sid).await.clients[0].delivery_id;
        due.iter().find(|d| Some(d.id) == id).unwrap().clone()
    };
    let d = of(&logged_out).await;
    store
        .record_attempt(&d, "jti-1", &AttemptResult::Delivered, later(301))
        .await
        .unwrap();
    assert_eq!(
        notices(&entry(&store, &logged_out).await)[0].1,
        Notice::Delivered
    );
    let gave_up = AttemptResult::GiveUp {
        error: "refused".into(),
    };
    store
        .record_attempt(&of(&selected).await, "jti-2", &gave_up, later(301))
        .await
        .unwrap();
    assert_eq!(
        notices(&entry(&store, &selected).await)[0].1,
        Notice::Failed
    );
    assert!(store.purge_delivered(later(1_000), 100).await.unwrap() >= 1);
    assert_eq!(
        notices(&entry(&store, &logged_out).await)[0].1,
        Notice::Delivered,
        "a purged delivery was delivered"
    );

    // Dropped, not closed: the entries were written with the endings.
    drop(store);
    let store = backend.open(&at).await;
    assert_eq!(page(&store, EndedQuery::default()).await.total_count, 9);
    assert_eq!(
        entry(&store, &selected).await.reason.as_deref(),
        Some("stolen laptop")
    );
    assert!(
        backend.check(&store).await.is_empty(),
        "{:?}",
        backend.check(&store).await
    );
}

/// Pages newest end first visit every entry once, exactly counted, alone and filtered by subject
/// and by how; bad cursors and values are refused; pruning takes exactly the entries that ended
/// before the cutoff, and the counts follow.
pub async fn history_pages_newest_first_filters_counts_and_prunes<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    setup(&store).await;
    let mut ended: Vec<(String, &str, EndReason, DateTime<Utc>)> = Vec::new();
    for i in 0..23i64 {
        let subject = ["ann", "ben", "cat"][i as usize % 3];
        let at = t0() + TimeDelta::seconds(10 + i / 2);
        let (sid, token) = create(&store, subject, t0()).await;
        if i % 4 == 0 {
            assert!(store.logout("r", &token, at).await.unwrap());
            ended.push((sid, subject, EndReason::Logout, at));
        } else {
            let one = EndSessions {
                sids: vec![sid.clone()],
                ..Default::default()
            };
            store
                .end_sessions("r", &one, "admin:ops", at)
                .await
                .unwrap();
            ended.push((sid, subject, EndReason::Revoked, at));
        }
    }
    // Newest end first, ties by sid (as bytes), descending.
    let uuid_order = |sid: &str| *uuid::Uuid::parse_str(sid).unwrap().as_bytes();
    ended.sort_by_key(|e| std::cmp::Reverse((e.3, uuid_order(&e.0))));
    for (subject, how, count) in [
        (None, None, 5),
        (Some("ben"), None, 2),
        (None, Some(EndReason::Logout), 4),
        (Some("cat"), Some(EndReason::Revoked), 1),
        (None, None, 1000),
    ] {
        let want: Vec<&str> = ended
            .iter()
            .filter(|e| subject.is_none_or(|s| s == e.1) && how.is_none_or(|h| h == e.2))
            .map(|e| e.0.as_str())
            .collect();
        let mut q = EndedQuery {
            subject_id: subject.map(Into::into),
            how: how.map(|h| h.as_str().into()),
            count: Some(count),
            ..Default::default()
        };
        let mut seen = Vec::new();
        loop {
            let p = page(&store, q.clone()).await;
            assert_eq!(p.total_count, want.len() as u64, "count of {q:?}");
            assert!(p.results.len() <= count as usize);
            seen.extend(p.results.iter().map(|e| e.sid.clone()));
            match p.next {
                Some(next) => q.after = Some(next),
                None => break,
            }
            assert!(seen.len() <= want.len(), "paging does not end: {q:?}");
        }
        assert_eq!(seen, want, "{subject:?} {how:?} by {count}");
    }
    for q in [
        EndedQuery {
            after: Some("not-a-cursor".into()),
            ..Default::default()
        },
        EndedQuery {
            how: Some("vanished".into()),
            ..Default::default()
        },
        EndedQuery {
            count: Some(0),
            ..Default::default()
        },
        EndedQuery {
            sid: Some("nope".into()),
            ..Default::default()
        },
    ] {
        let refused = store.ended_sessions("r", &q).await.unwrap_err();
        assert!(
            matches!(refused, SessionError::InvalidRequest(_)),
            "{q:?}: {refused:?}"
        );
    }
    assert!(matches!(
        store
            .ended_sessions("nowhere", &EndedQuery::default())
            .await,
        Err(SessionError::RealmNotFound(_))
    ));

    // Entries that ended before t0 + 13 s: i in 0..6.
    let cutoff = t0() + TimeDelta::seconds(13);
    let before = ended.iter().filter(|e| e.3 < cutoff).count();
    assert_eq!(before, 6);
    let mut pruned = 0;
    loop {
        let n = store.prune_ended(cutoff, 4).await.unwrap();
        assert!(n <= 4);
        if n == 0 {
            break;
        }
        pruned += n;
    }
    assert_eq!(pruned, before);
    let left = page(
        &store,
        EndedQuery {
            count: Some(1000),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(left.total_count, 23 - 6);
    assert!(left.results.iter().all(|e| e.ended_at >= cutoff));
    let logouts = page(
        &store,
        EndedQuery {
            how: Some("logout".into()),
            ..Default::default()
        },
    )
    .await;
    let want = ended
        .iter()
        .filter(|e| e.2 == EndReason::Logout && e.3 >= cutoff)
        .count();
    assert_eq!(logouts.total_count, want as u64);
    assert!(backend.check(&store).await.is_empty());
}
