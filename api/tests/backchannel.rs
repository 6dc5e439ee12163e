//! Back-channel logout end to end on 127.0.0.1: the API and its delivery worker over a real sled
//! directory, and a real HTTP receiver that verifies every logout token against the published
//! JWKS. Also: revoked tokens introspect as inactive, other clients' consents survive a scoped
//! revocation, an unreachable client is retried until it answers, one slow client does not hold up
//! the others, and a failed delivery can be retried by hand. Where notifications may go: refused
//! targets at registration (JSON 400s) and at delivery (never contacted), `last_error` as a
//! category, and each attempt following the client's current registration.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::ApiState;
use axum::extract::{Path, State};
use axum::http::StatusCode as AxumStatus;
use axum::Form;
use chrono::Utc;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use service::admins::AdminAccounts;
use service::api_keys::{ApiKeys, Scope};
use service::backchannel::logout_token::{BACKCHANNEL_LOGOUT_EVENT, LIFETIME_SECS, TOKEN_TYPE};
use service::backchannel::AllowHosts;
use service::backchannel::{Backchannel, DeliveryConfig, SigningKeys};
use service::SessionService;
use sessions::store::SledStore;

const KEY: &str = "backchannel-test-key-0123456789";
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

/// The API with its delivery worker running, on a fresh store.
struct Server {
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    /// The receivers on 127.0.0.1 are allow-listed.
    async fn start(config: DeliveryConfig) -> Server {
        Self::start_with(config, "127.0.0.1", "127.0.0.1").await
    }

