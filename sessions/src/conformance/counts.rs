//! Counts are exact: whatever happened before, every count the store answers (a realm's and a
//! client's sessions, a query's `total_count`, deliveries per status) equals a recount from
//! listing everything.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use super::{check_property, fresh, Backend};
use crate::store::{DueCursor, SessionStore};
use crate::{
    AttemptResult, ClientRegistration, Delivery, DeliveryStatus, EndAllSessions, EndSessions,
    GrantKind, GrantOwner, NewGrant, NewSession, QuotaPolicy, RealmSettingsUpdate, Session,
    SessionError, SessionQuery,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap()
}

/// Every session of the realm, paging through the default listing.
async fn all_sessions(store: &dyn SessionStore, realm: &str) -> Vec<Session> {
    let mut out = Vec::new();
    let mut q = SessionQuery {
        count: Some(1000),
        ..Default::default()
    };
    loop {
        let page = store.query(realm, &q).await.unwrap();
        out.extend(page.results);
        if !page.has_next {
            return out;
        }
        q.results_token = page.results_token;
    }
}

/// Every delivery of the realm (of one status).await, paging through the listing; and the counts the
/// first page answered.
async fn all_deliveries(
    store: &dyn SessionStore,
    realm: &str,
    status: Option<DeliveryStatus>,
) -> (Vec<Delivery>, crate::DeliveryCounts) {
    let mut out = Vec::new();
    let mut before = None;
    let mut counts = None;
    loop {
        let page = store
            .list_deliveries(realm, status, before, 7)
            .await
            .unwrap();
        counts.get_or_insert(page.counts);
        out.extend(page.deliveries);
        match page.next_before {
            Some(b) => before = Some(b),
            None => return (out, counts.unwrap()),
        }
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn name_matches(session: &Session, query: &str) -> bool {
    let have = words(session.display_name.as_deref().unwrap_or(""));
    words(query)
        .iter()
        .all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
}

/// Every count the store answers about `realm` that does not equal a recount from listing
/// everything, described; empty when all are exact. `subjects`, `clients` and `names` are asked
/// about besides those the listed sessions carry (to check the counts of those with none).
pub async fn count_mismatches(
    store: &dyn SessionStore,
    realm: &str,
    subjects: &[&str],
    clients: &[&str],
    names: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |what: String, answered: u64, recounted: usize| {
        if answered != recounted as u64 {
            problems.push(format!(
                "{what} in realm '{realm}': answered {answered}, recounted {recounted}"
            ));
        }
    };
    let all = all_sessions(store, realm).await;
    let mut sids = BTreeSet::new();
    for s in &all {
        assert!(sids.insert(s.sid.clone()), "{} listed twice", s.sid);
    }
    let first = store.query(realm, &SessionQuery::default()).await.unwrap();
    check("query total_count".into(), first.total_count, all.len());
    check(
        "realm session_count".into(),
        store.get_realm(realm).await.unwrap().session_count,
        all.len(),
    );

    let mut subject_set: BTreeSet<String> = subjects.iter().map(|s| s.to_string()).collect();
    let mut client_set: BTreeSet<String> = clients.iter().map(|s| s.to_string()).collect();
    let mut name_set: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    for s in &all {
        subject_set.insert(s.subject_id.clone());
        client_set.extend(s.client_ids.iter().cloned());
        for w in words(s.display_name.as_deref().unwrap_or("")) {
            for len in 1..=w.chars().count().min(3) {
                name_set.insert(w.chars().take(len).collect());
            }
            name_set.insert(w);
        }
    }
    for subject in &subject_set {
        let q = SessionQuery {
            filters: crate::SessionFilters {
                subject_id: Some(subject.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let recount = all.iter().filter(|s| s.subject_id == *subject).count();
        check(
            format!("total_count of subject '{subject}'"),
            store.query(realm, &q).await.unwrap().total_count,
            recount,
        );
    }
    let registered: BTreeMap<String, u64> = store
        .list_clients(realm)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.client_id, c.session_count))
        .collect();
    for client in client_set.iter().chain(registered.keys()) {
        let recount = all.iter().filter(|s| s.client_ids.contains(client)).count();
        let q = SessionQuery {
            filters: crate::SessionFilters {
                client_id: Some(client.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        check(
            format!("total_count of client '{client}'"),
            store.query(realm, &q).await.unwrap().total_count,
            recount,
        );
        if let Some(listed) = registered.get(client) {
            check(
                format!("session_count of client '{client}' in its listing"),
                *listed,
                recount,
            );
            check(
                format!("session_count of client '{client}'"),
                store.get_client(realm, client).await.unwrap().session_count,
                recount,
            );
        }
    }
    for name in &name_set {
        let q = SessionQuery {
            filters: crate::SessionFilters {
                display_name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let recount = all.iter().filter(|s| name_matches(s, name)).count();
        check(
            format!("total_count of name prefix '{name}'"),
            store.query(realm, &q).await.unwrap().total_count,
            recount,
        );
    }

    let (deliveries, counts) = all_deliveries(store, realm, None).await;
    let mut ids = BTreeSet::new();
    for d in &deliveries {
        assert!(ids.insert(d.id), "delivery {} listed twice", d.id);
    }
    for (status, answered) in [
        (DeliveryStatus::Pending, counts.pending),
        (DeliveryStatus::Delivered, counts.delivered),
        (DeliveryStatus::Failed, counts.failed),
    ] {
        let recount = deliveries.iter().filter(|d| d.status == status).count();
        check(format!("{} deliveries", status.as_str()), answered, recount);
        let (of_status, _) = all_deliveries(store, realm, Some(status)).await;
        check(
            format!("{} deliveries listed by status", status.as_str()),
            of_status.len() as u64,
            recount,
        );
        assert!(
            of_status.iter().all(|d| d.status == status),
            "a delivery listed under the wrong status"
        );
    }

    // A session's grants are among its subject's.
    for s in &all {
        let now = s.created_at;
        let of_session = store
            .list_grants(realm, &GrantOwner::Session(s.sid.clone()), now)
            .await
            .unwrap();
        let of_subject: BTreeSet<String> = store
            .list_grants(realm, &GrantOwner::Subject(s.subject_id.clone()), now)
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.grant_id)
            .collect();
        for g in of_session {
            if g.sid.as_deref() != Some(s.sid.as_str()) || !of_subject.contains(&g.grant_id) {
                problems.push(format!(
                    "grant {} listed for session {} in realm '{realm}' but not as its subject's",
                    g.grant_id, s.sid
                ));
            }
        }
    }
    problems
}

const REALMS: &[&str] = &["r", "q"];
const SUBJECTS: &[&str] = &["alice", "bob", "carol"];
const NAMES: &[Option<&str>] = &[
    Some("Alice Smith"),
    Some("alina Smyth"),
    Some("Bob Jones"),
    Some("Émile O'Neil"),
    None,
];
const CLIENTS: &[&str] = &["crm", "mail", "wiki"];

/// Realm "r" evicts the oldest session beyond two per subject and notifies on expiry; realm "q"
/// denies a fourth. Both have three clients, two with back-channel URIs.
async fn setup_realms(store: &dyn SessionStore) {
    let r = RealmSettingsUpdate {
        idle_timeout_secs: Some(60),
        latest_access_update_interval_secs: Some(0),
        max_sessions_per_subject: Some(Some(2)),
        quota_policy: Some(QuotaPolicy::EvictOldest),
        backchannel_logout_on_expiry: Some(true),
        max_grant_lifetime_secs: Some(300),
        ..Default::default()
    };
    let q = RealmSettingsUpdate {
        idle_timeout_secs: Some(120),
        absolute_lifetime_secs: Some(200),
        latest_access_update_interval_secs: Some(0),
        max_sessions_per_subject: Some(Some(3)),
        ..Default::default()
    };
    store.put_realm("r", &r, "test", t0()).await.unwrap();
    store.put_realm("q", &q, "test", t0()).await.unwrap();
    for realm in REALMS {
        for client in CLIENTS {
            let reg = ClientRegistration {
                backchannel_logout_uri: (*client != "wiki")
                    .then(|| format!("http://127.0.0.1:9/{client}")),
                ..Default::default()
            };
            store
                .put_client(realm, client, &reg, "test", t0())
                .await
                .unwrap();
        }
    }
}

async fn mismatches_everywhere(store: &dyn SessionStore) -> Vec<String> {
    let names: Vec<&str> = ["al", "smi", "o", "neil", "z"].into();
    let mut problems = Vec::new();
    for realm in REALMS {
        problems.extend(count_mismatches(store, realm, SUBJECTS, CLIENTS, &names).await);
    }
    problems
}

/// One step of a random history. Indexes pick among what exists (modulo its number).
#[derive(Clone, Debug)]
enum Op {
    Create {
        realm: usize,
        subject: usize,
        name: usize,
        clients: Vec<usize>,
    },
    Refresh(usize),
    Logout(usize),
    AddClient(usize, usize),
    RemoveSids {
        sessions: Vec<usize>,
        dry_run: bool,
        keep_record: bool,
    },
    RemoveSubject {
        realm: usize,
        subject: usize,
        client: Option<usize>,
        dry_run: bool,
        keep_record: bool,
    },
    RemoveAll {
        realm: usize,
        dry_run: bool,
    },
    Reap(usize),
    Grant {
        realm: usize,
        subject: usize,
        session: Option<usize>,
        client: usize,
        kind: usize,
        lifetime: i64,
    },
    RevokeToken(usize),
    RevokeSubjectGrants {
        realm: usize,
        subject: usize,
        client: Option<usize>,
    },
    Attempt(usize, u8),
    RetryNow(usize),
    Purge,
    Advance(i64),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    use proptest::bool::weighted;
    use proptest::collection::vec;
    use proptest::option::of;
    let realm = || 0..REALMS.len();
    let subject = || 0..SUBJECTS.len();
    let client = || 0..CLIENTS.len();
    let pick = || 0..64usize;
    let create = (realm(), subject(), 0..NAMES.len(), vec(client(), 0..3)).prop_map(
        |(realm, subject, name, clients)| Op::Create {
            realm,
            subject,
            name,
            clients,
        },
    );
    let remove_sids = (vec(pick(), 1..4), any::<bool>(), weighted(0.2)).prop_map(
        |(sessions, dry_run, keep_record)| Op::RemoveSids {
            sessions,
            dry_run,
            keep_record,
        },
    );
    let remove_subject = (
        realm(),
        subject(),
        of(client()),
        any::<bool>(),
        weighted(0.2),
    )
        .prop_map(
            |(realm, subject, client, dry_run, keep_record)| Op::RemoveSubject {
                realm,
                subject,
                client,
                dry_run,
                keep_record,
            },
        );
    let remove_all =
        (realm(), weighted(0.3)).prop_map(|(realm, dry_run)| Op::RemoveAll { realm, dry_run });
    let grant = (
        realm(),
        subject(),
        of(pick()),
        client(),
        0..GrantKind::ALL.len(),
        10..400i64,
    )
        .prop_map(
            |(realm, subject, session, client, kind, lifetime)| Op::Grant {
                realm,
                subject,
                session,
                client,
                kind,
                lifetime,
            },
        );
    let revoke_subject = (realm(), subject(), of(client())).prop_map(|(realm, subject, client)| {
        Op::RevokeSubjectGrants {
            realm,
            subject,
            client,
        }
    });
    prop_oneof![
        5 => create,
        2 => pick().prop_map(Op::Refresh),
        1 => pick().prop_map(Op::Logout),
        1 => (pick(), client()).prop_map(|(s, c)| Op::AddClient(s, c)),
        2 => remove_sids,
        1 => remove_subject,
        1 => remove_all,
        1 => (1..5usize).prop_map(Op::Reap),
        3 => grant,
        1 => pick().prop_map(Op::RevokeToken),
        1 => revoke_subject,
        4 => (pick(), 0..3u8).prop_map(|(d, how)| Op::Attempt(d, how)),
        1 => pick().prop_map(Op::RetryNow),
        1 => Just(Op::Purge),
        2 => (1..25i64).prop_map(Op::Advance),
    ]
}

/// What the history has made so far, to pick from.
#[derive(Default)]
struct History {
    /// (realm, subject, sid, token) of every session created.
    sessions: Vec<(&'static str, &'static str, String, String)>,
    /// (realm, token) of every token grant created.
    tokens: Vec<(&'static str, String)>,
}

fn expect_ok_or<T>(result: crate::Result<T>, allowed: fn(&SessionError) -> bool, what: &Op) {
    if let Err(e) = result {
        assert!(allowed(&e), "{what:?}: {e:?}");
    }
}

async fn apply(store: &dyn SessionStore, op: &Op, now: &mut DateTime<Utc>, history: &mut History) {
    let pick = |i: usize, len: usize| (len > 0).then(|| i % len);
    match op {
        Op::Create {
            realm,
            subject,
            name,
            clients,
        } => {
            let new = NewSession {
                subject_id: SUBJECTS[*subject].into(),
                display_name: NAMES[*name].map(Into::into),
                client_ids: clients.iter().map(|c| CLIENTS[*c].to_string()).collect(),
                ..Default::default()
            };
            match store.create_session(REALMS[*realm], &new, *now).await {
                Ok(c) => history.sessions.push((
                    REALMS[*realm],
                    SUBJECTS[*subject],
                    c.session.sid,
                    c.token,
                )),
                Err(e) => assert!(matches!(e, SessionError::QuotaExceeded(_)), "{op:?}: {e:?}"),
            }
        }
        Op::Refresh(i) => {
            if let Some(i) = pick(*i, history.sessions.len()) {
                let (realm, _, _, token) = &history.sessions[i];
                store.validate(realm, token, true, *now).await.unwrap();
            }
        }
        Op::Logout(i) => {
            if let Some(i) = pick(*i, history.sessions.len()) {
                let (realm, _, _, token) = &history.sessions[i];
                store.logout(realm, token, *now).await.unwrap();
            }
        }
        Op::AddClient(i, client) => {
            if let Some(i) = pick(*i, history.sessions.len()) {
                let (realm, _, sid, _) = &history.sessions[i];
                let added = store.add_client(realm, sid, CLIENTS[*client]).await;
                expect_ok_or(added, |e| matches!(e, SessionError::SessionNotFound(_)), op);
            }
        }
        Op::RemoveSids {
            sessions,
            dry_run,
            keep_record,
        } => {
            if history.sessions.is_empty() {
                return;
            }
            let chosen: Vec<_> = sessions
                .iter()
                .map(|i| &history.sessions[i % history.sessions.len()])
                .collect();
            let request = EndSessions {
                sids: chosen.iter().map(|(_, _, sid, _)| sid.clone()).collect(),
                dry_run: *dry_run,
                remove_server_side_session: !keep_record,
                ..Default::default()
            };
            store
                .end_sessions(chosen[0].0, &request, "test", *now)
                .await
                .unwrap();
        }
        Op::RemoveSubject {
            realm,
            subject,
            client,
            dry_run,
            keep_record,
        } => {
            let request = EndSessions {
                subject_id: Some(SUBJECTS[*subject].into()),
                client_ids: client.map(|c| vec![CLIENTS[c].to_string()]),
                dry_run: *dry_run,
                remove_server_side_session: !keep_record,
                ..Default::default()
            };
            store
                .end_sessions(REALMS[*realm], &request, "test", *now)
                .await
                .unwrap();
        }
        Op::RemoveAll { realm, dry_run } => {
            let request = EndAllSessions {
                dry_run: *dry_run,
                ..Default::default()
            };
            store
                .end_all_sessions(REALMS[*realm], &request, "test", *now)
                .await
                .unwrap();
        }
        Op::Reap(batch) => {
            let reaped = store.reap_expired(*now, *batch).await.unwrap();
            assert!(reaped <= *batch, "{op:?}: reaped {reaped}");
        }
        Op::Grant {
            realm,
            subject,
            session,
            client,
            kind,
            lifetime,
        } => {
            let kind = GrantKind::ALL[*kind];
            // A grant under a session names that session's realm and subject.
            let (realm, subject, sid) = match session.and_then(|i| pick(i, history.sessions.len()))
            {
                Some(i) => {
                    let (realm, subject, sid, _) = &history.sessions[i];
                    (*realm, *subject, Some(sid.clone()))
                }
                None => (REALMS[*realm], SUBJECTS[*subject], None),
            };
            let token = kind
                .is_token()
                .then(|| format!("conformance-token-{:06}", history.tokens.len()));
            let grant = NewGrant {
                kind,
                subject_id: subject.into(),
                sid,
                client_id: CLIENTS[*client].into(),
                expires_at: *now + TimeDelta::seconds(*lifetime),
                token: token.clone(),
                scopes: vec!["openid".into()],
            };
            match store.create_grant(realm, &grant, *now).await {
                Ok(_) => history.tokens.extend(token.map(|t| (realm, t))),
                // Its session ended (or expired) already.
                Err(e) => assert!(
                    matches!(e, SessionError::SessionNotFound(_)) && grant.sid.is_some(),
                    "{op:?}: {e:?}"
                ),
            }
        }
        Op::RevokeToken(i) => {
            if let Some(i) = pick(*i, history.tokens.len()) {
                let (realm, token) = &history.tokens[i];
                store
                    .revoke_token(realm, token, "test", *now)
                    .await
                    .unwrap();
            }
        }
        Op::RevokeSubjectGrants {
            realm,
            subject,
            client,
        } => {
            let scope = client.map(|c| vec![CLIENTS[c].to_string()]);
            store
                .revoke_subject_grants(
                    REALMS[*realm],
                    SUBJECTS[*subject],
                    scope.as_deref(),
                    None,
                    "test",
                    *now,
                )
                .await
                .unwrap();
        }
        Op::Attempt(i, how) => {
            let mut cursor = DueCursor::default();
            let due = store
                .due_deliveries(*now, 64, usize::MAX, &mut cursor, &|_, _, _| false)
                .await
                .unwrap();
            if let Some(i) = pick(*i, due.len()) {
                let result = match how {
                    0 => AttemptResult::Delivered,
                    1 => AttemptResult::Retry {
                        at: *now + TimeDelta::seconds(5),
                        error: "HTTP 503".into(),
                    },
                    _ => AttemptResult::GiveUp {
                        error: "refused".into(),
                    },
                };
                let d = store
                    .record_attempt(&due[i], "jti", &result, *now)
                    .await
                    .unwrap();
                assert_eq!(d.id, due[i].id);
            }
        }
        Op::RetryNow(i) => {
            for realm in REALMS {
                let (failed, _) = all_deliveries(store, realm, Some(DeliveryStatus::Failed)).await;
                if let Some(i) = pick(*i, failed.len()) {
                    let d = store
                        .retry_delivery(realm, failed[i].id, "test", *now)
                        .await
                        .unwrap();
                    assert_eq!(d.status, DeliveryStatus::Pending);
                }
            }
        }
        Op::Purge => {
            store
                .purge_delivered(*now - TimeDelta::seconds(30), 3)
                .await
                .unwrap();
        }
        Op::Advance(secs) => *now += TimeDelta::seconds(*secs),
    }
}

/// After random creates, refreshes, logouts, removals (by sids, by subject, realm-wide, dry runs
/// included), reaps, grant creations and revocations, and delivery attempts, every count equals
/// a recount after every step, and the backend's own check finds nothing (32 generated cases).
pub async fn counts_stay_exact_under_random_operations<B: Backend>(backend: &B) {
    check_property(
        32,
        file!(),
        proptest::collection::vec(op_strategy(), 1..60),
        |ops| async move {
            let (store, _at) = fresh(backend).await;
            setup_realms(&store).await;
            let mut now = t0();
            let mut history = History::default();
            for (step, op) in ops.iter().enumerate() {
                apply(&store, op, &mut now, &mut history).await;
                let problems = mismatches_everywhere(&store).await;
                prop_assert!(
                    problems.is_empty(),
                    "after step {} ({:?}): {:#?}",
                    step,
                    op,
                    problems
                );
            }
            let problems = backend.check(&store).await;
            prop_assert!(problems.is_empty(), "backend check: {:#?}", problems);
            Ok(())
        },
    );
}

/// A bit of everything, in a fixed order (the workload the sled store's own consistency check is
/// tested on): sessions with names, clients and properties, refreshes, grants under sessions and
/// offline, logouts, removals, evictions, expiry, deliveries in every status, a purge. Every
/// count is exact afterwards, and the backend's own check finds nothing.
pub async fn a_mixed_workload_keeps_every_count_exact<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    let at = |s: i64| t0() + TimeDelta::seconds(s);
    let settings = RealmSettingsUpdate {
        idle_timeout_secs: Some(600),
        max_sessions_per_subject: Some(Some(3)),
        quota_policy: Some(QuotaPolicy::EvictOldest),
        property_whitelist: Some(vec!["theme".into()]),
        backchannel_logout_on_expiry: Some(true),
        ..Default::default()
    };
    for realm in ["r", "other"] {
        store.put_realm(realm, &settings, "t", t0()).await.unwrap();
        let reg = ClientRegistration {
            backchannel_logout_uri: Some("http://127.0.0.1:9/logout".into()),
            ..Default::default()
        };
        store
            .put_client(realm, "crm", &reg, "t", t0())
            .await
            .unwrap();
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
        let c = store.create_session(realm, &new, at(i)).await.unwrap();
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
                t0(),
            )
            .await
            .unwrap();
        store
            .create_grant(realm, &grant(GrantKind::RefreshToken, None, offline), t0())
            .await
            .unwrap();
        store
            .create_grant(realm, &grant(GrantKind::Consent, None, None), t0())
            .await
            .unwrap();
        created.push((realm, c));
    }
    let (_, last) = &created[29];
    store
        .add_client("r", &last.session.sid, "late")
        .await
        .unwrap();
    let theme = BTreeMap::from([("theme".to_string(), "dark".to_string())]);
    store
        .set_properties("r", &last.token, &theme, at(40))
        .await
        .unwrap();
    store
        .validate("r", &created[28].1.token, true, at(200))
        .await
        .unwrap();
    store
        .logout("r", &created[26].1.token, at(41))
        .await
        .unwrap();
    let keep_session = EndSessions {
        sids: vec![created[24].1.session.sid.clone()],
        remove_server_side_session: false,
        ..Default::default()
    };
    store
        .end_sessions("r", &keep_session, "t", at(42))
        .await
        .unwrap();
    let by_subject = EndSessions {
        subject_id: Some("user6".into()),
        ..Default::default()
    };
    store
        .end_sessions("r", &by_subject, "t", at(43))
        .await
        .unwrap();
    store
        .revoke_token("r", "offline-token-number-8", "t", at(44))
        .await
        .unwrap();
    // Everything created at t0 + 0..30 s idles out at 600..630 s but the one refreshed at 200 s.
    assert_eq!(store.reap_expired(at(615), 4).await.unwrap(), 4);
    let mut cursor = DueCursor::default();
    let due = store
        .due_deliveries(at(700), 100, 100, &mut cursor, &|_, _, _| false)
        .await
        .unwrap();
    assert!(due.len() >= 3, "{} deliveries due", due.len());
    store
        .record_attempt(&due[0], "jti-0", &AttemptResult::Delivered, at(700))
        .await
        .unwrap();
    store
        .record_attempt(&due[1], "jti-1", &AttemptResult::Delivered, at(700))
        .await
        .unwrap();
    let give_up = AttemptResult::GiveUp {
        error: "refused".into(),
    };
    store
        .record_attempt(&due[2], "jti-2", &give_up, at(700))
        .await
        .unwrap();
    assert_eq!(store.purge_delivered(at(1000), 1).await.unwrap(), 1);

    assert!(store.get_realm("r").await.unwrap().session_count > 0);
    for realm in ["r", "other"] {
        let problems = count_mismatches(&store, realm, &["user6"], &["late"], &["person2"]).await;
        assert_eq!(problems, Vec::<String>::new());
    }
    let counts = store
        .list_deliveries("r", None, None, 1)
        .await
        .unwrap()
        .counts;
    let other = store
        .list_deliveries("other", None, None, 1)
        .await
        .unwrap()
        .counts;
    assert_eq!(
        counts.delivered + other.delivered,
        1,
        "one delivered, one purged"
    );
    assert_eq!(counts.failed + other.failed, 1);
    assert_eq!(backend.check(&store).await, Vec::<String>::new());
}
