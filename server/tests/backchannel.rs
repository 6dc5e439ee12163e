//! Back-channel logout end to end on 127.0.0.1: the server exactly as the binary wires it
//! (`server::serve`, with its delivery worker), on the embedded store and on PostgreSQL, and a
//! real HTTP receiver that verifies every logout token against the published
//! JWKS. Also: revoked tokens introspect as inactive, other clients' consents survive a scoped
//! revocation, an unreachable client is retried until it answers, one slow client does not hold up
//! the others, and a failed delivery can be retried by hand. Where notifications may go: refused
//! targets at registration (JSON 400s) and at delivery (never contacted), `last_error` as a
//! category, and each attempt following the client's current registration.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode as AxumStatus;
use axum::Form;
use chrono::Utc;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use service::backchannel::logout_token::{BACKCHANNEL_LOGOUT_EVENT, LIFETIME_SECS, TOKEN_TYPE};

use common::{Running, Store, KEY};

const ISSUER: &str = "https://idp.example.test";

/// What a client endpoint of the receiver does.
#[derive(Clone, Copy)]
struct Behaviour {
    status: u16,
    delay: Duration,
}

/// A relying party's back-channel endpoint: `/{client}` records each logout token it gets.
#[derive(Clone, Default)]
struct Receiver {
    tokens: Arc<Mutex<Vec<(String, String)>>>,
    behaviour: Arc<Mutex<HashMap<String, Behaviour>>>,
    /// Requests received, whatever was answered.
    hits: Arc<AtomicUsize>,
}

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: String,
}

async fn receive(
    State(r): State<Receiver>,
    Path(client): Path<String>,
    Form(form): Form<LogoutForm>,
) -> AxumStatus {
    r.hits.fetch_add(1, Ordering::SeqCst);
    let b = r
        .behaviour
        .lock()
        .unwrap()
        .get(&client)
        .copied()
        .unwrap_or(Behaviour {
            status: 200,
            delay: Duration::ZERO,
        });
    tokio::time::sleep(b.delay).await;
    if b.status == 200 {
        r.tokens.lock().unwrap().push((client, form.logout_token));
    }
    AxumStatus::from_u16(b.status).unwrap()
}