    /// With one allow-list for registering clients and another for delivering, as when the
    /// server restarts with a different `--backchannel-allow-hosts`.
    async fn start_with(config: DeliveryConfig, registering: &str, delivering: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let keys = Arc::new(ApiKeys::open(store.clone()).unwrap());
        keys.register("root", KEY, &Scope::ALL, Utc::now()).unwrap();
        let signing = Arc::new(SigningKeys::open(store.clone(), Utc::now()).unwrap());
        let with_allow_list = |list: &str| {
            let hosts = AllowHosts::parse(list).unwrap();
            Arc::new(Backchannel::new(signing.clone(), ISSUER).with_allow_hosts(hosts))
        };
        let backchannel = with_allow_list(registering);
        let worker = match delivering == registering {
            true => backchannel.clone(),
            false => with_allow_list(delivering),
        };
        tokio::spawn(service::backchannel::worker::run(
            store.clone(),
            worker,
            config,
        ));
        let admins = Arc::new(AdminAccounts::open(store.clone()).unwrap());
        let app = api::router(ApiState {
            service: SessionService::new(store, keys, admins, backchannel),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server {
            base,
            http: reqwest::Client::new(),
            _dir: dir,
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
        self.ok(Method::POST, "/api/v1/realms/r/sessions/remove", remove)
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

/// Fast retries, for tests.
fn quick() -> DeliveryConfig {
    DeliveryConfig {
        timeout: Duration::from_millis(1500),
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        retry_for: Duration::from_secs(60),
        poll_every: Duration::from_millis(50),
        ..Default::default()
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

#[tokio::test(flavor = "multi_thread")]
async fn a_scoped_revocation_reaches_the_client_as_a_verified_logout_token() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let server = Server::start(quick()).await;
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
            "/api/v1/realms/r/sessions/remove",
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

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_client_is_retried_until_it_answers() {
    // Reserve a port, then close it: the client is down.
    let receiver = Receiver::default();
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = reserved.local_addr().unwrap();
    drop(reserved);
    let server = Server::start(quick()).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn one_slow_client_does_not_hold_up_the_others() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    receiver.set("slow", 200, Duration::from_secs(30));
    // The slow client's backlog is far larger than what the worker has in flight at once.
    let server = Server::start(DeliveryConfig {
        max_in_flight: 8,
        max_in_flight_per_client: 2,
        ..quick()
    })
    .await;
    server.realm_with_clients(at, &["slow", "fast"]).await;
    for i in 0..40 {
        server.session(&format!("user{i}"), &["slow", "fast"]).await;
    }
    let all = "/api/v1/realms/r/sessions/logout-all";
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

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_that_gave_up_is_failed_until_retried_by_hand() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    receiver.set("crm", 500, Duration::ZERO);
    let server = Server::start(DeliveryConfig {
        retry_for: Duration::from_millis(300),
        ..quick()
    })
    .await;
    server.realm_with_clients(at, &["crm"]).await;
    let (sid, _) = server.session("dave", &["crm"]).await;
    server
        .ok(
            Method::POST,
            "/api/v1/realms/r/sessions/remove",
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

#[tokio::test(flavor = "multi_thread")]
async fn rotation_keeps_the_old_key_published_and_signs_with_the_new_one() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let server = Server::start(quick()).await;
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
            "/api/v1/realms/r/sessions/remove",
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

#[tokio::test(flavor = "multi_thread")]
async fn registration_refuses_non_public_targets_and_plain_http() {
    let server = Server::start_with(quick(), "", "").await;
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

#[tokio::test(flavor = "multi_thread")]
async fn only_allow_listed_hosts_are_exempt_at_registration() {
    let server = Server::start_with(quick(), "127.0.0.1", "127.0.0.1").await;
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

#[tokio::test(flavor = "multi_thread")]
async fn a_target_the_worker_does_not_allow_is_never_contacted() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    // Registered while 127.0.0.1 was allow-listed; delivered by a server started without it.
    let server = Server::start_with(quick(), "127.0.0.1", "").await;
    server.realm_with_clients(at, &["crm"]).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn an_https_uri_at_a_plain_http_receiver_is_a_tls_error() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let server = Server::start(quick()).await;
    server.ok(Method::PUT, "/api/v1/realms/r", json!({})).await;
    server.register("crm", &format!("https://{at}/crm")).await;
    server.end_session("gina", &["crm"]).await;
    server
        .wait_for("TLS failures", |v| all_failed_with(v, "tls error", 2))
        .await;
    assert_eq!(receiver.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_goes_to_the_uri_registered_now() {
    let old = Receiver::default();
    let old_at = old.serve("127.0.0.1:0".parse().unwrap()).await;
    old.set("crm", 503, Duration::ZERO);
    let new = Receiver::default();
    let new_at = new.serve("127.0.0.1:0".parse().unwrap()).await;
    let server = Server::start(quick()).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_for_a_client_no_longer_registered_gives_up() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    receiver.set("crm", 503, Duration::ZERO);
    receiver.set("mail", 503, Duration::ZERO);
    let server = Server::start(quick()).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn localhost_is_delivered_to_only_while_allow_listed() {
    let receiver = Receiver::default();
    let at = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let uri = format!("http://localhost:{}/crm", at.port());
    // Allow-listed by name: the worker's resolver keeps its loopback addresses.
    let allowed = Server::start_with(quick(), "localhost", "localhost").await;
    allowed.ok(Method::PUT, "/api/v1/realms/r", json!({})).await;
    allowed.register("crm", &uri).await;
    allowed.end_session("jane", &["crm"]).await;
    allowed
        .wait_for("delivery", |v| v["counts"]["delivered"] == 1)
        .await;
    assert_eq!(receiver.tokens_for("crm").len(), 1);

    // Only its address is on the worker's list: the name itself is refused (even where the realm
    // allows http).
    let refused = Server::start_with(quick(), "localhost", "127.0.0.1").await;
    let allow_http = json!({"backchannel_allow_http": true});
    refused
        .ok(Method::PUT, "/api/v1/realms/r", allow_http)
        .await;
    refused.register("crm", &uri).await;
    refused.end_session("kim", &["crm"]).await;
    refused
        .wait_for("refused attempts", |v| {
            all_failed_with(v, "address not allowed", 2)
        })
        .await;
    assert_eq!(receiver.hits(), 1, "only the allow-listed delivery arrived");
}
