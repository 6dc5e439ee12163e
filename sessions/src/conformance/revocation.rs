//! What ending a session takes with it: token grants within the client scope, the subject's
//! consents, and back-channel deliveries queued in the outbox, which survive reopening the store.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{fresh, Backend};
use crate::store::{DueCursor, SessionStore};
use crate::{
    AttemptResult, ClientRegistration, DeliveryStatus, EndAllSessions, EndSessions, GrantKind,
    GrantOwner, NewGrant, NewSession, RealmSettingsUpdate, SessionError,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A realm with three clients: two with back-channel URIs, one without.
async fn setup(store: &dyn SessionStore, realm: &str, update: RealmSettingsUpdate) {
    store.put_realm(realm, &update, "test", t0()).await.unwrap();
    for (id, uri) in [
        ("crm", Some("http://127.0.0.1:9/crm")),
        ("mail", Some("http://127.0.0.1:9/mail")),
        ("wiki", None),
    ] {
        let reg = ClientRegistration {
            backchannel_logout_uri: uri.map(Into::into),
            ..Default::default()
        };
        store
            .put_client(realm, id, &reg, "test", t0())
            .await
            .unwrap();
    }
}

async fn session(store: &dyn SessionStore, realm: &str, subject: &str) -> String {
    let new = NewSession {
        subject_id: subject.into(),
        client_ids: vec!["crm".into(), "mail".into(), "wiki".into()],
        ..Default::default()
    };
    store
        .create_session(realm, &new, t0())
        .await
        .unwrap()
        .session
        .sid
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
async fn due(store: &dyn SessionStore, now: DateTime<Utc>, limit: usize) -> Vec<crate::Delivery> {
    let mut cursor = DueCursor::default();
    store
        .due_deliveries(now, limit, usize::MAX, &mut cursor, &|_, _, _| false)
        .await
        .unwrap()
}

async fn active(store: &dyn SessionStore, token: &str) -> bool {
    store.introspect("r", token, t0()).await.unwrap().is_some()
}

pub async fn a_client_scoped_revocation_takes_only_that_clients_tokens_and_consents<B: Backend>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    setup(&store, "r", Default::default()).await;
    let sid = session(&store, "r", "alice").await;
    let other = session(&store, "r", "bob").await;
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
        store.create_grant("r", &g, t0()).await.unwrap();
    }
    assert!(active(&store, "alice-crm-refresh-0001").await);
    let request = EndSessions {
        sids: vec![sid.clone()],
        client_ids: Some(vec!["crm".into()]),
        dry_run: true,
        ..Default::default()
    };
    let dry = store
        .end_sessions("r", &request, "admin", t0())
        .await
        .unwrap();
    assert_eq!(
        (
            dry.records_deleted,
            dry.tokens_revoked,
            dry.consents_revoked,
            dry.clients_notified
        ),
        (1, 2, 1, 1)
    );
    assert!(
        active(&store, "alice-crm-refresh-0001").await,
        "a dry run changes nothing"
    );
    assert_eq!(
        store
            .list_deliveries("r", None, None, 10)
            .await
            .unwrap()
            .deliveries
            .len(),
        0
    );

    let done = store
        .end_sessions(
            "r",
            &EndSessions {
                dry_run: false,
                ..request
            },
            "admin",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            done.records_deleted,
            done.tokens_revoked,
            done.consents_revoked,
            done.clients_notified
        ),
        (1, 2, 1, 1)
    );
    assert!(!active(&store, "alice-crm-refresh-0001").await);
    assert!(!active(&store, "alice-crm-access-00001").await);
    assert!(
        active(&store, "alice-mail-refresh-001").await,
        "outside the client scope"
    );
    assert!(
        active(&store, "bob-crm-refresh-000001").await,
        "another subject's session"
    );
    let alice: Vec<_> = store
        .list_grants("r", &GrantOwner::Subject("alice".into()), t0())
        .await
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
        .await
        .unwrap();
    assert_eq!(bob.len(), 2, "bob's consent and token survive");

    let page = store.list_deliveries("r", None, None, 10).await.unwrap();
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

