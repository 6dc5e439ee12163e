//! Filters by client address (an IP address or a CIDR range) and by creation time: listing and
//! paging against a brute-force answer, exact counts, removal with its preview and audit entry.

use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{check_property, fresh, Backend};
use crate::store::SessionStore;
use crate::{
    EndSessions, NewSession, RealmSettingsUpdate, Session, SessionError, SessionQuery, SortKey,
};

/// Session addresses: IPv4 in and out of 203.0.113.0/24, an IPv4-mapped IPv6 spelling, IPv6,
/// text that is no address.
const ADDRESSES: &[&str] = &[
    "203.0.113.5",
    "203.0.113.77",
    "203.0.114.1",
    "::ffff:203.0.113.9",
    "2001:db8::1",
    "2001:db8:1::5",
    "10.0.0.1",
    "unknown",
];
const RANGES: &[&str] = &[
    "203.0.113.0/24",
    "203.0.113.5",
    "203.0.0.0/16",
    "2001:db8::/32",
    "2001:db8::/48",
    "::ffff:203.0.113.0/120",
    "0.0.0.0/0",
    "::/0",
    "10.0.0.1/32",
    "198.51.100.0/24",
];
const SUBJECTS: &[&str] = &["alice", "bob"];

pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 14, 0, 0).unwrap()
}

pub(super) async fn realm<S: SessionStore>(store: &S) {
    let long = RealmSettingsUpdate {
        idle_timeout_secs: Some(10 * 365 * 24 * 3600),
        absolute_lifetime_secs: Some(10 * 365 * 24 * 3600),
        ..Default::default()
    };
    store.put_realm("r", &long, "test", t0()).await.unwrap();
}

fn by(subject: &str) -> NewSession {
    NewSession {
        subject_id: subject.into(),
        ..Default::default()
    }
}

/// Whether `ip` is in `range`, worked out independently of the store: IPv4 as IPv4-mapped IPv6.
fn in_range(ip: &str, range: &str) -> bool {
    let v6 = |a: IpAddr| match a {
        IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), 96),
        IpAddr::V6(v6) => (u128::from(v6), 0),
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let (net, len) = range.split_once('/').unwrap_or((range, ""));
    let (net, offset) = v6(net.parse().unwrap());
    let len = if len.is_empty() {
        128
    } else {
        offset + len.parse::<u32>().unwrap()
    };
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    v6(ip).0 & mask == net & mask
}

/// The sids a query must list, in its order, by brute force.
fn expected(all: &[Session], q: &SessionQuery) -> Vec<String> {
    let rows: Vec<&Session> = all
        .iter()
        .filter(|s| {
            q.filters
                .subject_id
                .as_ref()
                .is_none_or(|x| *x == s.subject_id)
        })
        .filter(|s| {
            q.filters
                .ip
                .as_deref()
                .is_none_or(|r| s.ip.as_deref().is_some_and(|ip| in_range(ip, r)))
        })
        .filter(|s| q.filters.created_after.is_none_or(|t| s.created_at >= t))
        .filter(|s| q.filters.created_before.is_none_or(|t| s.created_at < t))
        .collect();
    in_listing_order(rows, q.sort)
}

/// The sids of `rows` in the order a listing sorted by `sort` shows them.
pub(super) fn in_listing_order(mut rows: Vec<&Session>, sort: SortKey) -> Vec<String> {
    let key = |s: &Session| match sort {
        SortKey::Created => s.created_at,
        SortKey::LastAccess => s.last_access_at,
        SortKey::Expires => s.effective_expiry(),
    };
    rows.sort_by(|a, b| (key(a), &a.sid).cmp(&(key(b), &b.sid)));
    if sort != SortKey::Expires {
        rows.reverse();
    }
    rows.into_iter().map(|s| s.sid.clone()).collect()
}

