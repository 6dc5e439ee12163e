//! The JSON API over HTTP, through the server exactly as the binary wires it (`server::serve`,
//! behind the request guard), on 127.0.0.1, on the embedded store and on PostgreSQL.

mod common;

use std::collections::HashSet;

use chrono::Utc;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use common::{Running, Store};

/// A running server and keys with each scope, created through the API with the bootstrap key.
struct Server {
    base: String,
    http: Client,
    /// Every scope.
    root_key: String,
    issue_key: String,
    admin_key: String,
    _srv: Running,
}

impl Server {
    async fn start(store: Store) -> Server {
        Server::start_with(store, &[]).await
    }

    async fn start_with(store: Store, extra: &[&str]) -> Server {
        // Clients register back-channel URIs on 127.0.0.1, which only an allow-list permits.
        let mut args = vec!["--backchannel-allow-hosts", "127.0.0.1"];
        args.extend(extra);
        let srv = Running::start(store, &args).await;
        let every = ["sessions:issue", "sessions:admin", "sessions:read"];
        let root_key = srv.create_key("root", &every).await;
        let issue_key = srv.create_key("idp", &["sessions:issue"]).await;
        let admin_key = srv.create_key("ops", &["sessions:admin"]).await;
        Server {
            base: srv.base.clone(),
            http: srv.http.clone(),
            root_key,
            issue_key,
            admin_key,
            _srv: srv,
        }
    }

    async fn call(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn root(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Some(&self.root_key), method, path, body).await
    }

