//! `server migrate-store`: an embedded store copied into PostgreSQL is the same store — tokens
//! and results tokens handed out before stay valid, listings, grants, deliveries, audit log and
//! accounts are equal, every count is compared — and running the copy again adds what the
//! source gained since and duplicates nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, TimeDelta, TimeZone, Utc};
use service::admins::{AdminAccounts, Verified};
use service::api_keys::{ApiKeys, Scope};
use service::backchannel::SigningKeys;
use sessions::stats::Span;
use sessions::store::{AccountStore, DueCursor, SessionStore, SledStore};
use sessions::AdminRole;
use sessions::{
    AttemptResult, ClientRegistration, EndSessions, EndedQuery, GrantKind, GrantOwner, NewGrant,
    NewSession, RealmSettingsUpdate, SessionQuery,
};
use sessions::{StreamDelivery, StreamRecord, StreamStatus};
use store_postgres::scratch::ScratchPostgres;
use store_postgres::PostgresStore;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap()
}

/// Opens the embedded store, waiting for a store of this process dropped just before to let go
/// of the directory.
fn open(dir: &std::path::Path) -> SledStore {
    let wait = Duration::from_secs(5);
    sessions::store::dir_lock::open_when_free(dir, wait, || SledStore::open(dir)).unwrap()
}

async fn migrate(dir: &std::path::Path, url: &str) -> String {
    let mut out = Vec::new();
    for _ in 0..200 {
        match server::migrate_store::run(dir, url, &mut out).await {
            Ok(()) => return String::from_utf8(out).unwrap(),
            Err(e) if e.is_store_in_use() => tokio::time::sleep(Duration::from_millis(25)).await,
            Err(e) => panic!("{e}\n{}", String::from_utf8_lossy(&out)),
        }
    }
    panic!("the data directory stayed locked")
}