pub async fn grants_are_checked_against_their_session<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    setup(&store, "r", Default::default()).await;
    let sid = session(&store, "r", "alice").await;
    let g = |kind, subject, sid: Option<&str>, token| grant(kind, subject, sid, "crm", token);
    let err = async |g: NewGrant| store.create_grant("r", &g, t0()).await.unwrap_err();
    assert!(matches!(
        err(g(
            GrantKind::RefreshToken,
            "bob",
            Some(&sid),
            "bob-token-000000001"
        ))
        .await,
        SessionError::InvalidRequest(_)
    ));
    let gone = "00000000-0000-4000-8000-000000000000";
    assert!(matches!(
        err(g(
            GrantKind::RefreshToken,
            "alice",
            Some(gone),
            "alice-token-0000001"
        ))
        .await,
        SessionError::SessionNotFound(_)
    ));
    let mut consent = g(GrantKind::Consent, "alice", None, "");
    consent.token = Some("a-consent-has-no-token".into());
    assert!(matches!(
        err(consent).await,
        SessionError::InvalidRequest(_)
    ));
    let mut no_token = g(GrantKind::AuthorizationCode, "alice", None, "");
    no_token.token = None;
    assert!(matches!(
        err(no_token).await,
        SessionError::InvalidRequest(_)
    ));
    let ok = g(
        GrantKind::RefreshToken,
        "alice",
        Some(&sid),
        "alice-token-0000001",
    );
    store.create_grant("r", &ok, t0()).await.unwrap();
    assert!(matches!(err(ok.clone()).await, SessionError::Conflict(_)));
    let mut expired = ok;
    expired.expires_at = t0() - TimeDelta::seconds(1);
    expired.token = Some("alice-token-0000002".into());
    assert!(matches!(
        err(expired).await,
        SessionError::InvalidRequest(_)
    ));
    assert!(matches!(
        store.introspect("nope", "x", t0()).await,
        Err(SessionError::RealmNotFound(_))
    ));
}

pub async fn logout_realm_sign_out_and_expiry_queue_notifications_that_survive_reopening<
    B: Backend,
>(
    backend: &B,
) {
    let (store, at) = fresh(backend).await;
    let notify_on_expiry = RealmSettingsUpdate {
        idle_timeout_secs: Some(60),
        backchannel_logout_on_expiry: Some(true),
        ..Default::default()
    };
    setup(&store, "r", notify_on_expiry).await;
    setup(
        &store,
        "quiet",
        RealmSettingsUpdate {
            idle_timeout_secs: Some(60),
            ..Default::default()
        },
    )
    .await;
    let new = NewSession {
        subject_id: "carol".into(),
        client_ids: vec!["crm".into()],
        ..Default::default()
    };
    let created = store.create_session("r", &new, t0()).await.unwrap();
    store.create_session("r", &new, t0()).await.unwrap();
    store.create_session("quiet", &new, t0()).await.unwrap();
    assert!(store.logout("r", &created.token, t0()).await.unwrap());
    let expired = store
        .reap_expired(t0() + TimeDelta::seconds(61), 100)
        .await
        .unwrap();
    assert_eq!(expired, 2);
    session(&store, "r", "dave").await;
    let all = store
        .end_all_sessions("r", &EndAllSessions::default(), "admin", t0())
        .await
        .unwrap();
    assert_eq!(all.clients_notified, 2, "crm and mail; wiki has no URI");
    let reasons: Vec<String> = store
        .list_deliveries("r", Some(DeliveryStatus::Pending), None, 10)
        .await
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
            .await
            .unwrap()
            .counts
            .pending,
        0,
        "expiry notifies only where the realm asks for it"
    );
    // Dropped, not closed: what these methods answered must be there without a clean shutdown.
    drop(store);

    let store = backend.open(&at).await;
    let pending = due(&store, t0() + TimeDelta::seconds(61), 100).await;
    assert_eq!(
        pending.len(),
        4,
        "the expiry notification is due when the session expired"
    );
    assert_eq!(due(&store, t0(), 100).await.len(), 3);
    assert!(due(&store, t0() - TimeDelta::seconds(1), 100)
        .await
        .is_empty());
}

pub async fn attempts_move_deliveries_between_statuses_and_retry_now_requeues_a_failed_one<
    B: Backend,
