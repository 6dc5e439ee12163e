//! What ending a session takes with it, on a real sled directory: token grants within the client
//! scope, the subject's consents, and back-channel deliveries queued in the outbox, which survive
//! reopening the store.

mod common;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sessions::store::{DueCursor, SessionStore, SledStore};
use sessions::{
    AttemptResult, ClientRegistration, DeliveryStatus, GrantKind, GrantOwner, NewGrant, NewSession,
    RealmSettingsUpdate, RemoveAllSessions, RemoveSessions, SessionError,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A realm with three clients: two with back-channel URIs, one without.
fn setup(store: &SledStore, realm: &str, update: RealmSettingsUpdate) {
    store.put_realm(realm, &update, "test", t0()).unwrap();
    for (id, uri) in [
        ("crm", Some("http://127.0.0.1:9/crm")),
        ("mail", Some("http://127.0.0.1:9/mail")),
        ("wiki", None),
    ] {
        let reg = ClientRegistration {
            backchannel_logout_uri: uri.map(Into::into),
            ..Default::default()
        };
        store.put_client(realm, id, &reg, "test", t0()).unwrap();
    }
}

fn session(store: &SledStore, realm: &str, subject: &str) -> String {
    let new = NewSession {
        subject_id: subject.into(),
        client_ids: vec!["crm".into(), "mail".into(), "wiki".into()],
        ..Default::default()
    };
    store.create_session(realm, &new, t0()).unwrap().session.sid
}

fn grant(kind: GrantKind, subject: &str, sid: Option<&str>, client: &str, token: &str) -> NewGrant {
    NewGrant {
        kind,
        subject_id: subject.into(),
        sid: sid.map(Into::into),
        client_id: client.into(),
        expires_at: t0() + TimeDelta::days(30),
        token: kind.is_token().then(|| token.to_owned()),
        scopes: vec!["openid".into(), "email".into()],
    }
}

/// Every due delivery.
fn due(store: &SledStore, now: DateTime<Utc>, limit: usize) -> Vec<sessions::Delivery> {
    let mut cursor = DueCursor::default();
    store
        .due_deliveries(now, limit, usize::MAX, &mut cursor, &|_, _, _| false)
        .unwrap()
}

fn active(store: &SledStore, token: &str) -> bool {
    store.introspect("r", token, t0()).unwrap().is_some()
}

#[test]
fn a_client_scoped_revocation_takes_only_that_clients_tokens_and_consents() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    setup(&store, "r", Default::default());
    let sid = session(&store, "r", "alice");
    let other = session(&store, "r", "bob");
    for g in [
        grant(
            GrantKind::RefreshToken,
            "alice",
            Some(&sid),
            "crm",
            "alice-crm-refresh-0001",
        ),
        grant(
            GrantKind::AccessToken,
            "alice",
            Some(&sid),
            "crm",
            "alice-crm-access-00001",
        ),
        grant(
            GrantKind::RefreshToken,
            "alice",
            Some(&sid),
            "mail",
            "alice-mail-refresh-001",
        ),
        grant(GrantKind::Consent, "alice", None, "crm", ""),
        grant(GrantKind::Consent, "alice", None, "mail", ""),
        grant(GrantKind::Consent, "bob", None, "crm", ""),
        grant(
            GrantKind::RefreshToken,
            "bob",
            Some(&other),
            "crm",
            "bob-crm-refresh-000001",
        ),
    ] {
        store.create_grant("r", &g, t0()).unwrap();
    }
    assert!(active(&store, "alice-crm-refresh-0001"));
    let request = RemoveSessions {
        sids: vec![sid.clone()],
        client_ids: Some(vec!["crm".into()]),
        dry_run: true,
        ..Default::default()
    };
    let dry = store.remove("r", &request, "admin", t0()).unwrap();
    assert_eq!(
        (
            dry.sessions_removed,
            dry.tokens_revoked,
            dry.consents_revoked,
            dry.clients_notified
        ),
        (1, 2, 1, 1)
    );
    assert!(
        active(&store, "alice-crm-refresh-0001"),
        "a dry run changes nothing"
    );
    assert_eq!(
        store
            .list_deliveries("r", None, None, 10)
            .unwrap()
            .deliveries
            .len(),
        0
    );

    let done = store
        .remove(
            "r",
            &RemoveSessions {
                dry_run: false,
                ..request
            },
            "admin",
            t0(),
        )
        .unwrap();
    assert_eq!(
        (
            done.sessions_removed,
            done.tokens_revoked,
            done.consents_revoked,
            done.clients_notified
        ),
        (1, 2, 1, 1)
    );
    assert!(!active(&store, "alice-crm-refresh-0001"));
    assert!(!active(&store, "alice-crm-access-00001"));
    assert!(
        active(&store, "alice-mail-refresh-001"),
        "outside the client scope"
    );
    assert!(
        active(&store, "bob-crm-refresh-000001"),
        "another subject's session"
    );
    let alice: Vec<_> = store
        .list_grants("r", &GrantOwner::Subject("alice".into()), t0())
        .unwrap()
        .into_iter()
        .map(|g| (g.kind, g.client_id))
        .collect();
    assert_eq!(
        alice.len(),
        2,
        "the mail refresh token and the mail consent survive: {alice:?}"
    );
    assert!(alice.contains(&(GrantKind::Consent, "mail".into())));
    let bob = store
        .list_grants("r", &GrantOwner::Subject("bob".into()), t0())
        .unwrap();
    assert_eq!(bob.len(), 2, "bob's consent and token survive");

    let page = store.list_deliveries("r", None, None, 10).unwrap();
    assert_eq!(page.counts.pending, 1);
    let d = &page.deliveries[0];
    assert_eq!(
        (d.client_id.as_str(), d.subject_id.as_str()),
        ("crm", "alice")
    );
    assert_eq!(
        (d.sid.as_str(), d.reason.as_str()),
        (sid.as_str(), "revoked")
    );
    assert_eq!(d.uri, "http://127.0.0.1:9/crm");
}

