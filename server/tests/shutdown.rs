//! SIGTERM while a dashboard tab holds the live stream open: the server ends the stream, exits
//! within its grace period, and everything it acknowledged is there after a restart.

#![cfg(unix)]

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use common::{free_addr, wait_healthy};

const KEY: &str = "shutdown-test-key-0123456789";
const PASSWORD: &str = "shutdown-admin-password";
const GRACE_SECS: u64 = 3;

fn start(addr: SocketAddr, data_dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["serve", "--addr", &addr.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--shutdown-grace-secs", &GRACE_SECS.to_string()])
        .env("SESSIONS_BOOTSTRAP_API_KEY", KEY)
        .env("SESSIONS_ADMIN_PASSWORD", PASSWORD)
        .env("SESSIONS_PLAIN_HTTP_COOKIES", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts")
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(KEY);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_an_open_dashboard_tab_exits_within_the_grace_period_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut child = start(addr, dir.path());
    wait_healthy(&http, &base).await;
    call(
        &http,
        &base,
        reqwest::Method::PUT,
        "/api/v1/realms/acme",
        Some(json!({})),
    )
    .await;
    for i in 0..20 {
        call(
            &http,
            &base,
            reqwest::Method::POST,
            "/api/v1/realms/acme/sessions",
            Some(json!({"subject_id": format!("user{}", i % 4)})),
        )
        .await;
    }
    let removed = call(
        &http,
        &base,
        reqwest::Method::POST,
        "/api/v1/realms/acme/sessions/remove",
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
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
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
    let mut child = start(addr, dir.path());
    wait_healthy(&http, &base).await;
    let realm = call(
        &http,
        &base,
        reqwest::Method::GET,
        "/api/v1/realms/acme",
        None,
    )
    .await;
    assert_eq!(realm["session_count"], 15);
    let page = call(
        &http,
        &base,
        reqwest::Method::GET,
        "/api/v1/realms/acme/sessions?subject_id=user0",
        None,
    )
    .await;
    assert_eq!(page["total_count"], 0, "the removal stayed done");
    child.kill().unwrap();
    child.wait().unwrap();
}