>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    setup(&store, "r", Default::default()).await;
    let sid = session(&store, "r", "erin").await;
    let request = EndSessions {
        sids: vec![sid],
        ..Default::default()
    };
    store
        .end_sessions("r", &request, "admin", t0())
        .await
        .unwrap();
    let queued = due(&store, t0(), 10).await;
    let (a, b) = (queued[0].id, queued[1].id);
    let (first_a, first_b) = (queued[0].clone(), queued[1].clone());
    let later = t0() + TimeDelta::seconds(5);
    let retry = AttemptResult::Retry {
        at: later,
        error: "HTTP 503".into(),
    };
    let d = store
        .record_attempt(&first_a, "jti-1", &retry, t0())
        .await
        .unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 1));
    store
        .record_attempt(&first_b, "jti-2", &AttemptResult::Delivered, t0())
        .await
        .unwrap();
    assert!(due(&store, t0(), 10).await.is_empty());
    assert_eq!(due(&store, later, 10).await[0].id, a);

    let give_up = AttemptResult::GiveUp {
        error: "connection refused".into(),
    };
    let second_a = due(&store, later, 10).await.remove(0);
    store
        .record_attempt(&second_a, "jti-3", &give_up, later)
        .await
        .unwrap();
    let page = store
        .list_deliveries("r", Some(DeliveryStatus::Failed), None, 10)
        .await
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
    assert!(due(&store, later + TimeDelta::days(1), 10).await.is_empty());

    let again = store.retry_delivery("r", a, "admin", later).await.unwrap();
    assert_eq!((again.status, again.attempts), (DeliveryStatus::Pending, 2));
    assert_eq!(again.window_attempts, 0, "retry now restarts the backoff");
    assert_eq!(due(&store, later, 10).await[0].id, a);
    assert!(matches!(
        store.retry_delivery("r", b, "admin", later).await,
        Err(SessionError::Conflict(_))
    ));
    assert!(matches!(
        store.retry_delivery("r", 999_999, "admin", later).await,
        Err(SessionError::DeliveryNotFound(_))
    ));

    assert_eq!(
        store.purge_delivered(t0(), 10).await.unwrap(),
        0,
        "queued at t0, kept"
    );
    let first = store.list_deliveries("r", None, None, 1).await.unwrap();
    let next = first.next_before.expect("a second page");
    let second = store
        .list_deliveries("r", None, Some(next), 1)
        .await
        .unwrap();
    assert_ne!(first.deliveries[0].id, second.deliveries[0].id);
    assert_eq!(second.next_before, None);

    assert_eq!(
        store.purge_delivered(later, 10).await.unwrap(),
        1,
        "only the delivered one"
    );
    let left = store.list_deliveries("r", None, None, 10).await.unwrap();
    assert_eq!((left.counts.delivered, left.counts.pending), (0, 1));
    assert_eq!(left.deliveries.len(), 1);
}

pub async fn the_due_scan_passes_over_busy_clients<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    setup(&store, "r", Default::default()).await;
    for i in 0..5 {
        let sid = session(&store, "r", &format!("user{i}")).await;
        let request = EndSessions {
            sids: vec![sid],
            ..Default::default()
        };
        store
            .end_sessions("r", &request, "admin", t0())
            .await
            .unwrap();
    }
    // Five deliveries each for crm and mail, interleaved; crm is busy.
    let busy = |_: &str, client: &str, _: u64| client == "crm";
    let mut cursor = DueCursor::default();
    let due = store
        .due_deliveries(t0(), 3, 10, &mut cursor, &busy)
        .await
        .unwrap();
    assert_eq!(due.len(), 3);
    assert!(due.iter().all(|d| d.client_id == "mail"));
    let all = due_all(&store, t0()).await;
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

async fn due_all(store: &dyn SessionStore, now: DateTime<Utc>) -> Vec<crate::Delivery> {
    due(store, now, usize::MAX).await
}

pub async fn a_busy_clients_backlog_costs_a_scan_no_more_than_its_queue_head_and_clients_take_turns<
    B: Backend,