#[test]
fn grants_are_checked_against_their_session() {
    let store = SledStore::temporary().unwrap();
    setup(&store, "r", Default::default());
    let sid = session(&store, "r", "alice");
    let g = |kind, subject, sid: Option<&str>, token| grant(kind, subject, sid, "crm", token);
    let err = |g: NewGrant| store.create_grant("r", &g, t0()).unwrap_err();
    assert!(matches!(
        err(g(
            GrantKind::RefreshToken,
            "bob",
            Some(&sid),
            "bob-token-000000001"
        )),
        SessionError::InvalidRequest(_)
    ));
    let gone = "00000000-0000-4000-8000-000000000000";
    assert!(matches!(
        err(g(
            GrantKind::RefreshToken,
            "alice",
            Some(gone),
            "alice-token-0000001"
        )),
        SessionError::SessionNotFound(_)
    ));
    let mut consent = g(GrantKind::Consent, "alice", None, "");
    consent.token = Some("a-consent-has-no-token".into());
    assert!(matches!(err(consent), SessionError::InvalidRequest(_)));
    let mut no_token = g(GrantKind::AuthorizationCode, "alice", None, "");
    no_token.token = None;
    assert!(matches!(err(no_token), SessionError::InvalidRequest(_)));
    let ok = g(
        GrantKind::RefreshToken,
        "alice",
        Some(&sid),
        "alice-token-0000001",
    );
    store.create_grant("r", &ok, t0()).unwrap();
    assert!(matches!(err(ok.clone()), SessionError::Conflict(_)));
    let mut expired = ok;
    expired.expires_at = t0() - TimeDelta::seconds(1);
    expired.token = Some("alice-token-0000002".into());
    assert!(matches!(err(expired), SessionError::InvalidRequest(_)));
    assert!(matches!(
        store.introspect("nope", "x", t0()),
        Err(SessionError::RealmNotFound(_))
    ));
}

#[test]
fn logout_realm_sign_out_and_expiry_queue_notifications_that_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let notify_on_expiry = RealmSettingsUpdate {
        idle_timeout_secs: Some(60),
        backchannel_logout_on_expiry: Some(true),
        ..Default::default()
    };
    setup(&store, "r", notify_on_expiry);
    setup(
        &store,
        "quiet",
        RealmSettingsUpdate {
            idle_timeout_secs: Some(60),
            ..Default::default()
        },
    );
    let new = NewSession {
        subject_id: "carol".into(),
        client_ids: vec!["crm".into()],
        ..Default::default()
    };
    let created = store.create_session("r", &new, t0()).unwrap();
    store.create_session("r", &new, t0()).unwrap();
    store.create_session("quiet", &new, t0()).unwrap();
    assert!(store.logout("r", &created.token, t0()).unwrap());
    let expired = store
        .reap_expired(t0() + TimeDelta::seconds(61), 100)
        .unwrap();
    assert_eq!(expired, 2);
    session(&store, "r", "dave");
    let all = store
        .remove_all("r", &RemoveAllSessions::default(), "admin", t0())
        .unwrap();
    assert_eq!(all.clients_notified, 2, "crm and mail; wiki has no URI");
    let reasons: Vec<String> = store
        .list_deliveries("r", Some(DeliveryStatus::Pending), None, 10)
        .unwrap()
        .deliveries
        .into_iter()
        .map(|d| d.reason)
        .collect();
    assert_eq!(
        reasons,
        ["realm_sign_out", "realm_sign_out", "expired", "logout"]
    );
    assert_eq!(
        store
            .list_deliveries("quiet", None, None, 10)
            .unwrap()
            .counts
            .pending,
        0,
        "expiry notifies only where the realm asks for it"
    );
    drop(store);

    let store = common::reopen(dir.path());
    let pending = due(&store, t0() + TimeDelta::seconds(61), 100);
    assert_eq!(
        pending.len(),
        4,
        "the expiry notification is due when the session expired"
    );
    assert_eq!(due(&store, t0(), 100).len(), 3);
    assert!(due(&store, t0() - TimeDelta::seconds(1), 100).is_empty());
}