/// Pages through a query forward, then back from the last page: every page counted exactly, and
/// the same rows without counting.
pub(super) async fn page_both_ways(store: &dyn SessionStore, q: &SessionQuery, want: &[String]) {
    let mut q = q.clone();
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = store.query("r", &q).await.unwrap();
        assert_eq!(page.total_count, want.len() as u64, "count of {q:?}");
        let uncounted = store.query_uncounted("r", &q).await.unwrap();
        assert_eq!(uncounted.results, page.results, "uncounted {q:?}");
        assert_eq!(uncounted.has_next, page.has_next);
        seen.extend(page.results.iter().map(|s| s.sid.clone()));
        pages.push(page.results.len());
        q.results_token = page.results_token;
        if !page.has_next {
            break;
        }
        assert!(pages.len() <= want.len(), "paging does not end: {q:?}");
    }
    assert_eq!(seen, want, "forward through {q:?}");
    if q.results_token.is_none() {
        assert!(want.is_empty());
        return;
    }
    // Back from the last page: the pages before it, in reverse.
    let mut back = Vec::new();
    q.prior = true;
    loop {
        let page = store.query("r", &q).await.unwrap();
        if page.results.is_empty() {
            break;
        }
        back.splice(0..0, page.results.iter().map(|s| s.sid.clone()));
        if !page.has_prev {
            break;
        }
        q.results_token = page.results_token;
    }
    let last_page = pages.last().copied().unwrap_or(0);
    assert_eq!(back, want[..want.len() - last_page], "back through {q:?}");
}

/// A generated session: address (index, or none), subject, creation offset in seconds (a few
/// distinct ones, so that bounds often fall on a creation time).
type Spec = (Option<usize>, usize, i64);
/// A generated query: range, created-after and created-before offsets, subject, sort, page size.
type QuerySpec = (
    Option<usize>,
    Option<i64>,
    Option<i64>,
    Option<usize>,
    usize,
    u32,
);

/// Listing by address range and creation time, alone and with a subject, in every order and
/// page size, visits exactly the matching sessions forward and back, each page counted exactly.
pub async fn address_and_creation_time_filters_page_and_count_exactly<B: Backend>(backend: &B) {
    let specs = proptest::collection::vec(
        (
            proptest::option::weighted(0.9, 0..ADDRESSES.len()),
            0..SUBJECTS.len(),
            0..30i64,
        ),
        0..40,
    );
    let queries = proptest::collection::vec(
        (
            proptest::option::weighted(0.7, 0..RANGES.len()),
            proptest::option::of(0..32i64),
            proptest::option::of(0..32i64),
            proptest::option::weighted(0.3, 0..SUBJECTS.len()),
            0..3usize,
            1..6u32,
        ),
        1..6,
    );
    check_property(
        40,
        file!(),
        (specs, queries),
        |(specs, queries): (Vec<Spec>, Vec<QuerySpec>)| async move {
            let (store, _at) = fresh(backend).await;
            realm(&store).await;
            let mut all = Vec::new();
            for (address, subject, created) in &specs {
                let new = NewSession {
                    subject_id: SUBJECTS[*subject].into(),
                    ip: address.map(|a| ADDRESSES[a].to_owned()),
                    ..Default::default()
                };
                let at = t0() + TimeDelta::seconds(*created);
                all.push(store.create_session("r", &new, at).await.unwrap().session);
            }
            for (range, after, before, subject, sort, count) in queries {
                let q = SessionQuery {
                    filters: crate::SessionFilters {
                        ip: range.map(|r| RANGES[r].to_owned()),
                        created_after: after.map(|s| t0() + TimeDelta::seconds(s)),
                        created_before: before.map(|s| t0() + TimeDelta::seconds(s)),
                        subject_id: subject.map(|s| SUBJECTS[s].to_owned()),
                        ..Default::default()
                    },
                    sort: SortKey::ALL[sort],
                    count: Some(count),
                    ..Default::default()
                };
                page_both_ways(&store, &q, &expected(&all, &q)).await;
            }
            Ok(())
        },
    );
}

/// Creation-time bounds are exact to the millisecond: `created_after` includes its instant,
/// `created_before` excludes it, and sub-millisecond bounds round the way a stored time compares.
pub async fn creation_time_bounds_are_inclusive_after_and_exclusive_before<B: Backend>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    realm(&store).await;
    let at = t0() + TimeDelta::milliseconds(500);
    let sid = store
        .create_session("r", &by("alice"), at)
        .await
        .unwrap()
        .session
        .sid;
    let count = async |after: Option<DateTime<Utc>>, before: Option<DateTime<Utc>>| {
        let q = SessionQuery {
            filters: crate::SessionFilters {
                created_after: after,
                created_before: before,
                ..Default::default()
            },
            ..Default::default()
        };
        let page = store.query("r", &q).await.unwrap();
        assert_eq!(page.total_count, page.results.len() as u64);
        assert!(page.results.iter().all(|s| s.sid == sid));
        page.total_count
    };
    let us = TimeDelta::microseconds;
    assert_eq!(count(Some(at), None).await, 1, "after its own instant");
    assert_eq!(count(None, Some(at)).await, 0, "before its own instant");
    assert_eq!(count(None, Some(at + us(1))).await, 1);
    assert_eq!(count(Some(at + us(1)), None).await, 0);
    assert_eq!(count(Some(at - us(1)), Some(at + us(1))).await, 1);
    assert_eq!(count(Some(at), Some(at)).await, 0, "an empty window");
    assert_eq!(
        count(Some(at + us(1)), Some(at - us(1))).await,
        0,
        "a reversed window"
    );
}