>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    setup(&store, "r", Default::default()).await;
    // crm and mail: 300 sessions joined to both, ended first; wiki gets a back-channel URI later
    // and one session, ended last, so its one delivery sits behind 600 others in time.
    for i in 0..300 {
        session(&store, "r", &format!("user{i}")).await;
    }
    let all = EndAllSessions::default();
    store
        .end_all_sessions("r", &all, "admin", t0())
        .await
        .unwrap();
    let wiki = ClientRegistration {
        backchannel_logout_uri: Some("http://127.0.0.1:9/wiki".into()),
        ..Default::default()
    };
    store
        .put_client("r", "wiki", &wiki, "test", t0())
        .await
        .unwrap();
    session(&store, "r", "late").await;
    store
        .end_all_sessions("r", &all, "admin", t0())
        .await
        .unwrap();
    assert_eq!(due_all(&store, t0()).await.len(), 603);

    // crm is at its limit: the skip check sees only the head of its queue, never its backlog.
    let looked_at = std::sync::atomic::AtomicUsize::new(0);
    let busy = |_: &str, client: &str, _: u64| {
        looked_at.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        client == "crm"
    };
    let mut cursor = DueCursor::default();
    let due = store
        .due_deliveries(t0(), 100, 4, &mut cursor, &busy)
        .await
        .unwrap();
    let clients: Vec<&str> = due.iter().map(|d| d.client_id.as_str()).collect();
    assert_eq!(clients.iter().filter(|c| **c == "mail").count(), 4);
    assert_eq!(clients.iter().filter(|c| **c == "wiki").count(), 1);
    assert!(!clients.contains(&"crm"));
    assert_eq!(
        looked_at.into_inner(),
        4 + 4 + 1,
        "the head of each queue only"
    );

    // With room for one delivery per scan, successive scans serve the clients in turn.
    let mut cursor = DueCursor::default();
    let mut turns = Vec::new();
    for _ in 0..6 {
        let mut d = store
            .due_deliveries(t0(), 1, 4, &mut cursor, &|_, _, _| false)
            .await
            .unwrap();
        turns.push(d.remove(0).client_id);
    }
    assert_eq!(turns, ["crm", "mail", "wiki", "crm", "mail", "wiki"]);
}

pub async fn retry_now_during_an_attempt_keeps_the_delivery_due_whatever_the_attempt_says<
    B: Backend,
>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    setup(&store, "r", Default::default()).await;
    let sid = session(&store, "r", "gina").await;
    let request = EndSessions {
        sids: vec![sid],
        ..Default::default()
    };
    store
        .end_sessions("r", &request, "admin", t0())
        .await
        .unwrap();
    // The worker picks it up; while its POST is in flight, an administrator presses "retry now".
    let in_flight = due(&store, t0(), 1).await.remove(0);
    let pressed = t0() + TimeDelta::seconds(30);
    store
        .retry_delivery("r", in_flight.id, "admin", pressed)
        .await
        .unwrap();
    // The attempt, judged against the old window, gives up.
    let give_up = AttemptResult::GiveUp {
        error: "timed out".into(),
    };
    let after = pressed + TimeDelta::seconds(1);
    let d = store
        .record_attempt(&in_flight, "jti-1", &give_up, after)
        .await
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending, "not failed: {d:?}");
    assert_eq!(d.next_attempt_at, Some(pressed), "due as retry now set it");
    assert_eq!((d.attempts, d.window_attempts), (1, 0));
    assert_eq!(d.last_error.as_deref(), Some("timed out"));
    assert!(due(&store, after, 10).await.iter().any(|x| x.id == d.id));

    // An attempt of the new window that fails counts towards its backoff as usual.
    let retry = AttemptResult::Retry {
        at: after + TimeDelta::seconds(2),
        error: "HTTP 502".into(),
    };
    let d = store
        .record_attempt(&d, "jti-2", &retry, after)
        .await
        .unwrap();
    assert_eq!((d.attempts, d.window_attempts), (2, 1));
    assert_eq!(d.next_attempt_at, Some(after + TimeDelta::seconds(2)));
}

/// The audit entries of one action, newest first.
async fn audited(store: &dyn SessionStore, action: &str) -> Vec<crate::AuditEntry> {
    store
        .audit_log(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e.action == action)
        .collect()
}

