//! OpenID Shared Signals end to end on 127.0.0.1, on the embedded store and on PostgreSQL: the
//! server as the binary wires it (its delivery worker included) and a real receiver that
//! verifies every Security Event Token against the published JWKS and checks its claims.
//! A push stream gets exactly one `session-revoked` per ended session for every way a session
//! ends; a poll stream hands out SETs until they are acknowledged and holds them while paused;
//! a receiver that is down is retried, across a restart, until it takes the SET; bad requests
//! are JSON 4xx answers that say what was wrong.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sessions::signal::{SESSION_REVOKED, STREAM_UPDATED, VERIFICATION};

use common::{Running, Store};

const ISSUER: &str = "https://idp.example.test";
const RECEIVER_AUTH: &str = "Bearer receiver-secret-7";

/// A receiver's push endpoint: `/events` keeps each SET it accepts with the headers it came
/// with; it answers `status` (202 unless told otherwise).
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    status: Arc<AtomicU16>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> AxumStatus {
    let status = r.status.load(Ordering::SeqCst);
    if status == 202 {
        r.got.lock().unwrap().push((headers, body));
    }
    AxumStatus::from_u16(status).unwrap()
}

impl Receiver {
    async fn serve() -> (Receiver, SocketAddr) {
        let r = Receiver {
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(202)),
        };
        let app = axum::Router::new()
            .route("/events", axum::routing::post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, addr)
    }

    fn sets(&self) -> Vec<(HeaderMap, String)> {
        self.got.lock().unwrap().clone()
    }
}

/// A server whose worker retries fast, with the receivers on 127.0.0.1 allow-listed.
async fn start(store: Store) -> Running {
    Running::start(store, &args()).await
}

fn args() -> Vec<&'static str> {
    vec![
        "--issuer",
        ISSUER,
        "--backchannel-allow-hosts",
        "127.0.0.1",
        "--delivery-first-backoff-ms",
        "100",
        "--delivery-max-backoff-secs",
        "1",
        "--delivery-poll-ms",
        "50",
        "--reaper-interval-secs",
        "1",
    ]
}

/// A realm whose sessions idle out after 2 s, at most 2 per subject (the oldest evicted).
async fn realm(srv: &Running, name: &str) {
    let settings = json!({
        "idle_timeout_secs": 2,
        "max_sessions_per_subject": 2,
        "quota_policy": "evict_oldest"
    });
    srv.ok(Method::PUT, &format!("/api/v1/realms/{name}"), settings)
        .await;
}

