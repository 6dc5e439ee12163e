//! A database failover under load: two server binaries on a highly available PostgreSQL pair
//! (pg_auto_failover: a monitor, a primary and a synchronous secondary, on 127.0.0.1) through a
//! multi-host URL, creating, validating and ending sessions, while the primary's node is killed
//! with SIGKILL and the secondary is promoted (or, in the second test, the primary's PostgreSQL
//! server alone is killed and its keeper restarts it). Nothing acknowledged is lost: every create answered
//! validates and every end answered stays ended, on both servers; no answer is a 500 or a wrong
//! one (the switch is answered with JSON 503s carrying `Retry-After`); the counters equal a
//! recount; every logout notification queued reaches the client. The dashboard's server
//! functions, called meanwhile, answer the same way.
//!
//! Prints the figures: writes acknowledged before and after, 503s, the time from the kill to the
//! first acknowledged write.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Form;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use store_postgres::scratch::ScratchHa;
use store_postgres::PostgresStore;

use common::{cookie_pair, Binary, Store, KEY, PASSWORD};

/// How long the servers may take to write again after the kill before the test fails.
const RECOVERY_WITHIN: Duration = Duration::from_secs(60);
/// Logout deliveries one server sends at once: at most these can be sent again after the kill
/// (sent, but not yet recorded as delivered when the database went away).
const MAX_IN_FLIGHT: usize = 16;

/// Every answer the load got, by kind.
#[derive(Default, Debug)]
struct Answers {
    ok: usize,
    /// 503 with a JSON body and `Retry-After`.
    unavailable: usize,
    /// Anything else (a 500, a 503 without `Retry-After`, a refused connection): must be none.
    unexpected: Vec<String>,
    /// A validation that contradicted an acknowledged create or end: must be none.
    wrong: Vec<String>,
}

/// What the load saw acknowledged.
#[derive(Default)]
struct Acknowledged {
    /// (sid, token).
    created: Vec<(String, String)>,
    ended: Vec<String>,
    /// Ends asked for: one cut off by the switch may or may not have happened.
    end_asked: Vec<String>,
    /// Creates acknowledged before the kill, and the first acknowledged after it.
    before_kill: usize,
    killed_at: Option<Instant>,
    first_write_after_kill: Option<Instant>,
}

/// The client's back-channel endpoint: the `sid` of every logout token it receives.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<String>>>);

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: String,
}

async fn receive(State(r): State<Receiver>, Form(form): Form<LogoutForm>) -> &'static str {
    let payload = form.logout_token.split('.').nth(1).unwrap_or_default();
    let claims: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    if let Some(sid) = claims["sid"].as_str() {
        r.0.lock().unwrap().push(sid.to_owned());
    }
    "ok"
}

impl Receiver {
    async fn serve(&self) -> SocketAddr {
        let app = axum::Router::new()
            .route("/logout", axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }
}

/// One call with the bootstrap key; the answer sorted into `answers`. The body when it succeeded.
async fn call(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    answers: &Mutex<Answers>,
) -> Option<Value> {
    let mut request = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, body) = sort(path, request.send().await, answers).await?;
    status
        .is_success()
        .then(|| serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Sorts an answer (or a failure to get one) of `what` into `answers`: a success; a 503 that says
/// `store_unavailable` and carries `Retry-After`; anything else unexpected. Its status and body,
/// when there was an answer.
async fn sort(
    what: &str,
    response: reqwest::Result<reqwest::Response>,
    answers: &Mutex<Answers>,
) -> Option<(StatusCode, String)> {
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            answers
                .lock()
                .unwrap()
                .unexpected
                .push(format!("{what}: {e}"));
            return None;
        }
    };
    let status = response.status();
    let retry_after = response.headers().contains_key("retry-after");
    let body = response.text().await.unwrap_or_default();
    let mut answers = answers.lock().unwrap();
    if status.is_success() {
        answers.ok += 1;
    } else if status == StatusCode::SERVICE_UNAVAILABLE
        && retry_after
        && body.contains("store_unavailable")
    {
        answers.unavailable += 1;
    } else {
        answers.unexpected.push(format!("{what}: {status} {body}"));
    }
    Some((status, body))
}

/// Signs in to the dashboard of the server at `base` as `admin`; the session cookie.
async fn sign_in(http: &reqwest::Client, base: &str) -> String {
    let response = dashboard(
        http,
        base,
        "sign_in",
        &[("username", "admin"), ("password", PASSWORD)],
        None,
    )
    .await
    .unwrap();
    assert!(
        response.status().is_success(),
        "sign-in: {}",
        response.status()
    );
    cookie_pair(response.headers())
}

/// POSTs a form to a server function as the dashboard does.
async fn dashboard(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    form: &[(&str, &str)],
    cookie: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let mut request = http
        .post(format!("{base}/api/{name}"))
        .header("origin", base)
        .header("sec-fetch-site", "same-origin")
        .form(form);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await
}