pub async fn a_removal_by_subject_takes_its_offline_tokens_within_the_client_scope<B: Backend>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    setup(&store, "r", Default::default()).await;
    let sid = session(&store, "r", "alice").await;
    let bob = session(&store, "r", "bob").await;
    for g in [
        grant(
            GrantKind::RefreshToken,
            "alice",
            Some(&sid),
            "crm",
            "alice-crm-session-0001",
        ),
        grant(
            GrantKind::RefreshToken,
            "alice",
            None,
            "crm",
            "alice-crm-offline-0001",
        ),
        grant(
            GrantKind::AccessToken,
            "alice",
            None,
            "crm",
            "alice-crm-offline-0002",
        ),
        grant(
            GrantKind::RefreshToken,
            "alice",
            None,
            "mail",
            "alice-mail-offline-001",
        ),
        grant(GrantKind::Consent, "alice", None, "crm", ""),
        grant(
            GrantKind::RefreshToken,
            "bob",
            Some(&bob),
            "crm",
            "bob-crm-session-000001",
        ),
        grant(
            GrantKind::RefreshToken,
            "bob",
            None,
            "crm",
            "bob-crm-offline-000001",
        ),
    ] {
        store.create_grant("r", &g, t0()).await.unwrap();
    }
    let request = EndSessions {
        subject_id: Some("alice".into()),
        client_ids: Some(vec!["crm".into()]),
        dry_run: true,
        ..Default::default()
    };
    let dry = store
        .end_sessions("r", &request, "admin", t0())
        .await
        .unwrap();
    assert_eq!(
        (
            dry.records_deleted,
            dry.tokens_revoked,
            dry.consents_revoked
        ),
        (1, 3, 1)
    );
    assert!(
        active(&store, "alice-crm-offline-0001").await,
        "a dry run changes nothing"
    );

    let done = store
        .end_sessions(
            "r",
            &EndSessions {
                dry_run: false,
                ..request
            },
            "admin",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            done.records_deleted,
            done.tokens_revoked,
            done.consents_revoked
        ),
        (1, 3, 1)
    );
    for gone in [
        "alice-crm-session-0001",
        "alice-crm-offline-0001",
        "alice-crm-offline-0002",
    ] {
        assert!(!active(&store, gone).await, "{gone}");
    }
    for kept in [
        "alice-mail-offline-001",
        "bob-crm-session-000001",
        "bob-crm-offline-000001",
    ] {
        assert!(active(&store, kept).await, "{kept}");
    }
    let entry = &audited(&store, "end_sessions").await[0];
    assert!(
        entry.outcome.contains("tokens revoked: 3"),
        "{}",
        entry.outcome
    );

    // Without revoke_tokens, or with a sid filter, offline tokens stay.
    let keep_tokens = EndSessions {
        subject_id: Some("bob".into()),
        revoke_tokens: false,
        ..Default::default()
    };
    assert_eq!(
        store
            .end_sessions("r", &keep_tokens, "admin", t0())
            .await
            .unwrap()
            .tokens_revoked,
        0
    );
    assert!(active(&store, "bob-crm-offline-000001").await);
    let carol = session(&store, "r", "carol").await;
    let offline = grant(
        GrantKind::RefreshToken,
        "carol",
        None,
        "crm",
        "carol-crm-offline-0001",
    );
    store.create_grant("r", &offline, t0()).await.unwrap();
    let one_session = EndSessions {
        subject_id: Some("carol".into()),
        sid: Some(carol),
        ..Default::default()
    };
    let out = store
        .end_sessions("r", &one_session, "admin", t0())
        .await
        .unwrap();
    assert_eq!((out.records_deleted, out.tokens_revoked), (1, 0));
    assert!(
        active(&store, "carol-crm-offline-0001").await,
        "it belongs to no session of the filter"
    );
    // A subject without sessions still loses its offline tokens.
    let no_sessions = EndSessions {
        subject_id: Some("carol".into()),
        ..Default::default()
    };
    let out = store
        .end_sessions("r", &no_sessions, "admin", t0())
        .await
        .unwrap();
    assert_eq!((out.records_deleted, out.tokens_revoked), (0, 1));
    assert!(!active(&store, "carol-crm-offline-0001").await);
}