#[test]
fn attempts_move_deliveries_between_statuses_and_retry_now_requeues_a_failed_one() {
    let store = SledStore::temporary().unwrap();
    setup(&store, "r", Default::default());
    let sid = session(&store, "r", "erin");
    let request = RemoveSessions {
        sids: vec![sid],
        ..Default::default()
    };
    store.remove("r", &request, "admin", t0()).unwrap();
    let queued = due(&store, t0(), 10);
    let (a, b) = (queued[0].id, queued[1].id);
    let (first_a, first_b) = (queued[0].clone(), queued[1].clone());
    let later = t0() + TimeDelta::seconds(5);
    let retry = AttemptResult::Retry {
        at: later,
        error: "HTTP 503".into(),
    };
    let d = store
        .record_attempt(&first_a, "jti-1", &retry, t0())
        .unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 1));
    store
        .record_attempt(&first_b, "jti-2", &AttemptResult::Delivered, t0())
        .unwrap();
    assert!(due(&store, t0(), 10).is_empty());
    assert_eq!(due(&store, later, 10)[0].id, a);

    let give_up = AttemptResult::GiveUp {
        error: "connection refused".into(),
    };
    let second_a = due(&store, later, 10).remove(0);
    store
        .record_attempt(&second_a, "jti-3", &give_up, later)
        .unwrap();
    let page = store
        .list_deliveries("r", Some(DeliveryStatus::Failed), None, 10)
        .unwrap();
    assert_eq!(
        (
            page.counts.pending,
            page.counts.delivered,
            page.counts.failed
        ),
        (0, 1, 1)
    );
    assert_eq!(
        page.deliveries[0].last_error.as_deref(),
        Some("connection refused")
    );
    assert!(due(&store, later + TimeDelta::days(1), 10).is_empty());

    let again = store.retry_delivery("r", a, "admin", later).unwrap();
    assert_eq!((again.status, again.attempts), (DeliveryStatus::Pending, 2));
    assert_eq!(again.window_attempts, 0, "retry now restarts the backoff");
    assert_eq!(due(&store, later, 10)[0].id, a);
    assert!(matches!(
        store.retry_delivery("r", b, "admin", later),
        Err(SessionError::Conflict(_))
    ));
    assert!(matches!(
        store.retry_delivery("r", 999_999, "admin", later),
        Err(SessionError::DeliveryNotFound(_))
    ));

    assert_eq!(
        store.purge_delivered(t0(), 10).unwrap(),
        0,
        "queued at t0, kept"
    );
    let first = store.list_deliveries("r", None, None, 1).unwrap();
    let next = first.next_before.expect("a second page");
    let second = store.list_deliveries("r", None, Some(next), 1).unwrap();
    assert_ne!(first.deliveries[0].id, second.deliveries[0].id);
    assert_eq!(second.next_before, None);

    assert_eq!(
        store.purge_delivered(later, 10).unwrap(),
        1,
        "only the delivered one"
    );
    let left = store.list_deliveries("r", None, None, 10).unwrap();
    assert_eq!((left.counts.delivered, left.counts.pending), (0, 1));
    assert_eq!(left.deliveries.len(), 1);
}

#[test]
fn the_due_scan_passes_over_busy_clients() {
    let store = SledStore::temporary().unwrap();
    setup(&store, "r", Default::default());
    for i in 0..5 {
        let sid = session(&store, "r", &format!("user{i}"));
        let request = RemoveSessions {
            sids: vec![sid],
            ..Default::default()
        };
        store.remove("r", &request, "admin", t0()).unwrap();
    }
    // Five deliveries each for crm and mail, interleaved; crm is busy.
    let busy = |_: &str, client: &str, _: u64| client == "crm";
    let mut cursor = DueCursor::default();
    let due = store
        .due_deliveries(t0(), 3, 10, &mut cursor, &busy)
        .unwrap();
    assert_eq!(due.len(), 3);
    assert!(due.iter().all(|d| d.client_id == "mail"));
    let all = due_all(&store, t0());
    assert_eq!(all.len(), 10);
    for client in ["crm", "mail"] {
        let ids: Vec<u64> = all
            .iter()
            .filter(|d| d.client_id == client)
            .map(|d| d.id)
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "each client's queue soonest (then oldest) first"
        );
    }
}

