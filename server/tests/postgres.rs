//! The server on PostgreSQL (`serve --store postgres://...`), started exactly as the binary
//! starts it (`server::serve`), two servers on one scratch database: what one does, the other
//! sees at once, and their delivery workers share the outbox without sending anything twice.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::{Running, Store, KEY};

/// Whether a session token is valid in `realm`, asked of `srv`.
async fn valid(srv: &Running, realm: &str, token: &str) -> bool {
    let path = format!("/api/v1/realms/{realm}/sessions/validate");
    let v = srv
        .ok(
            Method::POST,
            &path,
            json!({"token": token, "refresh": false}),
        )
        .await;
    v["valid"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn what_one_server_does_the_other_sees_at_once() {
    let store = Store::postgres();
    let a = Running::start(store.clone(), &[]).await;
    let b = Running::start(store.clone(), &[]).await;
    a.ok(Method::PUT, "/api/v1/realms/acme", json!({})).await;
    let created = a
        .ok(
            Method::POST,
            "/api/v1/realms/acme/sessions",
            json!({"subject_id": "alice", "display_name": "Alice Smith"}),
        )
        .await;
    let (sid, token) = (
        created["sid"].as_str().unwrap(),
        created["token"].as_str().unwrap(),
    );
    assert!(valid(&b, "acme", token).await, "created on A, valid on B");
    let (status, listed) = b
        .api(
            Method::GET,
            "/api/v1/realms/acme/sessions?display_name=smi",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["total_count"], 1);

    let removed = a
        .ok(
            Method::POST,
            "/api/v1/realms/acme/sessions/end",
            json!({"sids": [sid]}),
        )
        .await;
    assert_eq!(removed["sessions_removed"], 1);
    assert!(
        !valid(&b, "acme", token).await,
        "revoked on A, invalid on B at once"
    );
    let (status, _) = b
        .api(
            Method::GET,
            &format!("/api/v1/realms/acme/sessions/{sid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, realm) = b.api(Method::GET, "/api/v1/realms/acme", None).await;
    assert_eq!(realm["session_count"], 0);
    // Bad input is a 4xx on this backend too.
    let (status, _) = b
        .api(
            Method::POST,
            "/api/v1/realms/acme/sessions",
            json!({"subject_id": ""}).into(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = b
        .api(Method::GET, "/api/v1/realms/nowhere/sessions", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    a.stop().await;
    b.stop().await;
}

/// Logout notifications received on 127.0.0.1, by sid.
#[derive(Clone, Default)]
struct Receiver {
    by_sid: Arc<Mutex<BTreeMap<String, u32>>>,
}

impl Receiver {
    /// Listens on a free port; answers the URL to register.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = self.by_sid.clone();
        let app = axum::Router::new().route(
            "/logout",
            axum::routing::post(move |body: String| {
                let received = received.clone();
                async move {
                    let form: BTreeMap<String, String> =
                        url::form_urlencoded::parse(body.as_bytes())
                            .into_owned()
                            .collect();
                    let claims = form["logout_token"].split('.').nth(1).unwrap().to_owned();
                    let claims: Value =
                        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
                    let sid = claims["sid"].as_str().unwrap().to_owned();
                    *received.lock().unwrap().entry(sid).or_default() += 1;
                    StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/logout")
    }

    fn counts(&self) -> BTreeMap<String, u32> {
        self.by_sid.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_both_delivery_workers_running_each_notification_is_sent_once() {
    let store = Store::postgres();
    let receiver = Receiver::default();
    let uri = receiver.start().await;
    let loopback = ["--backchannel-allow-hosts", "127.0.0.1"];
    let a = Running::start(store.clone(), &loopback).await;
    let b = Running::start(store.clone(), &loopback).await;
    a.ok(
        Method::PUT,
        "/api/v1/realms/acme",
        json!({"backchannel_allow_http": true}),
    )
    .await;
    a.ok(
        Method::PUT,
        "/api/v1/realms/acme/clients/crm",
        json!({"backchannel_logout_uri": uri}),
    )
    .await;
    let mut sids = Vec::new();
    for i in 0..40 {
        let created = a
            .ok(
                Method::POST,
                "/api/v1/realms/acme/sessions",
                json!({"subject_id": format!("user{i}"), "client_ids": ["crm"]}),
            )
            .await;
        sids.push(created["sid"].as_str().unwrap().to_owned());
    }
    // Half ended through each server: both workers are woken with work queued.
    for (i, sid) in sids.iter().enumerate() {
        let server = if i % 2 == 0 { &a } else { &b };
        server
            .ok(
                Method::POST,
                "/api/v1/realms/acme/sessions/end",
                json!({"sids": [sid]}),
            )
            .await;
    }
    for _ in 0..400 {
        if receiver.counts().len() == sids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both workers keep polling a while longer: nothing may come twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = receiver.counts();
    assert_eq!(
        counts.len(),
        sids.len(),
        "every session's notification arrived"
    );
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let (_, page) = b
        .api(
            Method::GET,
            "/api/v1/realms/acme/backchannel-deliveries",
            None,
        )
        .await;
    assert_eq!(page["counts"]["delivered"], sids.len(), "{page}");
    assert_eq!(page["counts"]["pending"], 0);
    a.stop().await;
    b.stop().await;
}

/// The session count in the first `count` event of a live stream.
async fn first_live_count(resp: reqwest::Response) -> u64 {
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if let Some(data) = text
            .split("event: count\ndata: ")
            .nth(1)
            .and_then(|rest| rest.split_once('\n'))
        {
            return data.0.trim().parse().unwrap();
        }
    }
    panic!("the live stream ended without a count: {text}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dashboard_on_one_server_sees_a_removal_made_through_the_other() {
    let store = Store::postgres();
    let a = Running::start(store.clone(), &[]).await;
    let b = Running::start(store.clone(), &["--plain-http-cookies"]).await;
    a.ok(Method::PUT, "/api/v1/realms/acme", json!({})).await;
    let mut sids = Vec::new();
    for name in ["Zed Stays", "Yan Leaves"] {
        let c = a
            .ok(
                Method::POST,
                "/api/v1/realms/acme/sessions",
                json!({"subject_id": name.to_lowercase().replace(' ', "-"), "display_name": name}),
            )
            .await;
        sids.push(c["sid"].as_str().unwrap().to_owned());
    }
    let cookie = b.sign_in().await;
    let page = || async {
        let resp = b
            .http
            .get(b.url("/?realm=acme"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    };
    let live = || async {
        let resp = b
            .http
            .get(b.url("/live/realms/acme"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        first_live_count(resp).await
    };
    let before = page().await;
    assert!(before.contains("Zed Stays") && before.contains("Yan Leaves"));
    assert_eq!(live().await, 2);

    a.ok(
        Method::POST,
        "/api/v1/realms/acme/sessions/end",
        json!({"sids": [sids[1]]}),
    )
    .await;
    let after = page().await;
    assert!(
        after.contains("Zed Stays"),
        "the other session is still listed"
    );
    assert!(
        !after.contains("Yan Leaves"),
        "B's dashboard lists what A removed"
    );
    assert_eq!(live().await, 1, "B's live count says so too");
    a.stop().await;
    b.stop().await;
}

/// The backends of the database at `url` waiting for a lock.
async fn waiting_for_a_lock(url: &str) -> i64 {
    let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    db.query_one(
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_held_up_is_cut_off_by_the_statement_timeout_or_by_its_caller_leaving() {
    let store = Store::postgres();
    let url = store.url().to_owned();
    let srv = Running::start(store.clone(), &["--pg-statement-timeout-ms", "700"]).await;
    srv.ok(Method::PUT, "/api/v1/realms/acme", json!({})).await;
    srv.ok(
        Method::POST,
        "/api/v1/realms/acme/sessions",
        json!({"subject_id": "alice"}),
    )
    .await;
    // Another connection holds the sessions table, as a stuck query would.
    let (holder, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    holder
        .batch_execute("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (status, v) = srv
        .api(Method::GET, "/api/v1/realms/acme/sessions", None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "store_unavailable", "{v}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(waiting_for_a_lock(&url).await, 0, "the statement was ended");

    // A caller that gives up takes its statement with it, long before the timeout would.
    let srv = srv.restart(&["--pg-statement-timeout-ms", "60000"]).await;
    let gave_up = srv
        .http
        .get(srv.url("/api/v1/realms/acme/sessions"))
        .bearer_auth(KEY)
        .timeout(Duration::from_millis(1500))
        .send()
        .await;
    assert!(gave_up.is_err(), "the listing waited for the lock");
    let mut waiting = waiting_for_a_lock(&url).await;
    for _ in 0..100 {
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        waiting = waiting_for_a_lock(&url).await;
    }
    assert_eq!(waiting, 0, "the abandoned listing's statement still waits");
    holder.batch_execute("ROLLBACK").await.unwrap();
    let (status, v) = srv
        .api(Method::GET, "/api/v1/realms/acme/sessions", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["total_count"], 1);
    srv.stop().await;
}