pub async fn logout_ends_a_session_that_expired_but_was_not_reaped_yet<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    let short = RealmSettingsUpdate {
        idle_timeout_secs: Some(60),
        ..Default::default()
    };
    setup(&store, "r", short).await;
    let new = NewSession {
        subject_id: "alice".into(),
        client_ids: vec!["crm".into()],
        ..Default::default()
    };
    let created = store.create_session("r", &new, t0()).await.unwrap();
    let sid = created.session.sid.clone();
    store
        .create_grant(
            "r",
            &grant(
                GrantKind::RefreshToken,
                "alice",
                Some(&sid),
                "crm",
                "alice-refresh-000001",
            ),
            t0(),
        )
        .await
        .unwrap();
    store
        .create_grant(
            "r",
            &grant(GrantKind::Consent, "alice", None, "crm", ""),
            t0(),
        )
        .await
        .unwrap();
    let later = t0() + TimeDelta::seconds(120);
    assert!(store
        .validate("r", &created.token, false, later)
        .await
        .unwrap()
        .is_none());

    assert!(store.logout("r", &created.token, later).await.unwrap());
    assert_eq!(
        store.get_realm("r").await.unwrap().session_count,
        0,
        "record removed"
    );
    assert!(
        !active(&store, "alice-refresh-000001").await,
        "token revoked"
    );
    let grants = store
        .list_grants("r", &GrantOwner::Subject("alice".into()), t0())
        .await
        .unwrap();
    assert!(grants.is_empty(), "consent revoked too: {grants:?}");
    let page = store.list_deliveries("r", None, None, 10).await.unwrap();
    assert_eq!(page.deliveries.len(), 1);
    assert_eq!(
        (
            page.deliveries[0].client_id.as_str(),
            page.deliveries[0].reason.as_str()
        ),
        ("crm", "logout")
    );
    assert!(
        !store.logout("r", &created.token, later).await.unwrap(),
        "already ended"
    );
    assert!(store
        .validate("r", &created.token, false, later)
        .await
        .unwrap()
        .is_none());
}

pub async fn the_reaper_revokes_the_tokens_of_the_sessions_it_reaps_and_keeps_consents<
    B: Backend,
>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    let short = RealmSettingsUpdate {
        idle_timeout_secs: Some(60),
        ..Default::default()
    };
    setup(&store, "r", short).await;
    let sid = session(&store, "r", "alice").await;
    for g in [
        grant(
            GrantKind::RefreshToken,
            "alice",
            Some(&sid),
            "crm",
            "alice-session-refresh1",
        ),
        grant(
            GrantKind::AuthorizationCode,
            "alice",
            Some(&sid),
            "mail",
            "alice-session-code-001",
        ),
        grant(
            GrantKind::RefreshToken,
            "alice",
            None,
            "crm",
            "alice-offline-refresh1",
        ),
        grant(GrantKind::Consent, "alice", None, "crm", ""),
    ] {
        store.create_grant("r", &g, t0()).await.unwrap();
    }
    assert_eq!(
        store
            .reap_expired(t0() + TimeDelta::seconds(61), 100)
            .await
            .unwrap(),
        1,
        "the session only"
    );
    assert!(!active(&store, "alice-session-refresh1").await);
    assert!(!active(&store, "alice-session-code-001").await);
    assert!(
        active(&store, "alice-offline-refresh1").await,
        "issued under no session"
    );
    let kinds: Vec<GrantKind> = store
        .list_grants("r", &GrantOwner::Subject("alice".into()), t0())
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.kind)
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(
        kinds.contains(&GrantKind::Consent),
        "the subject's consent stays"
    );
}

pub async fn a_grant_lives_no_longer_than_the_realms_max_grant_lifetime<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    let capped = RealmSettingsUpdate {
        max_grant_lifetime_secs: Some(3600),
        ..Default::default()
    };
    setup(&store, "r", capped).await;
    let long = grant(
        GrantKind::RefreshToken,
        "alice",
        None,
        "crm",
        "alice-long-lived-0001",
    );
    assert_eq!(long.expires_at, t0() + TimeDelta::days(30));
    let g = store.create_grant("r", &long, t0()).await.unwrap();
    assert_eq!(g.expires_at, t0() + TimeDelta::seconds(3600));
    let introspected = store
        .introspect("r", "alice-long-lived-0001", t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(introspected.expires_at, g.expires_at, "stored as answered");
    assert!(store
        .introspect(
            "r",
            "alice-long-lived-0001",
            t0() + TimeDelta::seconds(3600)
        )
        .await
        .unwrap()
        .is_none());
    let short = NewGrant {
        expires_at: t0() + TimeDelta::seconds(600),
        ..grant(
            GrantKind::AccessToken,
            "alice",
            None,
            "crm",
            "alice-short-lived-001",
        )
    };
    assert_eq!(
        store
            .create_grant("r", &short, t0())
            .await
            .unwrap()
            .expires_at,
        short.expires_at
    );
    // The default cap is 30 days.
    setup(&store, "default", Default::default()).await;
    let longer = NewGrant {
        expires_at: t0() + TimeDelta::days(365),
        ..grant(
            GrantKind::RefreshToken,
            "alice",
            None,
            "crm",
            "alice-year-long-00001",
        )
    };
    let g = store.create_grant("default", &longer, t0()).await.unwrap();
    assert_eq!(g.expires_at, t0() + TimeDelta::days(30));
}