/// The dashboard's overview of realm `r`, its answer sorted into `answers`.
async fn overview(http: &reqwest::Client, base: &str, cookie: &str, answers: &Mutex<Answers>) {
    let response = dashboard(http, base, "load_overview", &[("realm", "r")], Some(cookie)).await;
    sort("load_overview", response, answers).await;
}

/// What dies.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kill {
    /// The primary's node: its keeper and server (the secondary is promoted).
    Node,
    /// The primary's PostgreSQL server alone (its keeper restarts it).
    Server,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_under_load_loses_nothing_acknowledged() {
    under_load_loses_nothing_acknowledged(Kill::Node).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_crash_under_load_loses_nothing_acknowledged() {
    under_load_loses_nothing_acknowledged(Kill::Server).await
}

/// One at a time: two highly available clusters, four servers and their loads at once would
/// starve the monitors' one-second health checks on a small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn under_load_loses_nothing_acknowledged(kill: Kill) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut ha = tokio::task::spawn_blocking(ScratchHa::start)
        .await
        .unwrap()
        .expect("starting pg_auto_failover's monitor, primary and secondary");
    let store = Store::Postgres { url: ha.url() };
    let receiver = Receiver::default();
    let receiver_addr = receiver.serve().await;
    let delivery = [
        "--backchannel-allow-hosts",
        "127.0.0.1",
        "--delivery-poll-ms",
        "50",
        "--delivery-first-backoff-ms",
        "100",
        "--delivery-max-backoff-secs",
        "1",
        "--delivery-max-in-flight",
        "16",
        "--admin-password",
        PASSWORD,
    ];
    assert_eq!(MAX_IN_FLIGHT.to_string(), delivery[9]);
    let server_a = Binary::start(&store, &delivery, &[]).await;
    let server_b = Binary::start(&store, &delivery, &[]).await;
    let (a, b) = (server_a.base.clone(), server_b.base.clone());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let answers = Arc::new(Mutex::new(Answers::default()));
    let setup =
        |method, path: &'static str, body| call(&http, &a, method, path, Some(body), &answers);
    setup(Method::PUT, "/api/v1/realms/r", json!({}))
        .await
        .unwrap();
    let client = json!({
        "name": "The app",
        "backchannel_logout_uri": format!("http://{receiver_addr}/logout"),
        "backchannel_logout_session_required": true,
    });
    setup(Method::PUT, "/api/v1/realms/r/clients/app", client)
        .await
        .unwrap();

    // Eight workers, four per server: create a session, validate it through the other server,
    // end every third through the other server and validate it there again.
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (http, acked, stop, answers) =
            (http.clone(), acked.clone(), stop.clone(), answers.clone());
        let (mine, other) = if w % 2 == 0 {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        workers.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let started = Instant::now();
                let body =
                    json!({"subject_id": format!("user-{w}-{}", i % 5), "client_ids": ["app"]});
                let path = "/api/v1/realms/r/sessions";
                let Some(c) = call(&http, &mine, Method::POST, path, Some(body), &answers).await
                else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let sid = c["sid"].as_str().unwrap().to_owned();
                let token = c["token"].as_str().unwrap().to_owned();
                {
                    let mut acked = acked.lock().unwrap();
                    acked.created.push((sid.clone(), token.clone()));
                    match acked.killed_at {
                        None => acked.before_kill += 1,
                        Some(killed) if started > killed => {
                            acked
                                .first_write_after_kill
                                .get_or_insert_with(Instant::now);
                        }
                        Some(_) => {}
                    }
                }
                let validate = |on: &String, expected: bool| {
                    let (http, on, answers, token, sid) = (
                        http.clone(),
                        on.clone(),
                        answers.clone(),
                        token.clone(),
                        sid.clone(),
                    );
                    async move {
                        let path = "/api/v1/realms/r/sessions/validate";
                        let body = json!({ "token": token });
                        let answer = call(&http, &on, Method::POST, path, Some(body), &answers);
                        if let Some(v) = answer.await {
                            if v["valid"] != expected {
                                answers.lock().unwrap().wrong.push(format!(
                                    "{sid}: validated {} where {expected} was acknowledged",
                                    v["valid"]
                                ));
                            }
                        }
                    }
                };
                // Both servers validate it (and may keep it in memory), so an end through one
                // must reach the other's memory, across the switch too (checked at the end).
                validate(&other, true).await;
                validate(&mine, true).await;
                if i.is_multiple_of(3) {
                    acked.lock().unwrap().end_asked.push(sid.clone());
                    let body = json!({"sids": [sid], "reason": "failover test"});
                    let path = "/api/v1/realms/r/sessions/end";
                    if call(&http, &other, Method::POST, path, Some(body), &answers)
                        .await
                        .is_some()
                    {
                        acked.lock().unwrap().ended.push(sid.clone());
                        validate(&other, false).await;
                    }
                }
            }
        }));
    }

    // An administrator's dashboard, refreshing the overview on both servers.
    for base in [a.clone(), b.clone()] {
        let (http, stop, answers) = (http.clone(), stop.clone(), answers.clone());
        let cookie = sign_in(&http, &base).await;
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                overview(&http, &base, &cookie, &answers).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_port = tokio::task::block_in_place(|| match kill {
        Kill::Node => ha.kill_primary(),
        Kill::Server => ha.kill_primary_server(),
    })
    .unwrap();
    let killed_at = Instant::now();
    acked.lock().unwrap().killed_at = Some(killed_at);
    let recovered = loop {
        if let Some(first) = acked.lock().unwrap().first_write_after_kill {
            break first;
        }
        assert!(
            killed_at.elapsed() < RECOVERY_WITHIN,
            "no write was acknowledged within {RECOVERY_WITHIN:?} of the kill ({})",
            ha.states().unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The load goes on for a while on the new primary.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let recovery = recovered - killed_at;
    let load = std::mem::take(&mut *answers.lock().unwrap());
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    if kill == Kill::Node {
        assert!(
            ha.primary_port().is_some_and(|p| p != killed_port),
            "the secondary serves writes now ({})",
            ha.states().unwrap_or_default()
        );
    }
    assert!(load.unexpected.is_empty(), "{:?}", load.unexpected);
    assert!(
        load.unavailable > 0,
        "the kill was felt: some answers were 503s"
    );
    assert!(load.wrong.is_empty(), "{:?}", load.wrong);
    assert!(
        acked.before_kill > 20,
        "the load ran before the kill ({} creates)",
        acked.before_kill
    );
    let after_kill = acked.created.len() - acked.before_kill;
    assert!(
        after_kill > 20,
        "the load ran on the new primary ({after_kill} creates)"
    );

    // Every acknowledged create validates and every acknowledged end stays ended, on both.
    let ended: HashSet<&String> = acked.ended.iter().collect();
    let asked: HashSet<&String> = acked.end_asked.iter().collect();
    let checking = Mutex::new(Answers::default());
    for (sid, token) in &acked.created {
        for base in [&a, &b] {
            let path = "/api/v1/realms/r/sessions/validate";
            let body = json!({ "token": token });
            let v = call(&http, base, Method::POST, path, Some(body), &checking)
                .await
                .unwrap_or_else(|| panic!("validation answers: {:?}", checking.lock().unwrap()));
            let valid = v["valid"].as_bool().unwrap();
            if ended.contains(sid) {
                assert!(!valid, "{sid}: an acknowledged end came back");
            } else if !asked.contains(sid) {
                assert!(valid, "{sid}: an acknowledged create was lost");
            }
        }
    }

    // Every logout queued is delivered; only those in flight at the kill can arrive twice.
    let deliveries = "/api/v1/realms/r/backchannel-deliveries?count=1";
    let mut counts = Value::Null;
    for _ in 0..600 {
        counts = call(&http, &a, Method::GET, deliveries, None, &checking)
            .await
            .map(|v| v["counts"].clone())
            .unwrap_or(Value::Null);
        if counts["pending"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counts["pending"], 0, "{counts}");
    assert_eq!(counts["failed"], 0, "{counts}");
    let checking = checking.into_inner().unwrap();
    assert!(checking.unexpected.is_empty(), "{:?}", checking.unexpected);
    let received = receiver.0.lock().unwrap().clone();
    let mut times: HashMap<&String, usize> = HashMap::new();
    for sid in &received {
        *times.entry(sid).or_default() += 1;
    }
    for sid in &acked.ended {
        assert!(times.contains_key(sid), "{sid}: its logout never arrived");
    }
    assert_eq!(
        counts["delivered"].as_u64().unwrap() as usize,
        times.len(),
        "one delivery recorded for each session the client heard of"
    );
    let repeated: usize = times.values().map(|n| n - 1).sum();
    assert!(
        repeated <= 2 * MAX_IN_FLIGHT,
        "{repeated} logouts arrived twice: more than the two servers had in flight"
    );

    // The counters were written with the rows: a recount finds them equal.
    let store = PostgresStore::open(&ha.url()).await.unwrap();
    assert_eq!(store.check().await.unwrap(), Vec::<String>::new());
    println!(
        "{kill:?} killed: {} creates acknowledged ({} before the kill, {after_kill} after), {} ends \
         acknowledged, {} answers ok, {} 503s during the switch, 0 other errors; first write \
         {:.2} s after the kill; {} logouts delivered ({repeated} twice); now {}",
        acked.created.len(),
        acked.before_kill,
        acked.ended.len(),
        load.ok,
        load.unavailable,
        recovery.as_secs_f64(),
        times.len(),
        ha.states().unwrap_or_default(),
    );
    drop((server_a, server_b));
}