    async fn realm(&self, name: &str) {
        let (s, body) = self
            .root(
                Method::PUT,
                &format!("/api/v1/realms/{name}"),
                Some(json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    async fn create(&self, realm: &str, subject: &str, name: &str) -> Value {
        let body = json!({"subject_id": subject, "display_name": name, "client_ids": ["portal"], "ip": "10.0.0.1"});
        let (s, v) = self
            .root(
                Method::POST,
                &format!("/api/v1/realms/{realm}/sessions"),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {v}"))
}

async fn session_lifecycle_over_http(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("acme").await;
    let created = srv.create("acme", "alice", "Alice Smith").await;
    let token = created["token"].as_str().unwrap();
    let sid = created["sid"].as_str().unwrap();
    assert!(token.len() >= 22);

    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/acme/sessions/validate",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["valid"], true);
    assert_eq!(v["sid"], sid);
    assert_eq!(v["subject_id"], "alice");
    assert!(v["expires_at"].is_string(), "{v}");
    assert!(v.get("session").is_none(), "slim by default: {v}");
    let (_, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/acme/sessions/validate",
            Some(json!({"token": token, "refresh": false, "fields": "full"})),
        )
        .await;
    assert_eq!(v["session"]["sid"], sid);
    assert_eq!(v["session"]["display_name"], "Alice Smith");
    assert!(!v.to_string().contains(token), "token leaked: {v}");

    let (s, v) = srv
        .root(
            Method::GET,
            &format!("/api/v1/realms/acme/sessions/{sid}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["subject_id"], "alice");
    assert!(!v.to_string().contains(token));

    let (s, _) = srv
        .root(
            Method::POST,
            &format!("/api/v1/realms/acme/sessions/{sid}/clients"),
            Some(json!({"client_id": "mail"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = srv
        .root(
            Method::GET,
            "/api/v1/realms/acme/sessions?client_id=mail",
            None,
        )
        .await;
    assert_eq!(v["total_count"], 1);

    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/acme/sessions/logout",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!((s, v["logged_out"].clone()), (StatusCode::OK, json!(true)));
    let (_, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/acme/sessions/validate",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(v, json!({"valid": false}));
    let (_, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/acme/sessions/logout",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(v["logged_out"], false);
    let (s, v) = srv
        .root(
            Method::GET,
            &format!("/api/v1/realms/acme/sessions/{sid}"),
            None,
        )
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::NOT_FOUND, "session_not_found")
    );
}

async fn properties_follow_the_realm_whitelist(store: Store) {
    let srv = Server::start(store).await;
    let (s, _) = srv
        .root(
            Method::PUT,
            "/api/v1/realms/acme",
            Some(json!({"property_whitelist": ["theme"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let body = json!({"subject_id": "bob", "properties": {"theme": "dark", "internal": "x"}});
    let (_, created) = srv
        .root(Method::POST, "/api/v1/realms/acme/sessions", Some(body))
        .await;
    let token = created["token"].as_str().unwrap();
    let url = format!(
        "{}/api/v1/realms/acme/sessions/current/properties",
        srv.base
    );

    let resp = srv
        .http
        .get(&url)
        .bearer_auth(&srv.issue_key)
        .header("X-Session-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"properties": {"theme": "dark"}})
    );

    let resp = srv
        .http
        .patch(&url)
        .bearer_auth(&srv.issue_key)
        .header("X-Session-Token", token)
        .json(&json!({"properties": {"internal": "y"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        error_code(&resp.json().await.unwrap()),
        "property_not_allowed"
    );

    let resp = srv
        .http
        .patch(&url)
        .bearer_auth(&srv.issue_key)
        .header("X-Session-Token", token)
        .json(&json!({"properties": {"theme": "light"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"properties": {"theme": "light"}})
    );

    let resp = srv
        .http
        .get(&url)
        .bearer_auth(&srv.issue_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

async fn keys_and_scopes_are_enforced(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("acme").await;
    let list = "/api/v1/realms/acme/sessions";
    let (s, v) = srv.call(None, Method::GET, list, None).await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (s, _) = srv
        .call(Some("sk_not_a_key"), Method::GET, list, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = srv
        .call(Some(&srv.issue_key), Method::GET, list, None)
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    let (s, _) = srv
        .call(Some(&srv.admin_key), Method::GET, list, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = srv
        .call(
            Some(&srv.admin_key),
            Method::POST,
            list,
            Some(json!({"subject_id": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = srv
        .call(
            Some(&srv.issue_key),
            Method::POST,
            list,
            Some(json!({"subject_id": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = srv
        .call(
            Some(&srv.issue_key),
            Method::PUT,
            "/api/v1/realms/other",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = srv
        .call(Some(&srv.issue_key), Method::GET, "/api/v1/audit", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn bad_input_is_a_clear_4xx_and_changes_nothing(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("acme").await;
    srv.create("acme", "alice", "Alice").await;
    let sessions = "/api/v1/realms/acme/sessions";
    let cases: Vec<(Method, String, Option<Value>, StatusCode, &str)> = vec![
        (
            Method::POST,
            sessions.into(),
            Some(json!({"subject_id": "a", "colour": "red"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Method::POST,
            sessions.into(),
            Some(json!({"subject_id": 5})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Method::POST,
            sessions.into(),
            Some(json!({"subject_id": "x".repeat(300)})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            sessions.into(),
            Some(json!({"subject_id": "a\u{0007}b"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            format!("{sessions}?count=0"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            format!("{sessions}?count=5000"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            format!("{sessions}?count=lots"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            format!("{sessions}?sort=sideways"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            format!("{sessions}?colour=red"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            format!("{sessions}?results_token=garbage"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_results_token",
        ),
        (
            Method::GET,
            format!("{sessions}?sid=not-a-uuid"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            format!("{sessions}?subject_id={}", "s".repeat(300)),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            format!("{sessions}/remove"),
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            format!("{sessions}/remove"),
            Some(json!({"subject_id": "alice", "sids": ["x"]})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            "/api/v1/realms/nope/sessions".into(),
            None,
            StatusCode::NOT_FOUND,
            "realm_not_found",
        ),
        (
            Method::POST,
            "/api/v1/realms/nope/sessions".into(),
            Some(json!({"subject_id": "a"})),
            StatusCode::NOT_FOUND,
            "realm_not_found",
        ),
        (
            Method::GET,
            "/api/v1/realms/a%2Fb".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::PUT,
            "/api/v1/realms/a%01b".into(),
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::PUT,
            format!("/api/v1/realms/{}", "r".repeat(65)),
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::PUT,
            "/api/v1/realms/acme".into(),
            Some(json!({"idle_timeout_secs": 0})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::PUT,
            "/api/v1/realms/_admin".into(),
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "reserved_realm",
        ),
        (
            Method::GET,
            "/api/v1/realms/_admin/sessions".into(),
            None,
            StatusCode::BAD_REQUEST,
            "reserved_realm",
        ),
        (
            Method::PUT,
            "/api/v1/realms/acme".into(),
            Some(json!({"max_sessions_per_subject": 0})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            "/api/v1/audit?count=0".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            "/api/v1/audit?results_token=%%%".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_results_token",
        ),
        (
            Method::GET,
            "/api/v1/nothing-here".into(),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            sessions.into(),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (s, v) = srv.root(method.clone(), &path, body.clone()).await;
        assert_eq!(
            (s, error_code(&v)),
            (status, code),
            "{method} {path} {body:?} -> {v}"
        );
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }

    // Malformed JSON, a missing content type and an oversized body.
    let url = format!("{}{sessions}", srv.base);
    let resp = srv
        .http
        .post(&url)
        .bearer_auth(&srv.root_key)
        .header("content-type", "application/json")
        .body("{\"subject_id\":")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&resp.json().await.unwrap()), "malformed_json");
    let resp = srv
        .http
        .post(&url)
        .bearer_auth(&srv.root_key)
        .body("{\"subject_id\":\"a\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        error_code(&resp.json().await.unwrap()),
        "missing_content_type"
    );
    let huge = json!({"subject_id": "a", "display_name": "x".repeat(200_000)});
    let resp = srv
        .http
        .post(&url)
        .bearer_auth(&srv.root_key)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&resp.json().await.unwrap()), "body_too_large");

    // Nothing changed: still one session, still one realm.
    let (_, v) = srv.root(Method::GET, "/api/v1/realms", None).await;
    assert_eq!(v["realms"].as_array().unwrap().len(), 1);
    assert_eq!(v["realms"][0]["session_count"], 1);
}

async fn paging_contract_through_http(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("acme").await;
    let mut all = HashSet::new();
    for i in 0..23 {
        let v = srv
            .create(
                "acme",
                &format!("user{}", i % 4),
                &format!("User {i} Smith"),
            )
            .await;
        all.insert(v["sid"].as_str().unwrap().to_owned());
    }
    let base = "/api/v1/realms/acme/sessions?count=5&display_name=smi";
    let (_, first) = srv.root(Method::GET, base, None).await;
    assert_eq!(first["total_count"], 23);
    assert_eq!(first["total_pages"], 5);
    assert_eq!(first["current_page"], 1);
    assert_eq!(first["has_prev"], false);
    let mut seen = Vec::new();
    let mut pages = vec![first.clone()];
    let mut page = first;
    loop {
        for r in page["results"].as_array().unwrap() {
            seen.push(r["sid"].as_str().unwrap().to_owned());
        }
        if page["has_next"] == false {
            break;
        }
        let token = page["results_token"].as_str().unwrap();
        page = srv
            .root(Method::GET, &format!("{base}&results_token={token}"), None)
            .await
            .1;
        pages.push(page.clone());
    }
    assert_eq!(seen.len(), 23);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), all);
    assert_eq!(pages.last().unwrap()["current_page"], 5);

    // Back one page: the same rows as before.
    let token = pages[4]["results_token"].as_str().unwrap();
    let (_, back) = srv
        .root(
            Method::GET,
            &format!("{base}&results_token={token}&prior=true"),
            None,
        )
        .await;
    assert_eq!(back["results"], pages[3]["results"]);
    assert_eq!(back["current_page"], 4);

    // The token is bound to its query.
    let (s, v) = srv
        .root(
            Method::GET,
            &format!("/api/v1/realms/acme/sessions?count=5&results_token={token}"),
            None,
        )
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::BAD_REQUEST, "results_token_mismatch")
    );
}

async fn realms_are_isolated(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("a").await;
    srv.realm("b").await;
    let created = srv.create("a", "alice", "Alice").await;
    let (token, sid) = (
        created["token"].as_str().unwrap(),
        created["sid"].as_str().unwrap(),
    );

    let (_, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/b/sessions/validate",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(v["valid"], false);
    let (s, _) = srv
        .root(
            Method::GET,
            &format!("/api/v1/realms/b/sessions/{sid}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = srv
        .root(
            Method::GET,
            "/api/v1/realms/b/sessions?subject_id=alice",
            None,
        )
        .await;
    assert_eq!(v["total_count"], 0);
    let (_, v) = srv.root(Method::GET, "/api/v1/realms/b", None).await;
    assert_eq!(v["session_count"], 0);
    let (_, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/b/sessions/end",
            Some(json!({"sids": [sid]})),
        )
        .await;
    assert_eq!(v["not_found"], json!([sid]));
    let (_, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/b/sessions/end-all",
            Some(json!({})),
        )
        .await;
    assert_eq!(v["sessions_removed"], 0);
    let (_, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/b/sessions/logout",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(v["logged_out"], false);

    let (_, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/a/sessions/validate",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(v["valid"], true);
    let (_, v) = srv.root(Method::GET, "/api/v1/realms/a", None).await;
    assert_eq!(v["session_count"], 1);
}

async fn ending_preview_and_audit(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("acme").await;
    let a1 = srv.create("acme", "alice", "Alice").await;
    srv.create("acme", "alice", "Alice").await;
    let b = srv.create("acme", "bob", "Bob").await;
    let remove = "/api/v1/realms/acme/sessions/end";

    let (_, v) = srv
        .root(
            Method::POST,
            remove,
            Some(json!({"subject_id": "alice", "dry_run": true})),
        )
        .await;
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["removed"].as_array().unwrap().len(), 2);
    let (_, realm) = srv.root(Method::GET, "/api/v1/realms/acme", None).await;
    assert_eq!(realm["session_count"], 3, "a dry run removed something");

    let body = json!({"sids": [a1["sid"], "00000000-0000-4000-8000-000000000000"], "reason": "lost laptop"});
    let (s, v) = srv.root(Method::POST, remove, Some(body)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["removed"], json!([a1["sid"]]));
    assert_eq!(
        v["not_found"],
        json!(["00000000-0000-4000-8000-000000000000"])
    );
    assert_eq!(v["sessions_removed"], 1);
    for field in ["tokens_revoked", "consents_revoked", "clients_notified"] {
        assert!(v[field].is_u64(), "{field} missing: {v}");
    }

    let (_, v) = srv
        .root(Method::POST, remove, Some(json!({"subject_id": "alice"})))
        .await;
    assert_eq!(v["sessions_removed"], 1);
    let (_, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/acme/sessions/end-all",
            Some(json!({"reason": "incident"})),
        )
        .await;
    assert_eq!(v["sessions_removed"], 1);
    let (_, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/acme/sessions/validate",
            Some(json!({"token": b["token"]})),
        )
        .await;
    assert_eq!(v["valid"], false);

    let (_, audit) = srv.root(Method::GET, "/api/v1/audit?count=2", None).await;
    let rows = audit["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["action"], "end_all_sessions");
    assert_eq!(rows[0]["reason"], "incident");
    assert_eq!(rows[0]["actor"], "api-key:root");
    assert_eq!(audit["has_next"], true);
    let token = audit["results_token"].as_str().unwrap();
    let (_, older) = srv
        .root(
            Method::GET,
            &format!("/api/v1/audit?count=10&results_token={token}"),
            None,
        )
        .await;
    let older = older["results"].as_array().unwrap();
    assert!(older.iter().any(|e| e["reason"] == "lost laptop"));
    assert!(older.iter().any(|e| e["action"] == "create_realm"));
}

/// The calls' former names (`remove`, `logout-all`) answer as `end` and `end-all` do, and the
/// OpenAPI document marks them, and only them, deprecated.
async fn former_paths_end_sessions_as_the_new_ones_do(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("acme").await;
    let a = srv.create("acme", "alice", "Alice").await;
    srv.create("acme", "bob", "Bob").await;
    srv.create("acme", "carol", "Carol").await;
    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/acme/sessions/remove",
            Some(json!({"subject_id": "alice"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["removed"], json!([a["sid"]]));
    assert_eq!(v["sessions_removed"], 1);
    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/acme/sessions/logout-all",
            Some(json!({"reason": "rotation"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sessions_removed"], 2);
    let (_, realm) = srv.root(Method::GET, "/api/v1/realms/acme", None).await;
    assert_eq!(realm["session_count"], 0);

    let (_, doc) = srv
        .call(None, Method::GET, "/api/v1/openapi.json", None)
        .await;
    let mut deprecated: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, item)| {
            let ops = item.as_object().unwrap().values();
            ops.filter_map(|op| op.get("deprecated")).any(|d| d == true)
        })
        .map(|(path, _)| path.as_str())
        .collect();
    deprecated.sort();
    assert_eq!(
        deprecated,
        [
            "/api/v1/realms/{realm}/sessions/logout-all",
            "/api/v1/realms/{realm}/sessions/remove"
        ]
    );
}

async fn openapi_document_matches_the_served_routes(store: Store) {
    let srv = Server::start(store).await;
    let (s, doc) = srv
        .call(None, Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = HashSet::new();
    let mut public = HashSet::new();
    for (path, item) in paths {
        for method in ["get", "put", "post", "patch", "delete"] {
            if let Some(op) = item.get(method) {
                documented.insert((method.to_uppercase(), path.clone()));
                if op.get("security").is_none() {
                    public.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    // The public operations answer without a key.
    for (method, path) in &public {
        assert_eq!(method, "GET", "{path}");
        let (s, v) = srv.call(None, Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
    }
    // Every other documented operation is served: without a key it is a 401, never a 404 or 405.
    for (method, path) in documented.difference(&public) {
        let concrete = path
            .replace("{realm}", "acme")
            .replace("{sid}", "00000000-0000-4000-8000-000000000000");
        let (s, v) = srv
            .call(
                None,
                Method::from_bytes(method.as_bytes()).unwrap(),
                &concrete,
                Some(json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: {v}");
    }
    // And the contract's operations are all documented.
    let expected = [
        ("POST", "/api/v1/realms/{realm}/sessions"),
        ("GET", "/api/v1/realms/{realm}/sessions"),
        ("POST", "/api/v1/realms/{realm}/sessions/validate"),
        ("POST", "/api/v1/realms/{realm}/sessions/logout"),
        ("POST", "/api/v1/realms/{realm}/sessions/{sid}/clients"),
        ("GET", "/api/v1/realms/{realm}/sessions/current/properties"),
        (
            "PATCH",
            "/api/v1/realms/{realm}/sessions/current/properties",
        ),
        ("GET", "/api/v1/realms/{realm}/sessions/{sid}"),
        ("POST", "/api/v1/realms/{realm}/sessions/end"),
        ("POST", "/api/v1/realms/{realm}/sessions/end-all"),
        ("POST", "/api/v1/realms/{realm}/sessions/remove"),
        ("POST", "/api/v1/realms/{realm}/sessions/logout-all"),
        ("GET", "/api/v1/realms/{realm}/sessions/export"),
        ("GET", "/api/v1/realms/{realm}/sessions/ended"),
        ("GET", "/api/v1/realms/{realm}/sessions/anomalies"),
        ("GET", "/api/v1/realms/{realm}/sessions/ended/export"),
        ("PUT", "/api/v1/realms/{realm}"),
        ("GET", "/api/v1/realms/{realm}"),
        ("GET", "/api/v1/realms"),
        ("GET", "/api/v1/realms/{realm}/overview"),
        ("GET", "/api/v1/audit"),
        ("PUT", "/api/v1/realms/{realm}/clients/{client_id}"),
        ("GET", "/api/v1/realms/{realm}/clients/{client_id}"),
        ("DELETE", "/api/v1/realms/{realm}/clients/{client_id}"),
        ("GET", "/api/v1/realms/{realm}/clients"),
        ("POST", "/api/v1/realms/{realm}/grants"),
        ("GET", "/api/v1/realms/{realm}/grants"),
        ("POST", "/api/v1/realms/{realm}/grants/introspect"),
        ("POST", "/api/v1/realms/{realm}/grants/revoke"),
        ("POST", "/api/v1/realms/{realm}/grants/revoke-subject"),
        ("GET", "/api/v1/api-keys"),
        ("POST", "/api/v1/api-keys"),
        ("DELETE", "/api/v1/api-keys/{name}"),
        ("GET", "/api/v1/realms/{realm}/backchannel-deliveries"),
        (
            "POST",
            "/api/v1/realms/{realm}/backchannel-deliveries/{id}/retry",
        ),
        ("POST", "/api/v1/signing-keys/rotate"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/docs"),
        ("GET", "/api/v1/docs.js"),
        ("GET", "/.well-known/ssf-configuration"),
        ("POST", "/api/v1/ssf/streams"),
        ("GET", "/api/v1/ssf/streams"),
        ("PATCH", "/api/v1/ssf/streams"),
        ("PUT", "/api/v1/ssf/streams"),
        ("DELETE", "/api/v1/ssf/streams"),
        ("GET", "/api/v1/ssf/streams/status"),
        ("POST", "/api/v1/ssf/streams/status"),
        ("POST", "/api/v1/ssf/streams/verify"),
        ("POST", "/api/v1/ssf/poll"),
        ("GET", "/api/v1/signal-streams"),
        ("POST", "/api/v1/signal-streams/{stream_id}/status"),
    ];
    let expected: HashSet<_> = expected
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);
    let expected_public: HashSet<_> = [
        "/healthz",
        "/metrics",
        "/.well-known/jwks.json",
        "/.well-known/ssf-configuration",
        "/api/v1/openapi.json",
        "/api/v1/docs",
        "/api/v1/docs.js",
    ]
    .iter()
    .map(|p| ("GET".to_string(), p.to_string()))
    .collect();
    assert_eq!(public, expected_public);

    let (s, page) = srv.call(None, Method::GET, "/api/v1/docs", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page
        .as_str()
        .unwrap()
        .contains("/api/v1/realms/{realm}/sessions/end"));
}

async fn health_and_metrics(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("acme").await;
    srv.create("acme", "alice", "Alice").await;
    let (s, v) = srv.call(None, Method::GET, "/healthz", None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"status": "ok"})));
    let (s, v) = srv.call(None, Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.as_str().unwrap();
    assert!(text.contains("sessions_active{realm=\"acme\"} 1"), "{text}");
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("http_request_duration_seconds"), "{text}");
    assert!(text.contains("store_durable_flushes"), "{text}");
    let failed = "backchannel_deliveries{realm=\"acme\",status=\"failed\"} 0";
    assert!(text.contains(failed), "{text}");
}

async fn quota_conflicts_and_unknown_sessions(store: Store) {
    let srv = Server::start(store).await;
    let (s, _) = srv
        .root(
            Method::PUT,
            "/api/v1/realms/acme",
            Some(json!({"max_sessions_per_subject": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    srv.create("acme", "alice", "Alice").await;
    let body = json!({"subject_id": "alice"});
    let (s, v) = srv
        .root(Method::POST, "/api/v1/realms/acme/sessions", Some(body))
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::CONFLICT, "quota_exceeded")
    );
    let unknown = "/api/v1/realms/acme/sessions/00000000-0000-4000-8000-000000000000/clients";
    let (s, v) = srv
        .root(Method::POST, unknown, Some(json!({"client_id": "mail"})))
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::NOT_FOUND, "session_not_found")
    );
    let (_, v) = srv.root(Method::GET, "/api/v1/realms/acme", None).await;
    assert_eq!(v["session_count"], 1);
}

async fn clients_are_registered_counted_and_removed(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("acme").await;
    srv.create("acme", "alice", "Alice").await;
    srv.create("acme", "bob", "Bob").await;
    let reg = json!({"name": "Portal", "backchannel_logout_uri": "http://127.0.0.1:9/logout",
                     "backchannel_logout_session_required": true});
    let (s, v) = srv
        .root(Method::PUT, "/api/v1/realms/acme/clients/portal", Some(reg))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["session_count"], 2);
    assert_eq!(v["backchannel_logout_session_required"], true);
    let (_, v) = srv
        .root(
            Method::PUT,
            "/api/v1/realms/acme/clients/mail",
            Some(json!({})),
        )
        .await;
    assert_eq!(v["session_count"], 0);
    let (_, v) = srv
        .root(Method::GET, "/api/v1/realms/acme/clients", None)
        .await;
    let ids: Vec<&str> = v["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mail", "portal"]);

    for bad in [
        "ftp://example/logout",
        "http://?x",
        "http://:80/logout",
        "https://rp.example/logout#frag",
        "/logout",
        "https://rp.example/log out",
    ] {
        let body = json!({ "backchannel_logout_uri": bad });
        let (s, v) = srv
            .root(Method::PUT, "/api/v1/realms/acme/clients/crm", Some(body))
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{bad}: {v}"
        );
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("backchannel_logout_uri"), "{message}");
    }
    let upper = json!({"backchannel_logout_uri": "HTTPS://RP.example:8443/logout?x=1"});
    let (s, v) = srv
        .root(Method::PUT, "/api/v1/realms/acme/clients/shop", Some(upper))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = srv
        .root(Method::DELETE, "/api/v1/realms/acme/clients/shop", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = srv
        .root(Method::GET, "/api/v1/realms/acme/clients/crm", None)
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::NOT_FOUND, "client_not_found")
    );

    let (s, _) = srv
        .root(Method::DELETE, "/api/v1/realms/acme/clients/portal", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = srv
        .root(Method::DELETE, "/api/v1/realms/acme/clients/portal", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, realm) = srv.root(Method::GET, "/api/v1/realms/acme", None).await;
    assert_eq!(
        realm["session_count"], 2,
        "deleting a client ended sessions"
    );
    let (s, _) = srv
        .root(Method::GET, "/api/v1/realms/other/clients", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

impl Server {
    /// A session of `subject` from the client address `ip`; its sid.
    async fn create_from(&self, realm: &str, subject: &str, ip: &str) -> String {
        let body = json!({"subject_id": subject, "ip": ip});
        let (s, v) = self
            .root(
                Method::POST,
                &format!("/api/v1/realms/{realm}/sessions"),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["sid"].as_str().unwrap().to_owned()
    }

    /// A GET answered as text, with its status and content type.
    async fn get_text(&self, path: &str) -> (StatusCode, String, String) {
        let resp = self
            .http
            .get(format!("{}{}", self.base, path))
            .bearer_auth(&self.admin_key)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let kind = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, kind, resp.text().await.unwrap())
    }
}

async fn listing_and_removal_by_address_range_and_creation_time(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("inc").await;
    let early: Vec<String> = [
        srv.create_from("inc", "alice", "203.0.113.5").await,
        srv.create_from("inc", "bob", "203.0.113.77").await,
        srv.create_from("inc", "carol", "198.51.100.1").await,
    ]
    .into();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let cut = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let late = srv.create_from("inc", "dave", "203.0.113.9").await;
    let list = |q: String| {
        let srv = &srv;
        async move {
            let (s, v) = srv
                .root(
                    Method::GET,
                    &format!("/api/v1/realms/inc/sessions?{q}"),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            v
        }
    };
    let cidr = "ip=203.0.113.0%2F24";
    assert_eq!(list(cidr.into()).await["total_count"], 3);
    let before = format!("{cidr}&created_before={}", cut.replace('+', "%2B"));
    let page = list(before.clone()).await;
    assert_eq!(page["total_count"], 2);
    let listed: HashSet<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sid"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        HashSet::from([early[0].as_str(), early[1].as_str()])
    );
    assert_eq!(list(format!("created_after={cut}")).await["total_count"], 1);
    assert_eq!(
        list("ip=::ffff:198.51.100.1".into()).await["total_count"],
        1
    );

    // Malformed filters are 400s that say what is wrong.
    for (q, code) in [
        ("ip=203.0.113.0%2F33", "invalid_request"),
        ("ip=example.com", "invalid_request"),
        ("created_before=yesterday", "invalid_query"),
    ] {
        let (s, v) = srv
            .root(
                Method::GET,
                &format!("/api/v1/realms/inc/sessions?{q}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(error_code(&v), code, "{q}: {v}");
    }
    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/inc/sessions/end",
            Some(json!({"ip": "203.0.113.0/99"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("CIDR"),
        "{v}"
    );

    // Preview, then the removal, then its audit entry naming the filter.
    let request = json!({"ip": "203.0.113.0/24", "created_before": cut, "reason": "incident 7"});
    let mut preview = request.clone();
    preview["dry_run"] = json!(true);
    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/inc/sessions/end",
            Some(preview),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["removed"].as_array().unwrap().len(), 2);
    assert_eq!(
        list(String::new()).await["total_count"],
        4,
        "a preview ends nothing"
    );
    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/inc/sessions/end",
            Some(request),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sessions_removed"], 2);
    let left = list(String::new()).await;
    let left: HashSet<&str> = left["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sid"].as_str().unwrap())
        .collect();
    assert_eq!(left, HashSet::from([early[2].as_str(), late.as_str()]));
    let (_, audit) = srv.root(Method::GET, "/api/v1/audit?count=1", None).await;
    let entry = &audit["results"][0];
    assert_eq!(entry["action"], "end_sessions", "{audit}");
    let target = entry["target"].as_str().unwrap();
    assert!(target.contains("ip=203.0.113.0/24"), "{target}");
    assert!(target.contains("created_before="), "{target}");
    assert_eq!(entry["reason"], "incident 7");
}

async fn export_streams_every_match_as_csv_or_json_lines(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("exp").await;
    // More than one page of the export (1000 rows), half in 203.0.113.0/24.
    let mut in_range = HashSet::new();
    for i in 0..1100 {
        let ip = if i % 2 == 0 {
            format!("203.0.113.{}", i % 250)
        } else {
            format!("198.51.100.{}", i % 250)
        };
        let sid = srv.create_from("exp", &format!("user{i}"), &ip).await;
        if i % 2 == 0 {
            in_range.insert(sid);
        }
    }
    let (s, kind, csv) = srv
        .get_text("/api/v1/realms/exp/sessions/export?format=csv")
        .await;
    assert_eq!(s, StatusCode::OK, "{csv}");
    assert!(kind.starts_with("text/csv"), "{kind}");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "sid,subject_id,display_name,created_at,last_access_at,idle_expires_at,expires_at,client_ids,ip,user_agent,browser,os,device_type,country,city,asn,asn_org,last_ip,last_country"
    );
    let sids: HashSet<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(sids.len(), 1100, "every session once");

    let (s, kind, jsonl) = srv
        .get_text(
            "/api/v1/realms/exp/sessions/export?format=jsonl&ip=203.0.113.0/24&sort=last_access",
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{jsonl}");
    assert_eq!(kind, "application/jsonl");
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 550);
    let exported: HashSet<String> = rows
        .iter()
        .map(|r| r["sid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exported, in_range);

    for q in [
        "format=xlsx",
        "format=csv&ip=203.0.113.0%2F40",
        "format=csv&count=5",
        "ip=10.0.0.0%2F8",
    ] {
        let (s, kind, body) = srv
            .get_text(&format!("/api/v1/realms/exp/sessions/export?{q}"))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(kind.starts_with("application/json"), "{q}: {kind}");
    }
    let (s, _, _) = srv
        .get_text("/api/v1/realms/nope/sessions/export?format=csv")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (_, audit) = srv.root(Method::GET, "/api/v1/audit?count=1", None).await;
    let entry = &audit["results"][0];
    assert_eq!(entry["action"], "export_sessions", "{audit}");
    assert!(entry["target"]
        .as_str()
        .unwrap()
        .contains("ip=203.0.113.0/24"));
    assert_eq!(entry["actor"], "api-key:ops");
}

async fn the_overview_counts_sign_ins_and_endings_by_reason(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("acme").await;
    let reg = json!({"name": "Portal"});
    let (s, v) = srv
        .root(Method::PUT, "/api/v1/realms/acme/clients/portal", Some(reg))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut created = Vec::new();
    for subject in ["alice", "bob", "carol", "dave"] {
        created.push(srv.create("acme", subject, subject).await);
    }
    let (s, v) = srv
        .call(
            Some(&srv.issue_key),
            Method::POST,
            "/api/v1/realms/acme/sessions/logout",
            Some(json!({"token": created[0]["token"]})),
        )
        .await;
    assert_eq!((s, &v["logged_out"]), (StatusCode::OK, &json!(true)), "{v}");
    let removal = json!({"sids": [created[1]["sid"], created[2]["sid"]],
                         "reason": "incident 7"});
    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/acme/sessions/end",
            Some(removal),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let (s, v) = srv
        .call(
            Some(&srv.admin_key),
            Method::GET,
            "/api/v1/realms/acme/overview",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["realm"], "acme");
    assert_eq!(v["session_count"], 1);
    let hourly = v["hourly"].as_array().unwrap();
    let daily = v["daily"].as_array().unwrap();
    assert_eq!((hourly.len(), daily.len()), (24, 30));
    for series in [hourly, daily] {
        let sum = |f: &dyn Fn(&Value) -> &Value| -> u64 {
            series.iter().map(|b| f(b).as_u64().unwrap()).sum()
        };
        assert_eq!(sum(&|b| &b["sign_ins"]), 4);
        assert_eq!(sum(&|b| &b["ended"]["logout"]), 1);
        assert_eq!(sum(&|b| &b["ended"]["revoked"]), 2);
        assert_eq!(sum(&|b| &b["ended"]["expired"]), 0);
        assert_eq!(series.last().unwrap()["active_sessions"], 1);
        // The buckets before the test's first sign-in had no sessions.
        assert_eq!(series[0]["active_sessions"], 0);
    }
    assert_eq!(
        v["clients"],
        json!([{"client_id": "portal", "name": "Portal", "session_count": 1}])
    );

    let (s, v) = srv
        .call(
            Some(&srv.issue_key),
            Method::GET,
            "/api/v1/realms/acme/overview",
            None,
        )
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    let (s, v) = srv
        .root(Method::GET, "/api/v1/realms/nope/overview", None)
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::NOT_FOUND, "realm_not_found")
    );
    let (s, v) = srv
        .root(Method::GET, "/api/v1/realms/_admin/overview", None)
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::BAD_REQUEST, "reserved_realm")
    );
}

const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

/// A session's device is part of every session body; browser, OS and device type filter the
/// listing, the export and a removal; an unknown value is a 400 naming the filter.
async fn devices_show_filter_export_and_end(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("dev").await;
    let mut phones = HashSet::new();
    for (i, agent) in [FIREFOX, IPHONE, FIREFOX, IPHONE, FIREFOX]
        .iter()
        .enumerate()
    {
        let body = json!({"subject_id": format!("user{i}"), "user_agent": agent});
        let (s, v) = srv
            .root(Method::POST, "/api/v1/realms/dev/sessions", Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        if *agent == IPHONE {
            assert_eq!(
                v["device"],
                json!({"browser": "safari", "browser_version": 18, "os": "ios", "type": "phone"})
            );
            phones.insert(v["sid"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(v["device"]["browser"], "firefox", "{v}");
        }
    }
    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/dev/sessions",
            Some(json!({"subject_id": "nobody"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(v.get("device").is_none(), "no user agent, no device: {v}");
    assert!(
        v.get("network").is_none(),
        "no GeoIP database, no network: {v}"
    );

    let list = |q: &'static str| {
        let srv = &srv;
        async move {
            let (s, v) = srv
                .root(
                    Method::GET,
                    &format!("/api/v1/realms/dev/sessions?{q}"),
                    None,
                )
                .await;
            (s, v)
        }
    };
    let (s, v) = list("device_type=phone").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total_count"], 2);
    let listed: HashSet<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, phones);
    assert_eq!(list("browser=firefox&os=windows").await.1["total_count"], 3);
    assert_eq!(list("browser=firefox&os=ios").await.1["total_count"], 0);
    for q in ["browser=netscape", "os=Windows", "device_type=watch"] {
        let (s, v) = list(q).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{q}"
        );
        let name = q.split('=').next().unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(name),
            "{v}"
        );
    }

    let (s, _, csv) = srv
        .get_text("/api/v1/realms/dev/sessions/export?format=csv&browser=safari")
        .await;
    assert_eq!(s, StatusCode::OK, "{csv}");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows.iter()
            .all(|r| r.ends_with(",Safari 18,iOS,phone,,,,,,")),
        "{csv}"
    );

    let removal = json!({"device_type": "phone", "dry_run": true});
    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/dev/sessions/end",
            Some(removal),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let previewed: HashSet<String> = serde_json::from_value(v["removed"].clone()).unwrap();
    assert_eq!(previewed, phones);
    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/dev/sessions/end",
            Some(json!({"device_type": "phone"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sessions_removed"], 2, "{v}");
    assert_eq!(list("device_type=phone").await.1["total_count"], 0);
    assert_eq!(list("").await.1["total_count"], 4);
}

/// An ended session's history entry over HTTP: a logout and a revocation with its reason, each
/// once, with its device and each client's notice; filters, paging and bad input.
async fn ended_sessions_say_how_who_and_what_each_client_heard(store: Store) {
    let srv = Server::start(store).await;
    srv.realm("hist").await;
    let (s, v) = srv
        .root(
            Method::PUT,
            "/api/v1/realms/hist/clients/crm",
            Some(json!({"backchannel_logout_uri": "http://127.0.0.1:9/logout"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let create = |subject: &'static str| {
        let srv = &srv;
        async move {
            let body = json!({"subject_id": subject, "client_ids": ["crm", "wiki"],
                              "user_agent": FIREFOX, "ip": "203.0.113.9"});
            let (s, v) = srv
                .root(Method::POST, "/api/v1/realms/hist/sessions", Some(body))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            (
                v["sid"].as_str().unwrap().to_owned(),
                v["token"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (gone, token) = create("ann").await;
    let (revoked, _) = create("ben").await;
    let (s, _) = srv
        .root(
            Method::POST,
            "/api/v1/realms/hist/sessions/logout",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = srv
        .call(
            Some(&srv.admin_key),
            Method::POST,
            "/api/v1/realms/hist/sessions/end",
            Some(json!({"sids": [revoked], "reason": "phished"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let ended = |q: String| {
        let srv = &srv;
        async move {
            srv.root(
                Method::GET,
                &format!("/api/v1/realms/hist/sessions/ended?{q}"),
                None,
            )
            .await
        }
    };
    let (s, v) = ended(String::new()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total_count"], 2);
    assert_eq!(v["results"][0]["sid"], revoked.as_str(), "newest end first");
    let e = &v["results"][0];
    assert_eq!(
        (&e["how"], &e["actor"], &e["reason"]),
        (&json!("revoked"), &json!("api-key:ops"), &json!("phished"))
    );
    assert_eq!(e["device"]["browser"], "firefox");
    assert_eq!(e["ip"], "203.0.113.9");
    assert_eq!(e["clients"][0]["client_id"], "crm");
    assert_eq!(e["clients"][0]["notice"], "pending");
    assert!(e["clients"][0]["delivery_id"].is_u64());
    assert_eq!(
        e["clients"][1],
        json!({"client_id": "wiki", "notice": "not_sent"})
    );
    let (_, v) = ended(format!("sid={gone}")).await;
    assert_eq!(v["total_count"], 1);
    assert_eq!(v["results"][0]["how"], "logout");
    assert!(v["results"][0].get("actor").is_none(), "{v}");
    let (_, v) = ended("how=logout&subject_id=ben".into()).await;
    assert_eq!(v["total_count"], 0);
    let (_, v) = ended("count=1".into()).await;
    let next = v["next"].as_str().unwrap().to_owned();
    let (_, v) = ended(format!("count=1&after={next}")).await;
    assert_eq!(v["results"][0]["sid"], gone.as_str());
    assert!(v.get("next").is_none(), "{v}");

    for q in [
        "how=vanished",
        "count=0",
        "after=zzz",
        "sid=nope",
        "color=red",
    ] {
        let (s, v) = ended(q.into()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert!(v["error"]["message"].is_string(), "{q}: {v}");
    }
    let (s, v) = srv
        .root(Method::GET, "/api/v1/realms/nope/sessions/ended", None)
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::NOT_FOUND, "realm_not_found")
    );

    // The export: every match, a header row, audited.
    let (s, kind, csv) = srv
        .get_text("/api/v1/realms/hist/sessions/ended/export?format=csv")
        .await;
    assert_eq!(s, StatusCode::OK, "{csv}");
    assert!(kind.starts_with("text/csv"), "{kind}");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "sid,subject_id,display_name,ip,browser,os,device_type,created_at,last_access_at,ended_at,how,actor,reason,client_ids,notices,last_ip,country,last_country"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[0].starts_with(&revoked), "{csv}");
    assert!(
        rows[0].contains(",revoked,api-key:ops,phished,crm wiki,pending not_sent,"),
        "{csv}"
    );
    let (s, _, jsonl) = srv
        .get_text("/api/v1/realms/hist/sessions/ended/export?format=jsonl&how=logout")
        .await;
    assert_eq!(s, StatusCode::OK);
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["sid"], gone.as_str());
    for q in [
        "format=xlsx",
        "format=csv&how=vanished",
        "format=csv&count=5",
    ] {
        let (s, kind, body) = srv
            .get_text(&format!("/api/v1/realms/hist/sessions/ended/export?{q}"))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(kind.starts_with("application/json"), "{q}: {kind}");
    }
    let (_, audit) = srv.root(Method::GET, "/api/v1/audit?count=1", None).await;
    let entry = &audit["results"][0];
    assert_eq!(entry["action"], "export_ended_sessions", "{audit}");
    assert_eq!(entry["target"], "how=logout");
}

/// With GeoIP databases, every session is placed at create and when a refresh comes from a new
/// address; country and ASN filter the listing and the export; the anomaly counts and a removal
/// by anomaly (previewed first) agree; malformed values are 400s naming the field.
async fn networks_place_sessions_follow_refreshes_and_feed_anomaly_removals(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let (city, asn) = service::network::fixture::write(dir.path()).unwrap();
    let (city, asn) = (city.to_str().unwrap(), asn.to_str().unwrap());
    let srv = Server::start_with(store, &["--geoip-db", city, "--asn-db", asn]).await;
    // Every refresh written, so each one from a new address is kept at once.
    let every = json!({"latest_access_update_interval_secs": 0});
    let (s, v) = srv
        .root(Method::PUT, "/api/v1/realms/geo", Some(every))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let create = |subject: &'static str, ip: &'static str| {
        let srv = &srv;
        async move {
            let body = json!({"subject_id": subject, "ip": ip});
            let (s, v) = srv
                .root(Method::POST, "/api/v1/realms/geo/sessions", Some(body))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            v
        }
    };
    let berlin = create("alice", "203.0.113.4").await;
    assert_eq!(
        berlin["network"],
        json!({"country": "DE", "city": "Berlin", "asn": 3320, "asn_org": "Deutsche Telekom AG"})
    );
    assert_eq!(berlin["last_ip"], "203.0.113.4");
    assert_eq!(berlin["last_network"], berlin["network"]);
    let paris = create("alice", "198.51.100.4").await;
    let unplaced = create("bob", "10.0.0.1").await;
    assert!(unplaced.get("network").is_none(), "{unplaced}");

    let validate = |body: Value| {
        let srv = &srv;
        async move {
            srv.root(
                Method::POST,
                "/api/v1/realms/geo/sessions/validate",
                Some(body),
            )
            .await
        }
    };
    // A refresh from New York.
    let refresh = json!({"token": berlin["token"], "ip": "192.0.2.9", "fields": "full"});
    let (s, v) = validate(refresh).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["session"]["last_ip"], "192.0.2.9", "{v}");
    assert_eq!(v["session"]["last_network"]["country"], "US", "{v}");
    assert_eq!(v["session"]["network"]["country"], "DE", "{v}");
    // An empty or blank address names none.
    for blank in ["", "  "] {
        let look = json!({"token": paris["token"], "ip": blank, "fields": "full"});
        let (s, v) = validate(look).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["session"]["last_ip"], "198.51.100.4", "{v}");
    }
    // Without a refresh the address is not news.
    let look =
        json!({"token": paris["token"], "ip": "192.0.2.10", "refresh": false, "fields": "full"});
    let (s, v) = validate(look).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["session"]["last_ip"], "198.51.100.4", "{v}");
    let bad = json!({"token": berlin["token"], "ip": "203.0.113.4\u{0007}"});
    let (s, v) = validate(bad).await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{v}"
    );

    let count = |q: &'static str| {
        let srv = &srv;
        async move {
            let (s, v) = srv
                .root(
                    Method::GET,
                    &format!("/api/v1/realms/geo/sessions?{q}"),
                    None,
                )
                .await;
            (s, v)
        }
    };
    assert_eq!(count("country=us").await.1["total_count"], 1);
    assert_eq!(count("country=DE").await.1["total_count"], 1);
    assert_eq!(count("asn=AS3215").await.1["total_count"], 1);
    assert_eq!(count("anomaly=country_changed").await.1["total_count"], 1);
    for (q, field) in [
        ("country=DEU", "country"),
        ("asn=ASX", "asn"),
        ("anomaly=country_spread&window_hours=721", "window_hours"),
    ] {
        let (s, v) = count(q).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{q}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
    let (s, v) = srv
        .root(Method::GET, "/api/v1/realms/geo/sessions/anomalies", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let counts: std::collections::HashMap<String, u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["anomaly"].as_str().unwrap().to_owned(),
                c["session_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts["country_spread"], 2, "{v}");
    assert_eq!(counts["country_changed"], 1, "{v}");
    assert_eq!(counts["new_device"], 0, "{v}");

    let (s, _, csv) = srv
        .get_text("/api/v1/realms/geo/sessions/export?format=csv&country=FR")
        .await;
    assert_eq!(s, StatusCode::OK, "{csv}");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert!(
        rows[0].ends_with(",FR,Paris,3215,Orange S.A.,198.51.100.4,FR"),
        "{csv}"
    );

    let removal = json!({"anomaly": "country_changed", "dry_run": true});
    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/geo/sessions/end",
            Some(removal),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["removed"], json!([berlin["sid"]]), "{v}");
    let (s, v) = srv
        .root(
            Method::POST,
            "/api/v1/realms/geo/sessions/end",
            Some(json!({"anomaly": "country_changed"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sessions_removed"], 1, "{v}");
    assert_eq!(count("").await.1["total_count"], 2);
    let _ = paris;
}

on_both_stores!(
    session_lifecycle_over_http,
    properties_follow_the_realm_whitelist,
    keys_and_scopes_are_enforced,
    bad_input_is_a_clear_4xx_and_changes_nothing,
    paging_contract_through_http,
    realms_are_isolated,
    ending_preview_and_audit,
    former_paths_end_sessions_as_the_new_ones_do,
    openapi_document_matches_the_served_routes,
    health_and_metrics,
    quota_conflicts_and_unknown_sessions,
    clients_are_registered_counted_and_removed,
    listing_and_removal_by_address_range_and_creation_time,
    export_streams_every_match_as_csv_or_json_lines,
    the_overview_counts_sign_ins_and_endings_by_reason,
    devices_show_filter_export_and_end,
    ended_sessions_say_how_who_and_what_each_client_heard,
    networks_place_sessions_follow_refreshes_and_feed_anomaly_removals,
);