pub async fn revoking_a_token_deletes_its_grant_once_and_audits_it<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    setup(&store, "r", Default::default()).await;
    setup(&store, "other", Default::default()).await;
    let sid = session(&store, "r", "alice").await;
    let tokens = [
        (GrantKind::RefreshToken, "alice-refresh-token-01"),
        (GrantKind::AccessToken, "alice-access-token-001"),
        (GrantKind::AuthorizationCode, "alice-auth-code-000001"),
    ];
    let mut ids = Vec::new();
    for (kind, token) in tokens {
        ids.push(
            store
                .create_grant("r", &grant(kind, "alice", Some(&sid), "crm", token), t0())
                .await
                .unwrap(),
        );
    }
    store
        .create_grant(
            "r",
            &grant(GrantKind::Consent, "alice", None, "crm", ""),
            t0(),
        )
        .await
        .unwrap();
    let short = NewGrant {
        expires_at: t0() + TimeDelta::seconds(10),
        ..grant(
            GrantKind::RefreshToken,
            "alice",
            None,
            "crm",
            "alice-expiring-token01",
        )
    };
    store.create_grant("r", &short, t0()).await.unwrap();
    let elsewhere = grant(
        GrantKind::RefreshToken,
        "alice",
        None,
        "crm",
        "alice-other-realm-001",
    );
    store.create_grant("other", &elsewhere, t0()).await.unwrap();

    for ((kind, token), created) in tokens.iter().zip(&ids) {
        let revoked = store
            .revoke_token("r", token, "client:crm", t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&revoked.grant_id, revoked.kind),
            (&created.grant_id, *kind)
        );
        assert!(!active(&store, token).await);
        let entry = &audited(&store, "revoke_token").await[0];
        assert_eq!(
            (entry.target.as_str(), entry.actor.as_str()),
            (created.grant_id.as_str(), "client:crm")
        );
        assert_eq!(entry.realm.as_deref(), Some("r"));
        assert!(
            store
                .revoke_token("r", token, "client:crm", t0())
                .await
                .unwrap()
                .is_none(),
            "once"
        );
    }
    assert_eq!(audited(&store, "revoke_token").await.len(), 3);

    let later = t0() + TimeDelta::seconds(10);
    let too_long = "x".repeat(4097);
    for nothing in [
        "",
        "never-issued-token-0001",
        "alice-other-realm-001",
        &too_long,
        "alice-expiring-token01",
    ] {
        assert!(
            store
                .revoke_token("r", nothing, "client:crm", later)
                .await
                .unwrap()
                .is_none(),
            "{nothing}"
        );
    }
    assert_eq!(
        audited(&store, "revoke_token").await.len(),
        3,
        "nothing more was recorded"
    );
    assert!(store
        .introspect("other", "alice-other-realm-001", t0())
        .await
        .unwrap()
        .is_some());
    assert!(
        store
            .introspect("r", "alice-expiring-token01", t0())
            .await
            .unwrap()
            .is_some(),
        "an expired token is left to the reaper"
    );
    let consents = store
        .list_grants("r", &GrantOwner::Subject("alice".into()), t0())
        .await
        .unwrap();
    assert_eq!(
        consents.len(),
        2,
        "the consent and the expiring token: {consents:?}"
    );
    assert!(matches!(
        store
            .revoke_token("nope", "alice-refresh-token-01", "x", t0())
            .await,
        Err(SessionError::RealmNotFound(_))
    ));
}

