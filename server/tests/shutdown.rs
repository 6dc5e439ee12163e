//! SIGTERM while a dashboard tab holds the live stream open: the server ends the stream, exits
//! within its grace period, and everything it acknowledged is there after a restart.

#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::json;

use common::{call, Binary, Store, PASSWORD};

const GRACE_SECS: u64 = 3;

/// The binary with a short grace period, an administrator and plain-http cookies, set as a
/// deployment sets them: in its environment.
async fn start(store: &Store) -> Binary {
    Binary::start(
        store,
        &["--shutdown-grace-secs", &GRACE_SECS.to_string()],
        &[
            ("SESSIONS_ADMIN_PASSWORD", PASSWORD),
            ("SESSIONS_PLAIN_HTTP_COOKIES", "true"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_an_open_dashboard_tab_exits_within_the_grace_period_and_loses_nothing() {
    let store = Store::embedded();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut server = start(&store).await;
    let base = server.base.clone();
    call(
        &http,
        &base,
        Method::PUT,
        "/api/v1/realms/acme",
        Some(json!({})),
    )
    .await;
    for i in 0..20 {
        call(
            &http,
            &base,
            Method::POST,
            "/api/v1/realms/acme/sessions",
            Some(json!({"subject_id": format!("user{}", i % 4)})),
        )
        .await;
    }
    let removed = call(
        &http,
        &base,
        Method::POST,
        "/api/v1/realms/acme/sessions/end",
        Some(json!({"subject_id": "user0", "reason": "before shutdown"})),
    )
    .await;
    assert_eq!(removed["sessions_removed"], 5);

    // A dashboard tab: signed in, with the live stream open.
    let signed_in = http
        .post(format!("{base}/api/sign_in"))
        .header("origin", &base)
        .form(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let live = http
        .get(format!("{base}/live/realms/acme"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let mut events = live.bytes_stream();
    let first = events.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: count"));

    // SIGTERM.
    let stopping = Instant::now();
    // SAFETY: kill sends a signal to our own child process.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) },
        0
    );
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(GRACE_SECS + 5),
            "the server did not exit within its grace period"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "clean exit: {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(GRACE_SECS),
        "the live stream ended with the signal instead of holding the server to its deadline"
    );
    // The tab's stream ended rather than being cut: it ran to its end.
    let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(2), events.collect::<Vec<_>>())
        .await
        .expect("the stream ended with the server");
    assert!(
        rest.iter().all(|chunk| chunk.is_ok()),
        "the stream closed cleanly"
    );

    // Nothing acknowledged is lost.
    server.start_again().await;
    let realm = call(&http, &base, Method::GET, "/api/v1/realms/acme", None).await;
    assert_eq!(realm["session_count"], 15);
    let page = call(
        &http,
        &base,
        Method::GET,
        "/api/v1/realms/acme/sessions?subject_id=user0",
        None,
    )
    .await;
    assert_eq!(page["total_count"], 0, "the removal stayed done");
    server.kill();
}