fn due_all(store: &SledStore, now: DateTime<Utc>) -> Vec<sessions::Delivery> {
    due(store, now, usize::MAX)
}

#[test]
fn a_busy_clients_backlog_costs_a_scan_no_more_than_its_queue_head_and_clients_take_turns() {
    let store = SledStore::temporary().unwrap();
    setup(&store, "r", Default::default());
    // crm and mail: 300 sessions joined to both, ended first; wiki gets a back-channel URI later
    // and one session, ended last, so its one delivery sits behind 600 others in time.
    for i in 0..300 {
        session(&store, "r", &format!("user{i}"));
    }
    let all = RemoveAllSessions::default();
    store.remove_all("r", &all, "admin", t0()).unwrap();
    let wiki = ClientRegistration {
        backchannel_logout_uri: Some("http://127.0.0.1:9/wiki".into()),
        ..Default::default()
    };
    store.put_client("r", "wiki", &wiki, "test", t0()).unwrap();
    session(&store, "r", "late");
    store.remove_all("r", &all, "admin", t0()).unwrap();
    assert_eq!(due_all(&store, t0()).len(), 603);

    // crm is at its limit: the skip check sees only the head of its queue, never its backlog.
    let looked_at = std::cell::Cell::new(0);
    let busy = |_: &str, client: &str, _: u64| {
        looked_at.set(looked_at.get() + 1);
        client == "crm"
    };
    let mut cursor = DueCursor::default();
    let due = store
        .due_deliveries(t0(), 100, 4, &mut cursor, &busy)
        .unwrap();
    let clients: Vec<&str> = due.iter().map(|d| d.client_id.as_str()).collect();
    assert_eq!(clients.iter().filter(|c| **c == "mail").count(), 4);
    assert_eq!(clients.iter().filter(|c| **c == "wiki").count(), 1);
    assert!(!clients.contains(&"crm"));
    assert_eq!(looked_at.get(), 4 + 4 + 1, "the head of each queue only");

    // With room for one delivery per scan, successive scans serve the clients in turn.
    let mut cursor = DueCursor::default();
    let turns: Vec<String> = (0..6)
        .map(|_| {
            let mut d = store
                .due_deliveries(t0(), 1, 4, &mut cursor, &|_, _, _| false)
                .unwrap();
            d.remove(0).client_id
        })
        .collect();
    assert_eq!(turns, ["crm", "mail", "wiki", "crm", "mail", "wiki"]);
}

#[test]
fn retry_now_during_an_attempt_keeps_the_delivery_due_whatever_the_attempt_says() {
    let store = SledStore::temporary().unwrap();
    setup(&store, "r", Default::default());
    let sid = session(&store, "r", "gina");
    let request = RemoveSessions {
        sids: vec![sid],
        ..Default::default()
    };
    store.remove("r", &request, "admin", t0()).unwrap();
    // The worker picks it up; while its POST is in flight, an administrator presses "retry now".
    let in_flight = due(&store, t0(), 1).remove(0);
    let pressed = t0() + TimeDelta::seconds(30);
    store
        .retry_delivery("r", in_flight.id, "admin", pressed)
        .unwrap();
    // The attempt, judged against the old window, gives up.
    let give_up = AttemptResult::GiveUp {
        error: "timed out".into(),
    };
    let after = pressed + TimeDelta::seconds(1);
    let d = store
        .record_attempt(&in_flight, "jti-1", &give_up, after)
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending, "not failed: {d:?}");
    assert_eq!(d.next_attempt_at, Some(pressed), "due as retry now set it");
    assert_eq!((d.attempts, d.window_attempts), (1, 0));
    assert_eq!(d.last_error.as_deref(), Some("timed out"));
    assert!(due(&store, after, 10).iter().any(|x| x.id == d.id));

    // An attempt of the new window that fails counts towards its backoff as usual.
    let retry = AttemptResult::Retry {
        at: after + TimeDelta::seconds(2),
        error: "HTTP 502".into(),
    };
    let d = store.record_attempt(&d, "jti-2", &retry, after).unwrap();
    assert_eq!((d.attempts, d.window_attempts), (2, 1));
    assert_eq!(d.next_attempt_at, Some(after + TimeDelta::seconds(2)));
}
