//! API keys limited to some realms, tested through the server exactly as the binary wires it
//! (`server::serve`), on 127.0.0.1 over a real data directory: a limited key reaches its realms
//! and is refused (403 `forbidden`) everywhere else; keys without realms reach every realm.

mod common;

use std::process::Command as Process;

use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::cli::{ApiKeyCommand, Cli, Command};

use common::{Running, Store, KEY};

/// What these tests do with the bootstrap key.
trait WithBootstrapKey {
    async fn realms(&self, names: &[&str]);
    async fn create_key_from(&self, body: Value) -> Value;
    async fn session(&self, realm: &str) -> (String, String);
}

impl WithBootstrapKey for Running {
    /// Creates realms with the bootstrap key.
    async fn realms(&self, names: &[&str]) {
        for name in names {
            let (s, v) = self
                .api(
                    Method::PUT,
                    &format!("/api/v1/realms/{name}"),
                    Some(json!({})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }

    /// Creates a key through the API with the bootstrap key; answers the created key.
    async fn create_key_from(&self, body: Value) -> Value {
        let (s, created) = self.api(Method::POST, "/api/v1/api-keys", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        created
    }

    /// A session of `realm` made with the bootstrap key: (sid, token).
    async fn session(&self, realm: &str) -> (String, String) {
        let (s, v) = self
            .api(
                Method::POST,
                &format!("/api/v1/realms/{realm}/sessions"),
                Some(json!({"subject_id": "alice"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        (
            v["sid"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }
}

/// The answer is a 403 `forbidden` JSON error because the key does not reach `realm`.
fn refused_for_realm(s: StatusCode, v: &Value, realm: &str, what: &str) {
    assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {v}");
    assert_eq!(v["error"]["code"], "forbidden", "{what}: {v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("realm '{realm}'")) && message.contains("limited to realms"),
        "{what}: {message}"
    );
}

/// Creates, validates and ends a session and attaches a client to one in `realm` with `key`:
/// every step works.
async fn data_plane_works(srv: &Running, key: &str, realm: &str) {
    let (s, created) = srv
        .api_with(
            key,
            Method::POST,
            &format!("/api/v1/realms/{realm}/sessions"),
            Some(json!({"subject_id": "alice"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "create in {realm}: {created}");
    let token = created["token"].as_str().unwrap();
    let sid = created["sid"].as_str().unwrap();
    let (s, v) = srv
        .api_with(
            key,
            Method::POST,
            &format!("/api/v1/realms/{realm}/sessions/{sid}/clients"),
            Some(json!({"client_id": "crm"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "client in {realm}: {v}");
    let (s, v) = srv
        .api_with(
            key,
            Method::POST,
            &format!("/api/v1/realms/{realm}/sessions/validate"),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "validate in {realm}: {v}");
    assert_eq!(v["valid"], true, "{v}");
    let (s, v) = srv
        .api_with(
            key,
            Method::POST,
            &format!("/api/v1/realms/{realm}/sessions/logout"),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "logout in {realm}: {v}");
    assert_eq!(v["logged_out"], true, "{v}");
}

/// Every step of the data plane in `realm` with `key` is refused, and the realm's session
/// (`sid`, `token`, made with another key) is untouched.
async fn data_plane_refused(srv: &Running, key: &str, realm: &str, sid: &str, token: &str) {
    let calls = [
        ("sessions", json!({"subject_id": "mallory"})),
        ("sessions/validate", json!({"token": token})),
        (
            &format!("sessions/{sid}/clients"),
            json!({"client_id": "crm"}),
        ),
        ("sessions/logout", json!({"token": token})),
    ];
    for (path, body) in calls {
        let (s, v) = srv
            .api_with(
                key,
                Method::POST,
                &format!("/api/v1/realms/{realm}/{path}"),
                Some(body),
            )
            .await;
        refused_for_realm(s, &v, realm, path);
    }
    let (s, v) = srv
        .api(
            Method::GET,
            &format!("/api/v1/realms/{realm}/sessions/{sid}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["client_ids"], json!([]), "no client was attached: {v}");
    let (s, v) = srv
        .api(
            Method::GET,
            &format!("/api/v1/realms/{realm}/sessions?subject_id=mallory"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total_count"], 0, "no session was created: {v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_limited_to_a_realm_is_refused_everywhere_else() {
    let srv = Running::start(Store::embedded(), &[]).await;
    srv.realms(&["a", "b"]).await;
    let limited = srv
        .create_key_from(json!({"name": "idp-a", "scopes": ["sessions:issue"], "realms": ["a"]}))
        .await;
    assert_eq!(limited["realms"], json!(["a"]), "{limited}");
    let limited = limited["secret"].as_str().unwrap().to_owned();
    let every = srv
        .create_key_from(json!({"name": "idp", "scopes": ["sessions:issue"]}))
        .await;
    assert_eq!(every["realms"], Value::Null, "{every}");
    let every = every["secret"].as_str().unwrap().to_owned();

    // In its realm, the limited key does everything the data plane does.
    data_plane_works(&srv, &limited, "a").await;
    // In another realm it is refused, even with a live session's token and id.
    let (sid, token) = srv.session("b").await;
    data_plane_refused(&srv, &limited, "b", &sid, &token).await;
    // ...and in a realm that does not exist: 403, not 404, so it learns nothing of it.
    let (s, v) = srv
        .api_with(
            &limited,
            Method::POST,
            "/api/v1/realms/nowhere/sessions",
            Some(json!({"subject_id": "a"})),
        )
        .await;
    refused_for_realm(s, &v, "nowhere", "unknown realm");
    let (s, v) = srv
        .api(
            Method::POST,
            "/api/v1/realms/b/sessions/validate",
            Some(json!({"token": token, "refresh": false})),
        )
        .await;
    assert_eq!((s, &v["valid"]), (StatusCode::OK, &json!(true)), "{v}");

    // Keys without realms (created so, and the bootstrap key) reach both realms.
    for key in [every.as_str(), KEY] {
        data_plane_works(&srv, key, "a").await;
        data_plane_works(&srv, key, "b").await;
    }

    // The listing shows each key's realms; null is every realm.
    let (s, list) = srv.api(Method::GET, "/api/v1/api-keys", None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let realms_of = |name: &str| {
        list["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {list}"))["realms"]
            .clone()
    };
    assert_eq!(realms_of("idp-a"), json!(["a"]));
    assert_eq!(realms_of("idp"), Value::Null);
    assert_eq!(realms_of("bootstrap"), Value::Null);

    // A key cannot be limited to no realm or to one no path can name.
    for realms in [json!([]), json!(["_admin"]), json!(["a/b"])] {
        let (s, v) = srv
            .api(
                Method::POST,
                "/api/v1/api-keys",
                Some(json!({"name": "bad", "scopes": ["sessions:issue"], "realms": realms})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{realms}: {v}");
    }
    // The audit log says what the key was limited to.
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    assert!(
        audit.to_string().contains("realms a"),
        "the creation is audited with its realms: {audit}"
    );
    srv.stop().await;
}

/// A path of the document with its parameters filled in, `realm` for `{realm}`.
fn fill(path: &str, realm: &str) -> String {
    path.replace("{realm}", realm)
        .replace("{sid}", "00000000-0000-4000-8000-000000000000")
        .replace("{client_id}", "crm")
        .replace("{id}", "1")
        .replace("{name}", "idp-a")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_a_limited_key_outside_its_realms() {
    let srv = Running::start(Store::embedded(), &[]).await;
    srv.realms(&["a", "b", "c"]).await;
    let created = srv
        .create_key_from(json!({
            "name": "ops-ab",
            "scopes": ["sessions:issue", "sessions:admin"],
            "realms": ["b", "a"],
        }))
        .await;
    assert_eq!(created["realms"], json!(["a", "b"]), "sorted: {created}");
    let key = created["secret"].as_str().unwrap().to_owned();

    let (s, doc) = srv.api(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let realms_field = &doc["components"]["schemas"]["NewApiKey"]["properties"]["realms"];
    assert!(
        realms_field["items"]["pattern"].is_string(),
        "the document describes the key's realms: {realms_field}"
    );
    assert!(
        doc["components"]["schemas"]["ApiKeyInfo"]["properties"]["realms"].is_object(),
        "listings show the realms"
    );

    let mut realm_routes = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("security").is_none() {
                continue; // public: health, metrics, JWKS, the document
            }
            let method: Method = method.to_uppercase().parse().unwrap();
            let body = ["POST", "PUT", "PATCH"]
                .contains(&method.as_str())
                .then(|| json!({}));
            let what = format!("{method} {path}");
            if path.contains("{realm}") {
                realm_routes += 1;
                let (s, v) = srv
                    .api_with(&key, method.clone(), &fill(path, "c"), body.clone())
                    .await;
                refused_for_realm(s, &v, "c", &what);
                // Its own realms are not refused for the realm (other answers may follow from
                // the empty body or the made-up ids).
                let (s, v) = srv.api_with(&key, method, &fill(path, "b"), body).await;
                assert!(
                    !v.to_string().contains("limited to realms"),
                    "{what} in its realm: {s} {v}"
                );
            } else if path.starts_with("/api/v1/ssf/") {
                // A receiver's routes take a receiver key (limited ones below).
                let (s, v) = srv.api_with(&key, method, path, body).await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {v}");
                assert_eq!(v["error"]["code"], "insufficient_scope", "{what}: {v}");
            } else if path == "/api/v1/realms" {
                // Listing realms shows a limited key only its realms.
                let (s, v) = srv.api_with(&key, method, path, None).await;
                assert_eq!(s, StatusCode::OK, "{v}");
                let names: Vec<&str> = v["realms"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["name"].as_str().unwrap())
                    .collect();
                assert_eq!(names, ["a", "b"], "{v}");
            } else {
                // Routes that span every realm (API keys, the audit log, signing keys).
                let (s, v) = srv.api_with(&key, method, &fill(path, ""), body).await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {v}");
                assert_eq!(v["error"]["code"], "forbidden", "{what}: {v}");
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("spans every realm"),
                    "{what}: {v}"
                );
            }
        }
    }
    assert!(realm_routes >= 20, "{realm_routes} realm routes seen");

    // Nothing the refused calls named changed: the key still exists, realm c has no session.
    let (_, list) = srv.api(Method::GET, "/api/v1/api-keys", None).await;
    assert!(list.to_string().contains("ops-ab"), "{list}");
    let (_, c) = srv.api(Method::GET, "/api/v1/realms/c", None).await;
    assert_eq!(c["session_count"], 0, "{c}");
    // The bootstrap key lists every realm.
    let (_, all) = srv.api(Method::GET, "/api/v1/realms", None).await;
    assert_eq!(all["realms"].as_array().unwrap().len(), 3, "{all}");

    // A receiver key limited to realms streams only their endings: by default all of them, and
    // never another realm's.
    let receiver = srv
        .create_key_from(
            json!({"name": "rcv-ab", "scopes": ["ssf:receiver"], "realms": ["a", "b"]}),
        )
        .await;
    let receiver = receiver["secret"].as_str().unwrap().to_owned();
    let create = async |body: Value| {
        srv.api_with(&receiver, Method::POST, "/api/v1/ssf/streams", Some(body))
            .await
    };
    let (s, v) = create(json!({"realms": ["a", "c"]})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("'c'"),
        "{v}"
    );
    let (s, v) = create(json!({})).await;
    assert_eq!(
        (s, &v["realms"]),
        (StatusCode::CREATED, &json!(["a", "b"])),
        "{v}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboards_key_form_limits_a_key_to_the_realms_it_names() {
    let srv = Running::start(Store::embedded(), &[]).await;
    srv.realms(&["a", "b", "c"]).await;
    let cookie = srv.sign_in().await;
    for (name, realms) in [("form-ab", "a, b"), ("form-all", "")] {
        let resp = srv
            .server_fn(
                "create_api_key",
                &[("name", name), ("issue", "on"), ("realms", realms)],
                Some(&cookie),
            )
            .await;
        assert!(resp.status().is_success(), "{name}: {}", resp.status());
    }
    let (_, list) = srv.api(Method::GET, "/api/v1/api-keys", None).await;
    let realms_of = |name: &str| {
        list["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {list}"))["realms"]
            .clone()
    };
    assert_eq!(realms_of("form-ab"), json!(["a", "b"]));
    assert_eq!(
        realms_of("form-all"),
        Value::Null,
        "an empty field: every realm"
    );
    // The page lists each key's realms, or "all realms".
    let page = srv
        .http
        .get(srv.url("/api-keys"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"name="realms""#) && page.contains(r#"<th scope="col">Realms</th>"#),
        "the form has a realms field and the table a realms column: {page}"
    );
    assert!(
        page.contains("<td>a, b</td>") && page.contains("<td>all realms</td>"),
        "{page}"
    );
    srv.stop().await;
}

fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Process::new(env!("CARGO_BIN_EXE_server"))
        .arg("api-key")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("SESSIONS_STORE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("server api-key runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_creates_a_key_limited_to_the_realms_it_names() {
    let argv = [
        "server",
        "api-key",
        "create",
        "--data-dir",
        "./data",
        "--name",
        "idp-ab",
        "--scope",
        "sessions:issue",
        "--realm",
        "a",
        "--realm",
        "b",
    ];
    let Command::ApiKey(ApiKeyCommand::Create { realms, scopes, .. }) =
        Cli::try_parse_from(argv).unwrap().command
    else {
        panic!("an api-key create command")
    };
    assert_eq!(realms, ["a", "b"]);
    assert_eq!(scopes, [service::api_keys::Scope::Issue]);
    let Command::ApiKey(ApiKeyCommand::Create { realms, .. }) =
        Cli::try_parse_from(&argv[..9]).unwrap().command
    else {
        panic!("an api-key create command")
    };
    assert!(realms.is_empty(), "no --realm: every realm");

    // The binary, run while the server is stopped, as the README says.
    let store = Store::embedded();
    let dir = store.data_dir();
    let create = ["create", "--scope", "sessions:issue", "--name"];
    let (ok, limited, err) = cli(
        dir,
        &[&create[..], &["idp-ab", "--realm", "a", "--realm", "b"]].concat(),
    );
    assert!(ok, "{err}");
    assert!(err.contains("realms a, b"), "{err}");
    let (ok, every, err) = cli(dir, &[&create[..], &["idp"]].concat());
    assert!(ok, "{err}");
    assert!(err.contains("every realm"), "{err}");
    let (ok, _, err) = cli(dir, &[&create[..], &["bad", "--realm", "_admin"]].concat());
    assert!(!ok, "a reserved realm is refused");
    assert!(err.contains("_admin"), "{err}");
    let (ok, list, err) = cli(dir, &["list"]);
    assert!(ok, "{err}");
    let line = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} in {list}"))
            .to_owned()
    };
    assert!(line("idp-ab").ends_with("\ta,b"), "{list}");
    assert!(line("idp").ends_with("\t*"), "{list}");

    let srv = Running::start(store.clone(), &[]).await;
    srv.realms(&["a", "b", "c"]).await;
    data_plane_works(&srv, &limited, "a").await;
    data_plane_works(&srv, &limited, "b").await;
    let (sid, token) = srv.session("c").await;
    data_plane_refused(&srv, &limited, "c", &sid, &token).await;
    for realm in ["a", "b", "c"] {
        data_plane_works(&srv, &every, realm).await;
    }
    srv.stop().await;
}