async fn all_pages(store: &dyn SessionStore, q: SessionQuery) -> Vec<sessions::Session> {
    let mut q = q;
    let mut out = Vec::new();
    loop {
        let page = store.query("acme", &q).await.unwrap();
        out.extend(page.results);
        if !page.has_next {
            return out;
        }
        q.results_token = page.results_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_store_is_the_same_store_and_copying_again_adds_only_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let pg = ScratchPostgres::shared();
    pg.create_database("migrated").unwrap();
    let url = pg.url_for("migrated");

    // The embedded store, with a bit of everything.
    let sled = Arc::new(open(dir.path()));
    let quota = RealmSettingsUpdate {
        max_sessions_per_subject: Some(Some(5)),
        property_whitelist: Some(vec!["theme".into()]),
        ..Default::default()
    };
    sled.put_realm("acme", &quota, "test", t0()).await.unwrap();
    let crm = ClientRegistration {
        backchannel_logout_uri: Some("https://crm.example.com/logout".into()),
        ..Default::default()
    };
    sled.put_client("acme", "crm", &crm, "test", t0())
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for i in 0..40 {
        let new = NewSession {
            subject_id: format!("user{}", i % 9),
            display_name: Some(format!("Person{i} Smith")),
            client_ids: vec!["crm".into()],
            properties: [("theme".to_string(), "dark".to_string())].into(),
            ip: Some(format!("203.0.113.{i}")),
            ..Default::default()
        };
        let c = sled
            .create_session("acme", &new, t0() + TimeDelta::seconds(i))
            .await
            .unwrap();
        let grant = NewGrant {
            kind: GrantKind::RefreshToken,
            subject_id: c.session.subject_id.clone(),
            sid: Some(c.session.sid.clone()),
            client_id: "crm".into(),
            expires_at: t0() + TimeDelta::days(1),
            token: Some(format!("refresh-token-of-session-{i}")),
            scopes: vec!["openid".into()],
        };
        sled.create_grant("acme", &grant, t0()).await.unwrap();
        tokens.push((c.session.sid, c.token));
    }
    let consent = NewGrant {
        kind: GrantKind::Consent,
        subject_id: "user1".into(),
        sid: None,
        client_id: "crm".into(),
        expires_at: t0() + TimeDelta::days(1),
        token: None,
        scopes: vec![],
    };
    sled.create_grant("acme", &consent, t0()).await.unwrap();
    let ended: Vec<String> = tokens.drain(..4).map(|(sid, _)| sid).collect();
    let request = EndSessions {
        sids: ended,
        ..Default::default()
    };
    sled.end_sessions("acme", &request, "test", t0())
        .await
        .unwrap();
    let mut cursor = DueCursor::default();
    let due = sled
        .due_deliveries(t0(), 10, 10, &mut cursor, &|_, _, _| false)
        .await
        .unwrap();
    sled.record_attempt(&due[0], "jti-0", &AttemptResult::Delivered, t0())
        .await
        .unwrap();
    let give_up = AttemptResult::GiveUp {
        error: "refused".into(),
    };
    sled.record_attempt(&due[1], "jti-1", &give_up, t0())
        .await
        .unwrap();
    let keys = ApiKeys::open(sled.clone()).await.unwrap();
    let (_, secret) = keys
        .create("idp", &[Scope::Issue], "cli", t0())
        .await
        .unwrap();
    let accounts = AdminAccounts::open(sled.clone()).await.unwrap();
    accounts
        .set_password("alice", "correct horse battery", None, "cli", t0())
        .await
        .unwrap();
    accounts
        .create(
            "otto",
            "correct horse battery",
            AdminRole::Operator,
            "cli",
            t0(),
        )
        .await
        .unwrap();
    let kid = SigningKeys::open(sled.clone(), t0())
        .await
        .unwrap()
        .current_kid();
    let stream = StreamRecord {
        id: "s1".into(),
        key_name: "siem".into(),
        aud: "https://siem.example".into(),
        realms: Some(vec!["acme".into()]),
        events_requested: vec![sessions::signal::SESSION_REVOKED.into()],
        delivery: StreamDelivery::Push {
            endpoint_url: "https://siem.example/events".into(),
            authorization_header: Some("Bearer x".into()),
        },
        description: None,
        subject_format: Default::default(),
        status: StreamStatus::Paused,
        status_reason: Some("maintenance".into()),
        status_by_admin: false,
        created_at: t0(),
        updated_at: t0(),
    };
    sled.put_signal_stream(&stream).await.unwrap();
    let first_page = SessionQuery {
        count: Some(7),
        ..Default::default()
    };
    let page1 = sled.query("acme", &first_page).await.unwrap();
    let page2_query = SessionQuery {
        results_token: page1.results_token.clone(),
        ..first_page.clone()
    };
    let page2 = sled.query("acme", &page2_query).await.unwrap();
    let listed = all_pages(sled.as_ref(), SessionQuery::default()).await;
    let by_name = SessionQuery {
        filters: sessions::SessionFilters {
            display_name: Some("smi".into()),
            subject_id: Some("user3".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let named = all_pages(sled.as_ref(), by_name.clone()).await;
    let by_address = SessionQuery {
        filters: sessions::SessionFilters {
            ip: Some("203.0.113.0/28".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let addressed = all_pages(sled.as_ref(), by_address.clone()).await;
    assert_eq!(
        addressed.len(),
        12,
        "16 addresses, the first 4 sessions ended"
    );
    let deliveries = sled.list_deliveries("acme", None, None, 100).await.unwrap();
    let audit = sled.audit_log(None, 1000).await.unwrap();
    let grants_of_user2 = sled
        .list_grants("acme", &GrantOwner::Subject("user2".into()), t0())
        .await
        .unwrap();
    let every_ended = EndedQuery {
        count: Some(100),
        ..Default::default()
    };
    let history = sled.ended_sessions("acme", &every_ended).await.unwrap();
    assert_eq!(history.total_count, 4, "the four ended sessions");
    drop((keys, accounts, sled));

    let report = migrate(dir.path(), &url).await;
    assert!(report.contains("every count is equal"), "{report}");

    let copy = Arc::new(PostgresStore::open(&url).await.unwrap());
    assert_eq!(
        copy.ended_sessions("acme", &every_ended).await.unwrap(),
        history,
        "the history is copied, each client's notice with it"
    );
    for (sid, token) in &tokens {
        let s = copy.validate("acme", token, false, t0()).await.unwrap();
        assert_eq!(s.map(|s| s.sid).as_ref(), Some(sid), "a token stays valid");
    }
    assert_eq!(
        copy.query("acme", &page2_query).await.unwrap(),
        page2,
        "a results token stays valid"
    );
    assert_eq!(
        all_pages(copy.as_ref(), SessionQuery::default()).await,
        listed
    );
    assert_eq!(all_pages(copy.as_ref(), by_name).await, named);
    assert_eq!(all_pages(copy.as_ref(), by_address).await, addressed);
    assert_eq!(
        copy.list_deliveries("acme", None, None, 100).await.unwrap(),
        deliveries
    );
    // PostgreSQL keeps times to the microsecond.
    let micros = |log: Vec<(u64, sessions::AuditEntry)>| -> Vec<_> {
        log.into_iter()
            .map(|(id, e)| {
                let at = e.at.trunc_subsecs(6);
                (id, sessions::AuditEntry { at, ..e })
            })
            .collect()
    };
    assert_eq!(
        micros(copy.audit_log(None, 1000).await.unwrap()),
        micros(audit.clone())
    );
    let mut copied_grants = copy
        .list_grants("acme", &GrantOwner::Subject("user2".into()), t0())
        .await
        .unwrap();
    copied_grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
    let mut source_grants = grants_of_user2;
    source_grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
    assert_eq!(copied_grants, source_grants);
    assert!(copy
        .introspect("acme", "refresh-token-of-session-20", t0())
        .await
        .unwrap()
        .is_some());
    assert!(ApiKeys::open(copy.clone())
        .await
        .unwrap()
        .authenticate(&secret)
        .is_some());
    assert_eq!(copy.signal_streams().await.unwrap(), [stream]);
    assert_eq!(
        AdminAccounts::open(copy.clone())
            .await
            .unwrap()
            .verify("alice", "correct horse battery")
            .await
            .unwrap(),
        Verified::Yes
    );
    let roles: Vec<(String, AdminRole)> = AdminAccounts::open(copy.clone())
        .await
        .unwrap()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.username, a.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".to_owned(), AdminRole::Admin),
            ("otto".to_owned(), AdminRole::Operator)
        ],
        "each administrator keeps their role"
    );
    assert_eq!(
        SigningKeys::open(copy.clone(), t0())
            .await
            .unwrap()
            .current_kid(),
        kid
    );
    assert_eq!(copy.check().await.unwrap(), Vec::<String>::new());
    drop(copy);

    // The source gains sessions; copying again adds them, and only them.
    let sled = open(dir.path());
    let mut added = Vec::new();
    for i in 0..5 {
        let new = NewSession {
            subject_id: format!("late{i}"),
            ..Default::default()
        };
        added.push(sled.create_session("acme", &new, t0()).await.unwrap().token);
    }
    // A sign-in today: activity counters still kept are copied too.
    let now = Utc::now();
    let today = NewSession {
        subject_id: "today".into(),
        ..Default::default()
    };
    added.push(
        sled.create_session("acme", &today, now)
            .await
            .unwrap()
            .token,
    );
    let activity = async |s: &dyn SessionStore| {
        let hours = s.stats("acme", Span::Hour, now, now).await.unwrap();
        let days = s.stats("acme", Span::Day, now, now).await.unwrap();
        (hours, days)
    };
    let recent = activity(&sled).await;
    assert_eq!((recent.0[0].sign_ins, recent.1[0].sign_ins), (1, 1));
    let total = sled.get_realm("acme").await.unwrap().session_count;
    drop(sled);
    let report = migrate(dir.path(), &url).await;
    assert!(report.contains("every count is equal"), "{report}");
    let copy = PostgresStore::open(&url).await.unwrap();
    assert_eq!(copy.get_realm("acme").await.unwrap().session_count, total);
    assert_eq!(activity(&copy).await, recent);
    for token in &added {
        assert!(copy
            .validate("acme", token, false, t0())
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(copy.check().await.unwrap(), Vec::<String>::new());
    // The copy goes on from there: new ids follow the copied ones.
    let later = copy
        .create_session(
            "acme",
            &NewSession {
                subject_id: "new".into(),
                ..Default::default()
            },
            t0(),
        )
        .await
        .unwrap();
    copy.end_sessions(
        "acme",
        &EndSessions {
            sids: vec![later.session.sid],
            ..Default::default()
        },
        "test",
        t0(),
    )
    .await
    .unwrap();
    let audited = copy.audit_log(None, 1).await.unwrap();
    assert!(
        audited[0].0 > audit[0].0,
        "audit ids go on after the copied ones"
    );
    assert_eq!(copy.check().await.unwrap(), Vec::<String>::new());
}