impl Receiver {
    /// Serves on `addr` (port 0 for any free port); answers the bound address.
    async fn serve(&self, addr: SocketAddr) -> SocketAddr {
        let app = axum::Router::new()
            .route("/{client}", axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let bound = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        bound
    }

    fn set(&self, client: &str, status: u16, delay: Duration) {
        self.behaviour
            .lock()
            .unwrap()
            .insert(client.into(), Behaviour { status, delay });
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn tokens_for(&self, client: &str) -> Vec<String> {
        let tokens = self.tokens.lock().unwrap();
        tokens
            .iter()
            .filter(|(c, _)| c == client)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

/// How the server delivers: its `--delivery-*` settings.
#[derive(Clone)]
struct Delivery {
    timeout_ms: u64,
    first_backoff_ms: u64,
    max_backoff_secs: u64,
    retry_for_secs: u64,
    poll_ms: u64,
    max_in_flight: usize,
    max_in_flight_per_client: usize,
}

impl Delivery {
    fn args(&self) -> Vec<String> {
        [
            ("--delivery-timeout-ms", self.timeout_ms.to_string()),
            (
                "--delivery-first-backoff-ms",
                self.first_backoff_ms.to_string(),
            ),
            (
                "--delivery-max-backoff-secs",
                self.max_backoff_secs.to_string(),
            ),
            ("--delivery-retry-for-secs", self.retry_for_secs.to_string()),
            ("--delivery-poll-ms", self.poll_ms.to_string()),
            ("--delivery-max-in-flight", self.max_in_flight.to_string()),
            (
                "--delivery-max-in-flight-per-client",
                self.max_in_flight_per_client.to_string(),
            ),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }
}

/// Fast retries, for tests.
fn quick() -> Delivery {
    Delivery {
        timeout_ms: 1500,
        first_backoff_ms: 50,
        max_backoff_secs: 1,
        retry_for_secs: 60,
        poll_ms: 50,
        max_in_flight: 64,
        max_in_flight_per_client: 4,
    }
}

/// The server with its delivery worker running.
struct Server {
    base: String,
    http: reqwest::Client,
    delivery: Delivery,
    srv: Running,
}

impl Server {
    /// The receivers on 127.0.0.1 are allow-listed.
    async fn start(store: Store, delivery: Delivery) -> Server {
        Self::start_with(store, delivery, "127.0.0.1").await
    }

    /// With `--backchannel-allow-hosts` `allow_hosts` (none when empty).
    async fn start_with(store: Store, delivery: Delivery, allow_hosts: &str) -> Server {
        let args = Self::args(&delivery, allow_hosts);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let srv = Running::start(store, &args).await;
        Server {
            base: srv.base.clone(),
            http: srv.http.clone(),
            delivery,
            srv,
        }
    }

    fn args(delivery: &Delivery, allow_hosts: &str) -> Vec<String> {
        let mut args = vec!["--issuer".to_owned(), ISSUER.to_owned()];
        if !allow_hosts.is_empty() {
            args.extend([
                "--backchannel-allow-hosts".to_owned(),
                allow_hosts.to_owned(),
            ]);
        }
        args.extend(delivery.args());
        args
    }

    /// The server started again on its store with another `--backchannel-allow-hosts`, as when
    /// an operator changes it: what was registered stays, deliveries follow the new list.
    async fn restart_allowing(self, allow_hosts: &str) -> Server {
        let args = Self::args(&self.delivery, allow_hosts);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let srv = self.srv.restart(&args).await;
        Server {
            base: srv.base.clone(),
            http: srv.http.clone(),
            delivery: self.delivery,
            srv,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, v) = self.call(method, path, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Realm `r` with the given clients registered at the receiver.
    async fn realm_with_clients(&self, receiver: SocketAddr, clients: &[&str]) {
        self.ok(Method::PUT, "/api/v1/realms/r", json!({})).await;
        for c in clients {
            self.register(c, &format!("http://{receiver}/{c}")).await;
        }
    }

    /// Registers client `c` of realm `r` (or replaces its registration) with this URI.
    async fn register(&self, c: &str, uri: &str) {
        let reg = json!({
            "name": format!("The {c} app"),
            "backchannel_logout_uri": uri,
            "backchannel_logout_session_required": true,
        });
        self.ok(Method::PUT, &format!("/api/v1/realms/r/clients/{c}"), reg)
            .await;
    }

    async fn session(&self, subject: &str, clients: &[&str]) -> (String, String) {
        let v = self
            .ok(
                Method::POST,
                "/api/v1/realms/r/sessions",
                json!({"subject_id": subject, "client_ids": clients}),
            )
            .await;
        (
            v["sid"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Starts a session of `subject` with `clients` and removes it, queueing their logouts.
    async fn end_session(&self, subject: &str, clients: &[&str]) -> String {
        let (sid, _) = self.session(subject, clients).await;
        let remove = json!({"sids": [sid]});
        self.ok(Method::POST, "/api/v1/realms/r/sessions/end", remove)
            .await;
        sid
    }

    async fn deliveries(&self, query: &str) -> Value {
        let path = format!("/api/v1/realms/r/backchannel-deliveries{query}");
        let (status, v) = self.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// Waits until `check` holds for the delivery listing, or fails after 20 s.
    async fn wait_for(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..400 {
            let v = self.deliveries("").await;
            if check(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out waiting for {what}: {}",
            self.deliveries("").await
        );
    }

    async fn jwks(&self) -> JwkSet {
        let resp = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }
}

/// Verifies a logout token's signature against the JWKS and every claim the spec requires;
/// answers its claims.
fn verify(jwks: &JwkSet, token: &str, client: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some(TOKEN_TYPE));
    let kid = header.kid.expect("a kid");
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[client]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["iss", "aud", "exp", "iat", "sub"]);
    let claims: Value = jsonwebtoken::decode(token, &key, &validation)
        .unwrap()
        .claims;
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, LIFETIME_SECS);
    assert!((iat - Utc::now().timestamp()).abs() < 60, "iat is now");
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    assert_eq!(claims["events"], json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
    assert!(
        claims.get("nonce").is_none(),
        "a logout token never carries nonce"
    );
    claims
}

async fn a_scoped_revocation_reaches_the_client_as_a_verified_logout_token(store: Store) {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let server = Server::start(store, quick()).await;
    server.realm_with_clients(at, &["crm", "mail"]).await;
    let (sid, _) = server.session("alice", &["crm", "mail"]).await;
    let (_, _) = server.session("bob", &["crm"]).await;
    let grant = |kind: &str, client: &str, token: Option<&str>| {
        json!({
            "kind": kind, "subject_id": "alice", "sid": sid, "client_id": client,
            "expires_at": (Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339(),
            "token": token, "scopes": ["openid", "profile"],
        })
    };
    let grants = "/api/v1/realms/r/grants";
    for g in [
        grant("refresh_token", "crm", Some("crm-refresh-token-of-alice")),
        grant("refresh_token", "mail", Some("mail-refresh-token-of-alice")),
        grant("consent", "crm", None),
        grant("consent", "mail", None),
    ] {
        let (status, v) = server.call(Method::POST, grants, Some(g)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let introspect = |token: &'static str| {
        let server = &server;
        async move {
            // RFC 7662 sends the token as a form.
            let resp = server
                .http
                .post(format!("{}/api/v1/realms/r/grants/introspect", server.base))
                .bearer_auth(KEY)
                .form(&[("token", token)])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.unwrap()
        }
    };
    let live = introspect("crm-refresh-token-of-alice").await;
    assert_eq!(live["active"], true);
    assert_eq!(live["scope"], "openid profile");

    let outcome = server
        .ok(
            Method::POST,
            "/api/v1/realms/r/sessions/end",
            json!({"sids": [sid], "client_ids": ["crm"], "reason": "stolen laptop"}),
        )
        .await;
    assert_eq!(outcome["sessions_removed"], 1);
    assert_eq!(outcome["tokens_revoked"], 1);
    assert_eq!(outcome["consents_revoked"], 1);
    assert_eq!(outcome["clients_notified"], 1);

    assert_eq!(
        introspect("crm-refresh-token-of-alice").await,
        json!({"active": false})
    );
    assert_eq!(
        introspect("mail-refresh-token-of-alice").await["active"],
        true
    );
    let (_, left) = server
        .call(Method::GET, &format!("{grants}?subject_id=alice"), None)
        .await;
    let kinds: Vec<(&str, &str)> = left["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["kind"].as_str().unwrap(),
                g["client_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(kinds.contains(&("consent", "mail")), "{kinds:?}");
    assert!(!kinds.contains(&("consent", "crm")), "{kinds:?}");

    let page = server
        .wait_for("delivery", |v| v["counts"]["delivered"] == 1)
        .await;
    let d = &page["deliveries"][0];
    let tokens = receiver.tokens_for("crm");
    assert_eq!(tokens.len(), 1);
    assert!(
        receiver.tokens_for("mail").is_empty(),
        "mail was out of scope"
    );
    let claims = verify(&server.jwks().await, &tokens[0], "crm");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["aud"], "crm");
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_jti"], claims["jti"]);
    assert_eq!(d["reason"], "revoked");
}

async fn an_unreachable_client_is_retried_until_it_answers(store: Store) {
    // Reserve a port, then close it: the client is down.
    let receiver = Receiver::default();
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = reserved.local_addr().unwrap();
    drop(reserved);
    let server = Server::start(store, quick()).await;
    server.realm_with_clients(at, &["crm"]).await;
    let (sid, token) = server.session("carol", &["crm"]).await;
    let v = server
        .ok(
            Method::POST,
            "/api/v1/realms/r/sessions/logout",
            json!({"token": token}),
        )
        .await;
    assert_eq!(v["logged_out"], true);

    let page = server
        .wait_for("failed attempts", |v| {
            v["deliveries"][0]["attempts"].as_u64().unwrap_or(0) >= 2
        })
        .await;
    let d = &page["deliveries"][0];
    assert_eq!(d["status"], "pending");
    assert_eq!(d["last_error"], "connection refused", "{d}");

    receiver.serve(at).await;
    server
        .wait_for("delivery", |v| v["counts"]["delivered"] == 1)
        .await;
    let tokens = receiver.tokens_for("crm");
    assert_eq!(tokens.len(), 1, "delivered exactly once");
    let claims = verify(&server.jwks().await, &tokens[0], "crm");
    assert_eq!(
        (claims["sub"].as_str(), claims["sid"].as_str()),
        (Some("carol"), Some(sid.as_str()))
    );
}

async fn one_slow_client_does_not_hold_up_the_others(store: Store) {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    receiver.set("slow", 200, Duration::from_secs(30));
    // The slow client's backlog is far larger than what the worker has in flight at once.
    let server = Server::start(
        store,
        Delivery {
            max_in_flight: 8,
            max_in_flight_per_client: 2,
            ..quick()
        },
    )
    .await;
    server.realm_with_clients(at, &["slow", "fast"]).await;
    for i in 0..40 {
        server.session(&format!("user{i}"), &["slow", "fast"]).await;
    }
    let all = "/api/v1/realms/r/sessions/end-all";
    server.ok(Method::POST, all, json!({})).await;
    let page = server
        .wait_for("the fast client's deliveries", |v| {
            v["counts"]["delivered"] == 40
        })
        .await;
    let pending = &page["counts"]["pending"];
    assert_eq!(pending, 40, "the slow client's are still pending");
    assert_eq!(receiver.tokens_for("fast").len(), 40, "each exactly once");
    let timed_out = server
        .wait_for("timeouts", |v| {
            v["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["last_error"] == "timeout")
        })
        .await;
    assert_eq!(
        timed_out["counts"]["failed"], 0,
        "still within the retry window"
    );
}

async fn a_delivery_that_gave_up_is_failed_until_retried_by_hand(store: Store) {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    receiver.set("crm", 500, Duration::ZERO);
    let server = Server::start(
        store,
        Delivery {
            retry_for_secs: 1, // the shortest retry window the server takes
            ..quick()
        },
    )
    .await;
    server.realm_with_clients(at, &["crm"]).await;
    let (sid, _) = server.session("dave", &["crm"]).await;
    server
        .ok(
            Method::POST,
            "/api/v1/realms/r/sessions/end",
            json!({"sids": [sid]}),
        )
        .await;
    let failed = server
        .wait_for("failure", |v| v["counts"]["failed"] == 1)
        .await;
    let d = &failed["deliveries"][0];
    assert_eq!(d["last_error"], "HTTP 500");
    assert!(
        d["attempts"].as_u64().unwrap() >= 2,
        "retried before giving up: {d}"
    );
    let only_failed = server.deliveries("?status=failed").await;
    assert_eq!(only_failed["deliveries"].as_array().unwrap().len(), 1);
    let (status, v) = server
        .call(
            Method::GET,
            "/api/v1/realms/r/backchannel-deliveries?status=lost",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("pending, delivered or failed"));

    receiver.set("crm", 204, Duration::ZERO);
    let id = d["id"].as_u64().unwrap();
    let retry = format!("/api/v1/realms/r/backchannel-deliveries/{id}/retry");
    let v = server.ok(Method::POST, &retry, json!({})).await;
    assert_eq!(v["status"], "pending");
    server
        .wait_for("delivery", |v| v["counts"]["delivered"] == 1)
        .await;
    let (status, v) = server.call(Method::POST, &retry, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/realms/r/backchannel-deliveries/987654/retry",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = server
        .call(
            Method::POST,
            "/api/v1/realms/r/backchannel-deliveries/latest/retry",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "invalid_path", "{v}");
}

async fn rotation_keeps_the_old_key_published_and_signs_with_the_new_one(store: Store) {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let server = Server::start(store, quick()).await;
    server.realm_with_clients(at, &["crm"]).await;
    let before = server.jwks().await;
    assert_eq!(before.keys.len(), 1);
    let old_kid = before.keys[0].common.key_id.clone().unwrap();
    let v = server
        .ok(Method::POST, "/api/v1/signing-keys/rotate", json!({}))
        .await;
    let new_kid = v["current_kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    let after = server.jwks().await;
    assert!(after.find(&old_kid).is_some() && after.find(&new_kid).is_some());

    let (sid, _) = server.session("erin", &["crm"]).await;
    server
        .ok(
            Method::POST,
            "/api/v1/realms/r/sessions/end",
            json!({"sids": [sid]}),
        )
        .await;
    server
        .wait_for("delivery", |v| v["counts"]["delivered"] == 1)
        .await;
    let token = &receiver.tokens_for("crm")[0];
    assert_eq!(
        jsonwebtoken::decode_header(token).unwrap().kid,
        Some(new_kid)
    );
    verify(&after, token, "crm");
}

/// Whether every delivery listed is a failed attempt with this `last_error`.
fn all_failed_with(page: &Value, category: &str, attempts: u64) -> bool {
    let deliveries = page["deliveries"].as_array().unwrap();
    !deliveries.is_empty()
        && deliveries
            .iter()
            .all(|d| d["last_error"] == category && d["attempts"].as_u64().unwrap_or(0) >= attempts)
}

async fn registration_refuses_non_public_targets_and_plain_http(store: Store) {
    let server = Server::start_with(store, quick(), "").await;
    server.ok(Method::PUT, "/api/v1/realms/r", json!({})).await;
    let dev = json!({"backchannel_allow_http": true});
    server.ok(Method::PUT, "/api/v1/realms/dev", dev).await;
    for (realm, uri, why) in [
        ("r", "http://127.0.0.1:9/logout", "must use https"),
        ("r", "http://example.com/logout", "must use https"),
        ("r", "https://10.0.0.1/", "10.0.0.1 is a private address"),
        (
            "r",
            "https://169.254.169.254/latest/meta-data",
            "169.254.169.254 is a link-local address",
        ),
        ("r", "https://[::1]/", "::1 is a loopback address"),
        ("r", "https://[::ffff:127.0.0.1]/", "is a loopback address"),
        ("r", "https://localhost/", "names the local machine"),
        ("dev", "http://127.0.0.1:9/logout", "is a loopback address"),
        ("dev", "http://[fe80::1]/", "is a link-local address"),
    ] {
        let path = format!("/api/v1/realms/{realm}/clients/crm");
        let body = json!({ "backchannel_logout_uri": uri });
        let (status, v) = server.call(Method::PUT, &path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(
            v["error"]["code"], "backchannel_uri_not_allowed",
            "{uri}: {v}"
        );
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{uri}: {message}");
        assert!(
            message.contains("--backchannel-allow-hosts"),
            "{uri}: {message}"
        );
        let (status, _) = server.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri} was not registered");
    }
    // Plain http to a public address where the realm allows http. Nothing is sent there.
    let public = json!({"backchannel_logout_uri": "http://93.184.216.34/logout"});
    let (status, v) = server
        .call(Method::PUT, "/api/v1/realms/dev/clients/crm", Some(public))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

async fn only_allow_listed_hosts_are_exempt_at_registration(store: Store) {
    let server = Server::start(store, quick()).await;
    // The realm does not allow http; the allow-listed host may use it anyway.
    server.ok(Method::PUT, "/api/v1/realms/r", json!({})).await;
    server.register("crm", "http://127.0.0.1:9/logout").await;
    for uri in ["https://127.0.0.2/logout", "https://localhost/logout"] {
        let body = json!({ "backchannel_logout_uri": uri });
        let (status, v) = server
            .call(Method::PUT, "/api/v1/realms/r/clients/mail", Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(
            v["error"]["code"], "backchannel_uri_not_allowed",
            "{uri}: {v}"
        );
    }
}

async fn a_target_the_worker_does_not_allow_is_never_contacted(store: Store) {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    // Registered while 127.0.0.1 was allow-listed; delivered by the server started again
    // without it.
    let server = Server::start(store, quick()).await;
    server.realm_with_clients(at, &["crm"]).await;
    let server = server.restart_allowing("").await;
    let allow_http = json!({"backchannel_allow_http": true});
    server.ok(Method::PUT, "/api/v1/realms/r", allow_http).await;
    server.end_session("frank", &["crm"]).await;
    let page = server
        .wait_for("refused attempts", |v| {
            all_failed_with(v, "address not allowed", 2)
        })
        .await;
    assert_eq!(page["deliveries"][0]["status"], "pending", "{page}");
    // The realm's current setting applies: without http, the scheme is refused first.
    let no_http = json!({"backchannel_allow_http": false});
    server.ok(Method::PUT, "/api/v1/realms/r", no_http).await;
    server
        .wait_for("http refused", |v| {
            all_failed_with(v, "http not allowed", 3)
        })
        .await;
    assert_eq!(receiver.hits(), 0, "the receiver was never contacted");
}

async fn an_https_uri_at_a_plain_http_receiver_is_a_tls_error(store: Store) {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let server = Server::start(store, quick()).await;
    server.ok(Method::PUT, "/api/v1/realms/r", json!({})).await;
    server.register("crm", &format!("https://{at}/crm")).await;
    server.end_session("gina", &["crm"]).await;
    server
        .wait_for("TLS failures", |v| all_failed_with(v, "tls error", 2))
        .await;
    assert_eq!(receiver.hits(), 0);
}

async fn a_retry_goes_to_the_uri_registered_now(store: Store) {
    let old = Receiver::default();
    let old_at = old.serve("127.0.0.1:0".parse().unwrap()).await;
    old.set("crm", 503, Duration::ZERO);
    let new = Receiver::default();
    let new_at = new.serve("127.0.0.1:0".parse().unwrap()).await;
    let server = Server::start(store, quick()).await;
    server.realm_with_clients(old_at, &["crm"]).await;
    let sid = server.end_session("hank", &["crm"]).await;
    let page = server
        .wait_for("a 503", |v| all_failed_with(v, "HTTP 503", 1))
        .await;
    assert_eq!(page["deliveries"][0]["status"], "pending", "{page}");

    server
        .register("crm", &format!("http://{new_at}/crm"))
        .await;
    server
        .wait_for("delivery", |v| v["counts"]["delivered"] == 1)
        .await;
    let tokens = new.tokens_for("crm");
    assert_eq!(tokens.len(), 1, "the new URI got the logout token");
    let claims = verify(&server.jwks().await, &tokens[0], "crm");
    assert_eq!(claims["sid"], sid.as_str());
    assert!(old.hits() >= 1 && old.tokens_for("crm").is_empty());
}

async fn a_delivery_for_a_client_no_longer_registered_gives_up(store: Store) {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    receiver.set("crm", 503, Duration::ZERO);
    receiver.set("mail", 503, Duration::ZERO);
    let server = Server::start(store, quick()).await;
    server.realm_with_clients(at, &["crm", "mail"]).await;
    server.end_session("ivy", &["crm", "mail"]).await;
    server
        .wait_for("503s", |v| {
            v["deliveries"].as_array().unwrap().len() == 2 && all_failed_with(v, "HTTP 503", 1)
        })
        .await;

    // One client is deleted, the other keeps its registration but without a URI.
    let (status, _) = server
        .call(Method::DELETE, "/api/v1/realms/r/clients/crm", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let no_uri = json!({"name": "Mail"});
    server
        .ok(Method::PUT, "/api/v1/realms/r/clients/mail", no_uri)
        .await;
    // An attempt already on its way to mail's old URI when the registration changed still gets
    // its 503 and is retried once more: the condition is the state both deliveries end in, not
    // the first moment two are failed.
    let page = server
        .wait_for("giving up", |v| {
            v["counts"]["failed"] == 2 && all_failed_with(v, "client no longer registered", 2)
        })
        .await;
    assert!(
        page["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "failed"),
        "{page}"
    );
}

async fn localhost_is_delivered_to_only_while_allow_listed(store: Store) {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let uri = format!("http://localhost:{}/crm", at.port());
    // Allow-listed by name: the worker's resolver keeps its loopback addresses.
    let other_store = store.new_like();
    let allowed = Server::start_with(store, quick(), "localhost").await;
    allowed.ok(Method::PUT, "/api/v1/realms/r", json!({})).await;
    allowed.register("crm", &uri).await;
    allowed.end_session("jane", &["crm"]).await;
    allowed
        .wait_for("delivery", |v| v["counts"]["delivered"] == 1)
        .await;
    assert_eq!(receiver.tokens_for("crm").len(), 1);

    // Only its address is on the worker's list: the name itself is refused (even where the realm
    // allows http).
    let refused = Server::start_with(other_store, quick(), "localhost").await;
    let allow_http = json!({"backchannel_allow_http": true});
    refused
        .ok(Method::PUT, "/api/v1/realms/r", allow_http)
        .await;
    refused.register("crm", &uri).await;
    let refused = refused.restart_allowing("127.0.0.1").await;
    refused.end_session("kim", &["crm"]).await;
    refused
        .wait_for("refused attempts", |v| {
            all_failed_with(v, "address not allowed", 2)
        })
        .await;
    assert_eq!(receiver.hits(), 1, "only the allow-listed delivery arrived");
}

on_both_stores!(
    a_scoped_revocation_reaches_the_client_as_a_verified_logout_token,
    an_unreachable_client_is_retried_until_it_answers,
    one_slow_client_does_not_hold_up_the_others,
    a_delivery_that_gave_up_is_failed_until_retried_by_hand,
    rotation_keeps_the_old_key_published_and_signs_with_the_new_one,
    registration_refuses_non_public_targets_and_plain_http,
    only_allow_listed_hosts_are_exempt_at_registration,
    a_target_the_worker_does_not_allow_is_never_contacted,
    an_https_uri_at_a_plain_http_receiver_is_a_tls_error,
    a_retry_goes_to_the_uri_registered_now,
    a_delivery_for_a_client_no_longer_registered_gives_up,
    localhost_is_delivered_to_only_while_allow_listed,
);