pub async fn revoking_a_subjects_grants_takes_every_kind_within_the_client_scope<B: Backend>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    setup(&store, "r", Default::default()).await;
    let sid = session(&store, "r", "alice").await;
    let bob = session(&store, "r", "bob").await;
    for g in [
        grant(
            GrantKind::RefreshToken,
            "alice",
            Some(&sid),
            "crm",
            "alice-crm-session-0001",
        ),
        grant(
            GrantKind::RefreshToken,
            "alice",
            None,
            "crm",
            "alice-crm-offline-0001",
        ),
        grant(GrantKind::Consent, "alice", None, "crm", ""),
        grant(
            GrantKind::RefreshToken,
            "alice",
            Some(&sid),
            "mail",
            "alice-mail-session-001",
        ),
        grant(GrantKind::Consent, "alice", None, "mail", ""),
        grant(
            GrantKind::RefreshToken,
            "bob",
            Some(&bob),
            "crm",
            "bob-crm-session-000001",
        ),
        grant(GrantKind::Consent, "bob", None, "crm", ""),
    ] {
        store.create_grant("r", &g, t0()).await.unwrap();
    }
    let crm = ["crm".to_string()];
    let n = store
        .revoke_subject_grants(
            "r",
            "alice",
            Some(&crm),
            Some("device stolen"),
            "admin",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert!(!active(&store, "alice-crm-session-0001").await);
    assert!(!active(&store, "alice-crm-offline-0001").await);
    assert!(active(&store, "alice-mail-session-001").await);
    let entry = &audited(&store, "revoke_subject_grants").await[0];
    assert_eq!(
        (entry.target.as_str(), entry.reason.as_deref()),
        ("alice", Some("device stolen"))
    );
    assert!(
        entry.outcome.contains("grants revoked: 3"),
        "{}",
        entry.outcome
    );

    assert_eq!(
        store
            .revoke_subject_grants("r", "alice", None, None, "admin", t0())
            .await
            .unwrap(),
        2
    );
    let alice = GrantOwner::Subject("alice".into());
    assert!(store
        .list_grants("r", &alice, t0())
        .await
        .unwrap()
        .is_empty());
    let bobs = store
        .list_grants("r", &GrantOwner::Subject("bob".into()), t0())
        .await
        .unwrap();
    assert_eq!(bobs.len(), 2, "another subject's grants stay");
    assert_eq!(
        store.get_realm("r").await.unwrap().session_count,
        2,
        "sessions stay"
    );
    assert_eq!(
        store
            .revoke_subject_grants("r", "alice", None, None, "admin", t0())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        audited(&store, "revoke_subject_grants").await.len(),
        3,
        "one entry per call"
    );

    for (subject, scope) in [
        ("", None),
        ("  ", None),
        ("alice", Some(vec![" ".to_string()])),
    ] {
        let refused = store
            .revoke_subject_grants("r", subject, scope.as_deref(), None, "admin", t0())
            .await;
        assert!(
            matches!(refused, Err(SessionError::InvalidRequest(_))),
            "{subject:?}"
        );
    }
    assert_eq!(
        audited(&store, "revoke_subject_grants").await.len(),
        3,
        "refusals are not recorded"
    );
}

pub async fn revoking_many_grants_of_a_subject_goes_in_batches_and_counts_them_all<B: Backend>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    setup(&store, "r", Default::default()).await;
    for i in 0..600 {
        let client = if i % 2 == 0 { "crm" } else { "mail" };
        let token = format!("offline-token-{i:08}");
        store
            .create_grant(
                "r",
                &grant(GrantKind::RefreshToken, "many", None, client, &token),
                t0(),
            )
            .await
            .unwrap();
    }
    let crm = ["crm".to_string()];
    let preview = EndSessions {
        subject_id: Some("many".into()),
        client_ids: Some(crm.to_vec()),
        dry_run: true,
        ..Default::default()
    };
    assert_eq!(
        store
            .end_sessions("r", &preview, "admin", t0())
            .await
            .unwrap()
            .tokens_revoked,
        300
    );
    assert_eq!(
        store
            .revoke_subject_grants("r", "many", Some(&crm), None, "admin", t0())
            .await
            .unwrap(),
        300
    );
    assert_eq!(
        store
            .revoke_subject_grants("r", "many", None, None, "admin", t0())
            .await
            .unwrap(),
        300
    );
    assert_eq!(backend.check(&store).await, Vec::<String>::new());
}