async fn create(srv: &Running, realm: &str, subject: &str) -> (String, String) {
    let path = format!("/api/v1/realms/{realm}/sessions");
    let v = srv
        .ok(Method::POST, &path, json!({"subject_id": subject}))
        .await;
    (
        v["sid"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

/// Ends the token's session (a data-plane logout) and checks that it did.
async fn logout(srv: &Running, realm: &str, token: &str) {
    let path = format!("/api/v1/realms/{realm}/sessions/logout");
    let out = srv.ok(Method::POST, &path, json!({"token": token})).await;
    assert_eq!(out["logged_out"], true, "{out}");
}

/// Checks a SET as a receiver must (RFC 8417, SSF 1.0): its type, signature (against the
/// server's JWKS), issuer and audience; answers its claims.
async fn verified(srv: &Running, token: &str, aud: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    assert_eq!(header.alg, Algorithm::ES256);
    let jwks: JwkSet = srv
        .http
        .get(srv.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("its key is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[srv.base.as_str()]);
    validation.set_audience(&[aud]);
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.validate_exp = false;
    let data =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("the SET verifies against the JWKS");
    let claims = data.claims;
    assert!(
        claims.get("sub").is_none() && claims.get("exp").is_none(),
        "{claims}"
    );
    assert!(
        claims["iat"].is_i64() && claims["jti"].is_string(),
        "{claims}"
    );
    assert_eq!(claims["events"].as_object().unwrap().len(), 1, "{claims}");
    claims
}

/// The event type and body of a SET's one event.
fn event(claims: &Value) -> (&str, &Value) {
    let (kind, body) = claims["events"].as_object().unwrap().iter().next().unwrap();
    (kind.as_str(), body)
}

async fn wait_for<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A receiver key and its stream, created with `body`.
async fn stream(srv: &Running, key_name: &str, body: Value) -> (String, Value) {
    let key = srv.create_key(key_name, &["ssf:receiver"]).await;
    let (status, config) = srv
        .api_with(&key, Method::POST, "/api/v1/ssf/streams", Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{config}");
    (key, config)
}

async fn push_stream_carries_every_ending_once_verified(store: Store) {
    let srv = start(store).await;
    let (receiver, addr) = Receiver::serve().await;
    realm(&srv, "acme").await;
    realm(&srv, "other").await;

    let (s, meta) = srv
        .api_with("", Method::GET, "/.well-known/ssf-configuration", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(meta["issuer"], srv.base);
    assert_eq!(meta["spec_version"], "1_0");
    assert_eq!(meta["jwks_uri"], srv.url("/.well-known/jwks.json"));
    assert_eq!(
        meta["configuration_endpoint"],
        srv.url("/api/v1/ssf/streams")
    );
    assert_eq!(
        meta["delivery_methods_supported"],
        json!(["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"])
    );

    let endpoint = format!("http://{addr}/events");
    let (key, config) = stream(
        &srv,
        "siem",
        json!({
            "delivery": {
                "method": "urn:ietf:rfc:8935",
                "endpoint_url": endpoint,
                "authorization_header": RECEIVER_AUTH
            },
            "events_requested": [SESSION_REVOKED, "https://example.com/unknown-event"],
            "description": "the SIEM",
            "realms": ["acme"],
            "aud": "https://siem.example.test"
        }),
    )
    .await;
    let id = config["stream_id"].as_str().unwrap().to_owned();
    let aud = "https://siem.example.test";
    assert_eq!(config["iss"], srv.base);
    assert_eq!(config["aud"], aud);
    assert_eq!(config["events_delivered"], json!([SESSION_REVOKED]));
    assert_eq!(config["delivery"]["endpoint_url"], endpoint);
    assert!(
        config["delivery"].get("authorization_header").is_none(),
        "the receiver's secret is not shown again: {config}"
    );
    let (s, again) = srv
        .api_with(&key, Method::POST, "/api/v1/ssf/streams", Some(json!({})))
        .await;
    assert_eq!(
        (s, again["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (s, listed) = srv
        .api_with(&key, Method::GET, "/api/v1/ssf/streams", None)
        .await;
    assert_eq!(
        (s, listed.as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );

    // Verification, with the receiver's state.
    let verify = json!({"stream_id": id, "state": "st-1"});
    let (s, _) = srv
        .api_with(
            &key,
            Method::POST,
            "/api/v1/ssf/streams/verify",
            Some(verify.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, soon) = srv
        .api_with(
            &key,
            Method::POST,
            "/api/v1/ssf/streams/verify",
            Some(verify),
        )
        .await;
    assert_eq!(
        (s, soon["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_requests"))
    );
    let (headers, token) = wait_for("the verification event", async || {
        receiver.sets().into_iter().next()
    })
    .await;
    assert_eq!(headers["content-type"], "application/secevent+jwt");
    assert_eq!(headers["accept"], "application/json");
    assert_eq!(headers["authorization"], RECEIVER_AUTH);
    let claims = verified(&srv, &token, aud).await;
    assert_eq!(event(&claims), (VERIFICATION, &json!({"state": "st-1"})));
    assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": id}));

    // Every way a session ends.
    let mut expected: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    let (sid, token) = create(&srv, "acme", "ann").await;
    logout(&srv, "acme", &token).await;
    expected.insert(sid, ("ann", "user"));
    let (sid, _) = create(&srv, "acme", "ben").await;
    let selected = json!({"sids": [sid], "send_backchannel_logout": false, "reason": "stolen"});
    let out = srv
        .ok(Method::POST, "/api/v1/realms/acme/sessions/end", selected)
        .await;
    assert_eq!(out["signals_queued"], 1, "{out}");
    expected.insert(sid, ("ben", "admin"));
    let (sid, _) = create(&srv, "acme", "cat").await;
    srv.ok(
        Method::POST,
        "/api/v1/realms/acme/sessions/end",
        json!({"subject_id": "cat"}),
    )
    .await;
    expected.insert(sid, ("cat", "admin"));
    let (evicted, _) = create(&srv, "acme", "dee").await;
    create(&srv, "acme", "dee").await;
    create(&srv, "acme", "dee").await;
    expected.insert(evicted, ("dee", "policy"));
    let out = srv
        .ok(
            Method::POST,
            "/api/v1/realms/acme/sessions/end-all",
            json!({}),
        )
        .await;
    assert_eq!(out["signals_queued"], 2, "{out}");
    let (expiring, _) = create(&srv, "acme", "eve").await;
    expected.insert(expiring.clone(), ("eve", "policy"));
    // Another realm's endings are not this stream's.
    let (_, token) = create(&srv, "other", "zed").await;
    logout(&srv, "other", &token).await;

    // ann, ben, cat, dee evicted, dee's two signed out, eve expired: 1 verification + 7.
    let sets = wait_for("a SET per ending", async || {
        let sets = receiver.sets();
        (sets.len() >= 8).then_some(sets)
    })
    .await;
    let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut jtis = Vec::new();
    for (_, token) in &sets[1..] {
        let claims = verified(&srv, token, aud).await;
        let (kind, body) = event(&claims);
        assert_eq!(kind, SESSION_REVOKED, "{claims}");
        assert!(
            body["event_timestamp"].is_i64() && body["reason_admin"]["en"].is_string(),
            "{claims}"
        );
        let sub = &claims["sub_id"];
        assert_eq!(sub["format"], "complex");
        assert_eq!(sub["user"]["format"], "iss_sub");
        assert_eq!(sub["user"]["iss"], ISSUER);
        assert_eq!(sub["tenant"], json!({"format": "opaque", "id": "acme"}));
        let sid = sub["session"]["id"].as_str().unwrap().to_owned();
        let entry = (
            sub["user"]["sub"].as_str().unwrap().to_owned(),
            body["initiating_entity"].as_str().unwrap().to_owned(),
        );
        assert!(
            seen.insert(sid.clone(), entry).is_none(),
            "one SET per ended session: {sid}"
        );
        jtis.push(claims["jti"].as_str().unwrap().to_owned());
    }
    // The two sessions of dee signed out by the administrator.
    for (sid, (subject, entity)) in &seen {
        if !expected.contains_key(sid) {
            assert_eq!((subject.as_str(), entity.as_str()), ("dee", "admin"));
        }
    }
    for (sid, (subject, entity)) in &expected {
        assert_eq!(
            seen.get(sid).map(|(s, e)| (s.as_str(), e.as_str())),
            Some((*subject, *entity)),
            "{sid}"
        );
    }
    assert_eq!(seen.len(), 7);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.sets().len(), 8, "nothing more, nothing twice");

    // The deliveries say so, per stream.
    let (_, page) = srv
        .api(
            Method::GET,
            "/api/v1/realms/acme/backchannel-deliveries?status=delivered",
            None,
        )
        .await;
    let ours = page["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["client_id"] == format!("ssf:{id}"))
        .count();
    assert_eq!(ours, 7, "{page}");

    // An administrator disables it: the receiver hears so, and then nothing; it cannot enable
    // it again.
    let (s, listed) = srv.api(Method::GET, "/api/v1/signal-streams", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed["streams"][0]["key_name"], "siem");
    let disable = json!({"status": "disabled", "reason": "contract ended"});
    let path = format!("/api/v1/signal-streams/{id}/status");
    let summary = srv.ok(Method::POST, &path, disable).await;
    assert_eq!(
        (
            summary["status"].as_str(),
            summary["status_by_admin"].as_bool()
        ),
        (Some("disabled"), Some(true))
    );
    let (_, token) = wait_for("the stream-updated event", async || {
        receiver.sets().get(8).cloned()
    })
    .await;
    let claims = verified(&srv, &token, aud).await;
    assert_eq!(
        event(&claims),
        (
            STREAM_UPDATED,
            &json!({"status": "disabled", "reason": "contract ended"})
        )
    );
    let (_, token) = create(&srv, "acme", "fay").await;
    logout(&srv, "acme", &token).await;
    let enable = json!({"stream_id": id, "status": "enabled"});
    let (s, refused) = srv
        .api_with(
            &key,
            Method::POST,
            "/api/v1/ssf/streams/status",
            Some(enable),
        )
        .await;
    assert_eq!(
        (s, refused["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.sets().len(), 9, "a disabled stream gets nothing");
    srv.stop().await;
}

async fn poll_stream_hands_out_sets_until_acknowledged(store: Store) {
    let srv = start(store).await;
    realm(&srv, "acme").await;
    let (key, config) = stream(&srv, "gateway", json!({"subject_format": "opaque"})).await;
    let id = config["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(config["delivery"]["method"], "urn:ietf:rfc:8936");
    assert_eq!(
        config["delivery"]["endpoint_url"],
        srv.url("/api/v1/ssf/poll")
    );
    assert_eq!(
        config["aud"], "gateway",
        "the key's name unless the receiver proposes one"
    );
    let poll = async |body: Value| {
        let (s, v) = srv
            .api_with(&key, Method::POST, "/api/v1/ssf/poll", Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["sets"].as_object().unwrap().clone()
    };
    assert!(poll(json!({"returnImmediately": true})).await.is_empty());

    let (sid, token) = create(&srv, "acme", "ann").await;
    logout(&srv, "acme", &token).await;
    let sets = poll(json!({"returnImmediately": true})).await;
    assert_eq!(sets.len(), 1);
    let (jti, set) = sets.iter().next().unwrap();
    let claims = verified(&srv, set.as_str().unwrap(), "gateway").await;
    assert_eq!(&claims["jti"], jti);
    assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": sid}));
    assert_eq!(
        poll(json!({"returnImmediately": true}))
            .await
            .keys()
            .collect::<Vec<_>>(),
        [jti],
        "unacknowledged, so again"
    );
    let acked = poll(json!({"ack": [jti], "returnImmediately": true})).await;
    assert!(acked.is_empty(), "{acked:?}");

    // Paused: held, then handed out once enabled.
    let status = |s: &str| json!({"stream_id": id, "status": s});
    let (s, v) = srv
        .api_with(
            &key,
            Method::POST,
            "/api/v1/ssf/streams/status",
            Some(status("paused")),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("paused")));
    let (_, token) = create(&srv, "acme", "ben").await;
    logout(&srv, "acme", &token).await;
    assert!(poll(json!({"returnImmediately": true})).await.is_empty());
    srv.api_with(
        &key,
        Method::POST,
        "/api/v1/ssf/streams/status",
        Some(status("enabled")),
    )
    .await;
    let held = poll(json!({"returnImmediately": true})).await;
    assert_eq!(held.len(), 1);
    // A SET the receiver reports as bad is not handed out again, and its delivery failed.
    let bad = held.keys().next().unwrap().clone();
    let errs = json!({"setErrs": {bad.clone(): {"err": "invalid_key", "description": "unknown kid"}}, "returnImmediately": true});
    assert!(poll(errs).await.is_empty());
    let (_, page) = srv
        .api(
            Method::GET,
            "/api/v1/realms/acme/backchannel-deliveries?status=failed",
            None,
        )
        .await;
    assert_eq!(
        page["deliveries"][0]["last_error"],
        "receiver: invalid_key: unknown kid"
    );

    // A long poll answers as soon as a SET is there.
    let waiting = {
        let (http, url, key) = (srv.http.clone(), srv.url("/api/v1/ssf/poll"), key.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let v: Value = http
                .post(url)
                .bearer_auth(key)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (started.elapsed(), v)
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_, token) = create(&srv, "acme", "cat").await;
    logout(&srv, "acme", &token).await;
    let (took, v) = waiting.await.unwrap();
    assert_eq!(v["sets"].as_object().unwrap().len(), 1, "{v}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    let (s, _) = srv
        .api_with(
            &key,
            Method::DELETE,
            &format!("/api/v1/ssf/streams?stream_id={id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = srv
        .api_with(&key, Method::GET, "/api/v1/ssf/streams", None)
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
    srv.stop().await;
}

async fn a_receiver_that_is_down_is_retried_across_a_restart(store: Store) {
    let srv = start(store).await;
    let (receiver, addr) = Receiver::serve().await;
    receiver.status.store(503, Ordering::SeqCst);
    realm(&srv, "acme").await;
    let delivery =
        json!({"method": "urn:ietf:rfc:8935", "endpoint_url": format!("http://{addr}/events")});
    let (_, config) = stream(&srv, "siem", json!({"delivery": delivery})).await;
    let client = format!("ssf:{}", config["stream_id"].as_str().unwrap());
    let (sid, token) = create(&srv, "acme", "ann").await;
    logout(&srv, "acme", &token).await;
    let pending = async |srv: &Running| {
        let (_, page) = srv
            .api(
                Method::GET,
                "/api/v1/realms/acme/backchannel-deliveries",
                None,
            )
            .await;
        page["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["client_id"] == client)
            .cloned()
            .unwrap()
    };
    wait_for("two failed attempts", async || {
        let d = pending(&srv).await;
        (d["attempts"].as_u64() >= Some(2)).then_some(())
    })
    .await;
    let d = pending(&srv).await;
    assert_eq!(
        (d["status"].as_str(), d["last_error"].as_str()),
        (Some("pending"), Some("HTTP 503"))
    );
    let jti = d["last_jti"].as_str().unwrap().to_owned();
    let args = args();
    let srv = srv.restart(&args).await;
    receiver.status.store(202, Ordering::SeqCst);
    let (_, token) = wait_for("the SET after the outage", async || {
        receiver.sets().into_iter().next()
    })
    .await;
    let claims = verified(&srv, &token, "siem").await;
    assert_eq!(claims["sub_id"]["session"]["id"], sid);
    assert_eq!(claims["jti"], jti, "the same SET, retransmitted");
    wait_for("the delivery recorded", async || {
        (pending(&srv).await["status"] == "delivered").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.sets().len(), 1);
    srv.stop().await;
}

async fn bad_requests_are_json_4xx_that_say_what_was_wrong(store: Store) {
    let srv = start(store).await;
    realm(&srv, "acme").await;
    let key = srv.create_key("rcv", &["ssf:receiver"]).await;
    let issuer_key = srv.create_key("idp", &["sessions:issue"]).await;
    let post = async |key: &str, body: Value| {
        srv.api_with(key, Method::POST, "/api/v1/ssf/streams", Some(body))
            .await
    };
    let cases = [
        (
            json!({"delivery": {"method": "urn:example:carrier-pigeon"}}),
            StatusCode::BAD_REQUEST,
            "not supported",
        ),
        (
            json!({"delivery": {"method": "urn:ietf:rfc:8935"}}),
            StatusCode::BAD_REQUEST,
            "endpoint_url is required",
        ),
        (
            json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "http://10.1.2.3/events"}}),
            StatusCode::BAD_REQUEST,
            "endpoint_url",
        ),
        (
            json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://rcv.example/e#x"}}),
            StatusCode::BAD_REQUEST,
            "fragment",
        ),
        (
            json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://rcv.example/e", "authorization_header": "Bearer x\r\nX-Evil: 1"}}),
            StatusCode::BAD_REQUEST,
            "visible ASCII",
        ),
        (
            json!({"realms": []}),
            StatusCode::BAD_REQUEST,
            "at least one realm",
        ),
        (json!({"realms": ["nope"]}), StatusCode::NOT_FOUND, "nope"),
        (
            json!({"iss": "https://elsewhere.example"}),
            StatusCode::BAD_REQUEST,
            "iss",
        ),
        (
            json!({"stream_id": "mine"}),
            StatusCode::BAD_REQUEST,
            "stream_id",
        ),
        (
            json!({"events_requested": [""]}),
            StatusCode::BAD_REQUEST,
            "empty",
        ),
        (
            json!({"colour": "blue"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "colour",
        ),
    ];
    for (body, status, says) in cases {
        let (s, v) = post(&key, body.clone()).await;
        assert_eq!(s, status, "{body}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {message}");
    }
    let (s, v) = post(&issuer_key, json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    let r = srv
        .http
        .post(srv.url("/api/v1/ssf/poll"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    // Another receiver's stream is unknown to this one.
    let (other_key, theirs) = stream(&srv, "other", json!({})).await;
    let path = format!(
        "/api/v1/ssf/streams/status?stream_id={}",
        theirs["stream_id"].as_str().unwrap()
    );
    let (s, v) = srv.api_with(&key, Method::GET, &path, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("stream_not_found"))
    );
    let (s, v) = srv
        .api_with(&key, Method::POST, "/api/v1/ssf/poll", Some(json!({})))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("stream_not_found"))
    );
    let acks: Vec<String> = (0..1001).map(|i| format!("{i}.acme")).collect();
    let (s, v) = srv
        .api_with(
            &other_key,
            Method::POST,
            "/api/v1/ssf/poll",
            Some(json!({"ack": acks})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // Revoking a receiver's key deletes its stream.
    let (s, _) = srv
        .api(Method::DELETE, "/api/v1/api-keys/other", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, listed) = srv.api(Method::GET, "/api/v1/signal-streams", None).await;
    assert_eq!(listed["streams"], json!([]), "{listed}");
    srv.stop().await;
}

on_both_stores!(
    push_stream_carries_every_ending_once_verified,
    poll_stream_hands_out_sets_until_acknowledged,
    a_receiver_that_is_down_is_retried_across_a_restart,
    bad_requests_are_json_4xx_that_say_what_was_wrong,
);
