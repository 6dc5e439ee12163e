//! The OpenAPI document is the contract: parameters are where the server reads them, every
//! operation names its errors and its key, the limits it states are the server's own, and
//! requests at the limits it states are accepted just inside and refused just outside.
//! (scripts/openapi-check.sh fuzzes the whole document against the real server.)

use std::sync::Arc;

use api::ApiState;
use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use service::admins::AdminAccounts;
use service::api_keys::{ApiKeys, Scope};
use service::backchannel::{Backchannel, SigningKeys};
use service::signals::SignalStreams;
use service::SessionService;
use sessions::store::SledStore;

const KEY: &str = "openapi-test-key-0123456789";

struct Server {
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let keys = Arc::new(ApiKeys::open(store.clone()).await.unwrap());
        keys.register("root", KEY, &Scope::ALL, Utc::now())
            .await
            .unwrap();
        let signing = Arc::new(SigningKeys::open(store.clone(), Utc::now()).await.unwrap());
        let streams = Arc::new(SignalStreams::open(store.clone()).await.unwrap());
        let backchannel = Arc::new(Backchannel::new(signing, streams, "http://127.0.0.1"));
        let admins = Arc::new(AdminAccounts::open(store.clone()).await.unwrap());
        let state = ApiState {
            service: SessionService::new(store, keys, admins, backchannel),
        };
        let app = api::guarded_router(state, api::GuardConfig::default());
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
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn document(&self) -> Value {
        let (s, doc) = self.call(Method::GET, "/api/v1/openapi.json", None).await;
        assert_eq!(s, StatusCode::OK);
        doc
    }
}

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "patch", "delete"] {
            if let Some(op) = item.get(method) {
                out.push((method.to_owned(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// The operation's parameter `name`.
fn param<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
}

/// A component schema's property.
fn property<'a>(doc: &'a Value, schema: &str, field: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][schema];
    let props = s["properties"]
        .as_object()
        .or_else(|| s["allOf"][0]["properties"].as_object())
        .unwrap_or_else(|| panic!("{schema} has no properties"));
    &props[field]
}

#[tokio::test]
async fn parameters_are_where_the_server_reads_them() {
    let srv = Server::start().await;
    let doc = srv.document().await;
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap();
            let in_template = path.contains(&format!("{{{name}}}"));
            match p["in"].as_str().unwrap() {
                "path" => assert!(in_template, "{method} {path}: {name} is not in the path"),
                "query" | "header" => {
                    assert!(!in_template, "{method} {path}: {name} is in the path")
                }
                other => panic!("{method} {path}: {name} in {other}"),
            }
            assert!(
                p["schema"].is_object(),
                "{method} {path}: {name} has no schema"
            );
        }
    }
    let query = |path: &str, name: &str| param(&doc, path, "get", name)["in"].clone();
    for (path, name) in [
        ("/api/v1/audit", "count"),
        ("/api/v1/audit", "results_token"),
        ("/api/v1/realms/{realm}/backchannel-deliveries", "status"),
        ("/api/v1/realms/{realm}/backchannel-deliveries", "before"),
        ("/api/v1/realms/{realm}/backchannel-deliveries", "count"),
        ("/api/v1/realms/{realm}/grants", "subject_id"),
        ("/api/v1/realms/{realm}/grants", "sid"),
    ] {
        assert_eq!(query(path, name), "query", "{path} {name}");
    }
}