/// A removal by address range and creation time previews exactly the matching sessions, then
/// ends exactly those, names its filter in the audit log, and leaves the counts exact.
pub async fn removal_by_address_range_and_creation_time_ends_exactly_the_matches<B: Backend>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    realm(&store).await;
    let mut all = Vec::new();
    for (i, ip) in [
        "203.0.113.5",
        "203.0.113.200",
        "198.51.100.1",
        "::ffff:203.0.113.6",
        "2001:db8::1",
        "203.0.113.7",
    ]
    .iter()
    .enumerate()
    {
        let new = NewSession {
            ip: Some((*ip).to_owned()),
            client_ids: vec!["portal".into()],
            ..by(if i % 2 == 0 { "alice" } else { "bob" })
        };
        let at = t0() + TimeDelta::minutes(i as i64);
        all.push(store.create_session("r", &new, at).await.unwrap().session);
    }
    let cut = t0() + TimeDelta::minutes(4);
    let request = EndSessions {
        ip: Some("203.0.113.0/24".into()),
        created_before: Some(cut),
        reason: Some("incident 7".into()),
        dry_run: true,
        ..Default::default()
    };
    let filter = SessionQuery {
        filters: crate::SessionFilters {
            ip: request.ip.clone(),
            created_before: request.created_before,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut want = expected(&all, &filter);
    assert_eq!(want.len(), 3, "the fixture has three matches");
    want.sort();

    let preview = store
        .end_sessions("r", &request, "ops", t0())
        .await
        .unwrap();
    let mut previewed = preview.ended.clone();
    previewed.sort();
    assert_eq!(previewed, want);
    assert!(preview.dry_run);
    assert_eq!(
        store.get_realm("r").await.unwrap().session_count,
        6,
        "a preview ends nothing"
    );
    let audited = store.audit_log(None, 100).await.unwrap().len();

    let done = store
        .end_sessions(
            "r",
            &EndSessions {
                dry_run: false,
                ..request.clone()
            },
            "ops",
            t0(),
        )
        .await
        .unwrap();
    let mut removed = done.ended.clone();
    removed.sort();
    assert_eq!(removed, want);
    assert_eq!(done.records_deleted, 3);
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 3);
    let left = store.query("r", &SessionQuery::default()).await.unwrap();
    assert!(left.results.iter().all(|s| !want.contains(&s.sid)));
    let range = SessionQuery {
        filters: crate::SessionFilters {
            ip: Some("203.0.113.0/24".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(store.query("r", &range).await.unwrap().total_count, 1);

    let log = store.audit_log(None, 100).await.unwrap();
    assert_eq!(log.len(), audited + 1, "one entry for the removal");
    let entry = &log[0].1;
    assert_eq!(entry.action, "end_sessions");
    assert!(entry.target.contains("ip=203.0.113.0/24"), "{entry:?}");
    assert!(
        entry.target.contains("created_before=2026-03-01T14:04:00Z"),
        "{entry:?}"
    );
    assert_eq!(entry.reason.as_deref(), Some("incident 7"));
    assert_eq!(backend.check(&store).await, Vec::<String>::new());
}

/// A malformed address filter, a blank one in a removal, and filters mixed with `sids` are
/// refused before anything happens.
pub async fn malformed_or_blank_address_filters_are_refused<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    realm(&store).await;
    store
        .create_session(
            "r",
            &NewSession {
                ip: Some("203.0.113.5".into()),
                ..by("alice")
            },
            t0(),
        )
        .await
        .unwrap();
    for bad in [
        "203.0.113.0/33",
        "203.0.113",
        "2001:db8::/129",
        "example.com",
    ] {
        let q = SessionQuery {
            filters: crate::SessionFilters {
                ip: Some(bad.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match store.query("r", &q).await {
            Err(SessionError::InvalidRequest(m)) => assert!(m.contains("CIDR"), "{m}"),
            other => panic!("query with ip {bad}: {other:?}"),
        }
        let r = EndSessions {
            ip: Some(bad.into()),
            ..Default::default()
        };
        assert!(matches!(
            store.end_sessions("r", &r, "ops", t0()).await,
            Err(SessionError::InvalidRequest(_))
        ));
    }
    // An empty listing filter is no filter; in a removal it is refused, never "every session".
    let empty = SessionQuery {
        filters: crate::SessionFilters {
            ip: Some(String::new()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(store.query("r", &empty).await.unwrap().total_count, 1);
    for blank in ["", " "] {
        let r = EndSessions {
            ip: Some(blank.into()),
            ..Default::default()
        };
        assert!(matches!(
            store.end_sessions("r", &r, "ops", t0()).await,
            Err(SessionError::InvalidRequest(_))
        ));
    }
    let mixed = EndSessions {
        sids: vec!["0b7c3f1e-0000-4000-8000-000000000000".into()],
        created_before: Some(t0()),
        ..Default::default()
    };
    assert!(matches!(
        store.end_sessions("r", &mixed, "ops", t0()).await,
        Err(SessionError::InvalidRequest(_))
    ));
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 1);
}

/// A removal of some of a subject's sessions (its subject filter narrowed by address or
/// creation time) revokes the tokens of the sessions it ends, never the subject's tokens issued
/// under no session: those go only with every session of the subject.
pub async fn a_narrowed_removal_leaves_the_subjects_offline_tokens<B: Backend>(backend: &B) {
    use crate::{GrantKind, NewGrant};
    let (store, _at) = fresh(backend).await;
    realm(&store).await;
    let inside = store
        .create_session(
            "r",
            &NewSession {
                ip: Some("203.0.113.5".into()),
                ..by("alice")
            },
            t0(),
        )
        .await
        .unwrap();
    let outside = store
        .create_session(
            "r",
            &NewSession {
                ip: Some("198.51.100.1".into()),
                ..by("alice")
            },
            t0(),
        )
        .await
        .unwrap();
    let token = |sid: Option<&str>, text: &str| NewGrant {
        kind: GrantKind::RefreshToken,
        subject_id: "alice".into(),
        sid: sid.map(Into::into),
        client_id: "crm".into(),
        expires_at: t0() + TimeDelta::days(1),
        token: Some(text.into()),
        scopes: vec!["openid".into()],
    };
    for g in [
        token(Some(&inside.session.sid), "alice-inside-session-01"),
        token(Some(&outside.session.sid), "alice-outside-session-1"),
        token(None, "alice-offline-token-0001"),
    ] {
        store.create_grant("r", &g, t0()).await.unwrap();
    }
    for (request, filter) in [
        (
            EndSessions {
                subject_id: Some("alice".into()),
                ip: Some("203.0.113.0/24".into()),
                ..Default::default()
            },
            "subject and address",
        ),
        (
            EndSessions {
                subject_id: Some("alice".into()),
                created_before: Some(t0() + TimeDelta::seconds(1)),
                ..Default::default()
            },
            "subject and creation time",
        ),
    ] {
        let preview = store
            .end_sessions(
                "r",
                &EndSessions {
                    dry_run: true,
                    ..request.clone()
                },
                "ops",
                t0(),
            )
            .await
            .unwrap();
        let ended = store
            .end_sessions("r", &request, "ops", t0())
            .await
            .unwrap();
        assert_eq!(
            preview.tokens_revoked, ended.tokens_revoked,
            "{filter}: the preview says what happens"
        );
        let live = async |t: &str| store.introspect("r", t, t0()).await.unwrap().is_some();
        assert!(
            live("alice-offline-token-0001").await,
            "{filter}: offline token kept"
        );
        assert!(
            !live("alice-inside-session-01").await,
            "{filter}: ended session's token revoked"
        );
    }
    // The creation-time removal also ended the session outside the range, with its token.
    let live = async |t: &str| store.introspect("r", t, t0()).await.unwrap().is_some();
    assert!(!live("alice-outside-session-1").await);
    assert!(live("alice-offline-token-0001").await);
}