#[tokio::test]
async fn every_operation_names_its_key_and_its_errors() {
    let srv = Server::start().await;
    let doc = srv.document().await;
    let public = [
        "/healthz",
        "/metrics",
        "/.well-known/jwks.json",
        "/.well-known/ssf-configuration",
        "/api/v1/openapi.json",
        "/api/v1/docs",
        "/api/v1/docs.js",
    ];
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        if public.contains(&path.as_str()) {
            assert!(op.get("security").is_none(), "{path} needs no key");
            continue;
        }
        let scopes = &op["security"][0]["api_key"];
        if scopes == &json!(["sessions:read"]) {
            // Administration's reads: a read key or an admin key.
            assert_eq!(method, "get", "{path}: a read key changes nothing");
            assert_eq!(
                op["security"][1]["api_key"],
                json!(["sessions:admin"]),
                "{path}"
            );
        } else {
            assert!(
                scopes == &json!(["sessions:admin"])
                    || scopes == &json!(["sessions:issue"])
                    || scopes == &json!(["ssf:receiver"]),
                "{method} {path}: {scopes}"
            );
        }
        let mut wanted = vec!["401", "403", "500", "503"];
        if path.contains('{') {
            wanted.extend(["400", "404"]);
        }
        if op.get("requestBody").is_some() {
            wanted.extend(["400", "413", "422"]);
        }
        for status in wanted {
            assert!(
                responses.contains_key(status),
                "{method} {path} does not document {status}"
            );
        }
        assert!(!responses.contains_key("4XX"), "{method} {path}: a range");
        for (status, response) in responses {
            if status.starts_with('2') {
                continue;
            }
            let body = match response.get("$ref") {
                Some(r) => {
                    let name = r.as_str().unwrap().rsplit('/').next().unwrap();
                    &doc["components"]["responses"][name]
                }
                None => response,
            };
            assert_eq!(
                body["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path} {status}"
            );
        }
    }
}

#[tokio::test]
async fn the_documented_limits_are_the_servers() {
    let srv = Server::start().await;
    let doc = srv.document().await;
    let realm = param(&doc, "/api/v1/realms/{realm}", "put", "realm");
    assert_eq!(realm["schema"]["pattern"], api::openapi::REALM_PATTERN);
    assert_eq!(realm["schema"]["maxLength"], sessions::MAX_REALM_LEN);
    let count = |path: &str| param(&doc, path, "get", "count")["schema"].clone();
    assert_eq!(count("/api/v1/audit")["minimum"], 1);
    assert_eq!(count("/api/v1/audit")["maximum"], 1000);
    assert_eq!(
        count("/api/v1/realms/{realm}/sessions")["maximum"],
        sessions::MAX_PAGE_SIZE
    );
    assert_eq!(
        count("/api/v1/realms/{realm}/backchannel-deliveries")["maximum"],
        sessions::store::MAX_LISTED_DELIVERIES
    );
    let subject = property(&doc, "NewSession", "subject_id");
    assert_eq!(subject["minLength"], 1);
    assert_eq!(subject["maxLength"], sessions::MAX_FIELD_LEN);
    assert_eq!(subject["pattern"], api::openapi::TEXT_PATTERN);
    assert_eq!(property(&doc, "NewSession", "client_ids")["maxItems"], 64);
    assert_eq!(
        property(&doc, "NewGrant", "token")["maxLength"],
        sessions::validate::MAX_GRANT_TOKEN_LEN
    );
    assert_eq!(property(&doc, "EndSessions", "reason")["maxLength"], 1000);
    // Bodies the server reads with unknown fields refused say so.
    for schema in [
        "NewSession",
        "RealmSettingsUpdate",
        "ClientRegistration",
        "EndAllSessions",
        "ValidateRequest",
        "TokenRequest",
        "AddClientRequest",
        "Properties",
        "NewApiKey",
        "RevokeSubjectGrants",
    ] {
        assert_eq!(
            doc["components"]["schemas"][schema]["additionalProperties"], false,
            "{schema}"
        );
    }
    for schema in ["EndSessions", "NewGrant"] {
        assert_eq!(
            doc["components"]["schemas"][schema]["allOf"][0]["additionalProperties"], false,
            "{schema}"
        );
    }
}

#[tokio::test]
async fn requests_at_the_documented_limits() {
    let srv = Server::start().await;
    let ok = |s: StatusCode, v: &Value| assert!(s.is_success(), "{s} {v}");
    let refused = |s: StatusCode, v: &Value| assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Realm names: 64 characters of the pattern, not 65; not '_' first; '.' first is fine.
    let long = "r".repeat(64);
    let (s, v) = srv
        .call(
            Method::PUT,
            &format!("/api/v1/realms/{long}"),
            Some(json!({})),
        )
        .await;
    ok(s, &v);
    for bad in ["r".repeat(65), "_admin".into(), "a%20b".into()] {
        let (s, v) = srv
            .call(
                Method::PUT,
                &format!("/api/v1/realms/{bad}"),
                Some(json!({})),
            )
            .await;
        refused(s, &v);
    }
    let (s, v) = srv
        .call(Method::PUT, "/api/v1/realms/.well", Some(json!({})))
        .await;
    ok(s, &v);

    // Page sizes: 1 to the maximum.
    for (path, max) in [
        ("/api/v1/audit", 1000),
        ("/api/v1/realms/.well/sessions", 1000),
        ("/api/v1/realms/.well/backchannel-deliveries", 500),
    ] {
        for (count, good) in [(0, false), (1, true), (max, true), (max + 1, false)] {
            let (s, v) = srv
                .call(Method::GET, &format!("{path}?count={count}"), None)
                .await;
            if good {
                ok(s, &v)
            } else {
                refused(s, &v)
            }
        }
    }

    // Identifiers: 1 to 255 bytes, no control characters.
    let session = |subject: String| json!({"subject_id": subject});
    for (subject, good) in [
        ("a".repeat(255), true),
        ("a".repeat(256), false),
        (String::new(), false),
        ("a\u{7}b".into(), false),
    ] {
        let (s, v) = srv
            .call(
                Method::POST,
                "/api/v1/realms/.well/sessions",
                Some(session(subject)),
            )
            .await;
        if good {
            assert_eq!(s, StatusCode::CREATED, "{v}")
        } else {
            refused(s, &v)
        }
    }

    // Unknown fields are refused where the document says so.
    let (s, v) = srv
        .call(
            Method::POST,
            "/api/v1/realms/.well/sessions",
            Some(json!({"subject_id": "a", "colour": "red"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // Audit tokens: the documented shape decodes; anything else is refused.
    let (s, v) = srv
        .call(Method::GET, "/api/v1/audit?results_token=AAAAAAAAAAE", None)
        .await;
    ok(s, &v);
    let (s, v) = srv
        .call(Method::GET, "/api/v1/audit?results_token=AAAAAAAAAAB", None)
        .await;
    refused(s, &v);
}

#[tokio::test]
async fn the_docs_page_runs_only_its_own_script() {
    let srv = Server::start().await;
    let get = |path: &str| srv.http.get(format!("{}{path}", srv.base)).send();
    let page = get("/api/v1/docs").await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    assert!(
        !csp.split(';')
            .any(|d| d.trim().starts_with("script-src") && d.contains("unsafe-inline")),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<script src=\"/api/v1/docs.js\" defer></script>"));
    assert!(!html.contains("<script>"), "no inline script");
    assert!(html.contains("id=\"send\""), "a form to try a call");

    let script = get("/api/v1/docs.js").await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(script
        .text()
        .await
        .unwrap()
        .contains("/api/v1/openapi.json"));

    // Every other answer keeps the policy under which nothing runs.
    let json = get("/api/v1/openapi.json").await.unwrap();
    let csp = json.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
}

/// Every `$ref` names something the document holds (a generated client fails on one that does
/// not).
#[tokio::test]
async fn every_reference_resolves() {
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc = Server::start().await.document().await;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    // The export's parameters are documented with their constraints.
    let ip = param(&doc, "/api/v1/realms/{realm}/sessions/export", "get", "ip");
    assert_eq!(
        ip["schema"]["pattern"],
        sessions::address::ADDRESS_FILTER_PATTERN
    );
}
