//! The hardening of the HTTP surface, tested through the server exactly as the binary wires it
//! (`server::serve`), on 127.0.0.1 over a real data directory.

mod common;

use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::{answer, Running, Store, KEY, PASSWORD};

async fn with_sessions(srv: &Running) {
    let (s, v) = srv
        .api(Method::PUT, "/api/v1/realms/acme", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for subject in ["alice", "alice", "bob"] {
        let (s, v) = srv
            .api(
                Method::POST,
                "/api/v1/realms/acme/sessions",
                Some(json!({"subject_id": subject})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
}

async fn session_count(srv: &Running) -> u64 {
    let (_, v) = srv.api(Method::GET, "/api/v1/realms/acme", None).await;
    v["session_count"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blank_or_padded_removal_filter_never_ends_sessions_it_did_not_name() {
    let srv = Running::start(Store::embedded(), &[]).await;
    with_sessions(&srv).await;
    for body in [
        json!({"subject_id": "", "dry_run": true}),
        json!({"subject_id": "   "}),
        json!({"sid": " "}),
        json!({"sids": [""]}),
        json!({"subject_id": "alice", "client_ids": ["  "]}),
    ] {
        let (s, v) = srv
            .api(
                Method::POST,
                "/api/v1/realms/acme/sessions/end",
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} → {v}");
        assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    }
    let (s, v) = srv
        .api(
            Method::POST,
            "/api/v1/realms/acme/sessions/end",
            Some(json!({"subject_id": " alice"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sessions_removed"], 0, "a padded id is not alice: {v}");
    assert_eq!(session_count(&srv).await, 3);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reserved_realms_stay_out_of_listings_and_metrics() {
    let srv = Running::start(Store::embedded(), &[]).await;
    with_sessions(&srv).await;
    srv.sign_in().await;
    let (s, v) = srv.api(Method::GET, "/api/v1/realms", None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v["realms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme"]);
    let metrics = srv
        .http
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("realm=\"acme\""), "{metrics}");
    assert!(!metrics.contains("_admin"), "{metrics}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_a_json_413_everywhere_and_bad_server_function_arguments_a_400() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let big = "x".repeat(300 * 1024);
    let form = srv
        .server_fn(
            "sign_in",
            &[("username", "admin"), ("password", &big)],
            None,
        )
        .await;
    assert_eq!(form.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = form.json().await.unwrap();
    assert_eq!(v["error"]["code"], "body_too_large", "{v}");
    // Without a Content-Length: read up to the limit, then refused.
    let chunks = futures::stream::iter((0..100).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 4096])));
    let resp = srv
        .http
        .post(srv.url("/api/v1/realms/acme/sessions"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "body_too_large", "{v}");
    // Missing arguments are the caller's fault.
    let resp = srv
        .server_fn("sign_in", &[("username", "admin")], None)
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_carries_security_headers_and_pages_a_nonce_policy() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let page = srv.http.get(srv.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let h = page.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .expect("a script-src");
    assert!(!script_src.contains("unsafe-inline"), "{csp}");
    let nonce = script_src
        .split_whitespace()
        .find_map(|t| t.strip_prefix("'nonce-"))
        .expect("a nonce")
        .trim_end_matches('\'')
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h.contains_key("referrer-policy"));
    assert!(h.contains_key("x-request-id"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the page's scripts carry the nonce"
    );
    // A second page gets another nonce.
    let again = srv.http.get(srv.url("/login")).send().await.unwrap();
    assert_ne!(
        again.headers()["content-security-policy"].to_str().unwrap(),
        csp
    );
    // JSON answers: nothing may run or frame them.
    let resp = srv
        .http
        .get(srv.url("/api/v1/realms"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_functions_refuse_calls_from_other_origins() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let cookie = srv.sign_in().await;
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let resp = srv
            .http
            .post(srv.url("/api/sign_out"))
            .header("cookie", &cookie)
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{header}: {value}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "cross_origin_request", "{v}");
    }
    // Still signed in: the refused calls did nothing.
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    assert!(
        !audit.to_string().contains("\"sign_out\""),
        "no sign-out happened: {audit}"
    );
    let resp = srv.server_fn("sign_out", &[], Some(&cookie)).await;
    assert!(resp.status().is_success() || resp.status().is_redirection());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_sign_ins_are_throttled_and_every_sign_in_and_sign_out_is_audited() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let resp = srv
            .server_fn(
                "sign_in",
                &[("username", "admin"), ("password", "wrong-password!")],
                None,
            )
            .await;
        statuses.push(resp.status().as_u16());
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(resp.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 429],
        "three free failures, then a delay"
    );
    // The right password waits out the delay too.
    let resp = srv
        .server_fn(
            "sign_in",
            &[("username", "admin"), ("password", PASSWORD)],
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let cookie = srv.sign_in().await;
    assert!(cookie.starts_with("__Host-sessions_admin="), "{cookie}");
    let resp = srv.server_fn("sign_out", &[], Some(&cookie)).await;
    assert!(resp.status().is_success() || resp.status().is_redirection());
    let (_, v) = srv.api(Method::GET, "/api/v1/audit?count=50", None).await;
    let actions: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["realm"] == "_admin")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "sign_in_failed").count(),
        4,
        "{actions:?}"
    );
    assert!(
        actions.contains(&"sign_in") && actions.contains(&"sign_out"),
        "{actions:?}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_cookie_is_secure_unless_plain_http_is_asked_for() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let resp = srv
        .server_fn(
            "sign_in",
            &[("username", "admin"), ("password", PASSWORD)],
            None,
        )
        .await;
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("__Host-sessions_admin=") && set.contains("; Secure"),
        "{set}"
    );
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"));
    let srv = srv.restart(&["--plain-http-cookies"]).await;
    let resp = srv
        .server_fn(
            "sign_in",
            &[("username", "admin"), ("password", PASSWORD)],
            None,
        )
        .await;
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("sessions_admin=") && !set.contains("Secure"),
        "{set}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_managed_at_runtime_and_the_bootstrap_key_goes_when_unset() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let (s, created) = srv
        .api(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "idp", "scopes": ["sessions:issue"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    let (s, _) = srv
        .api_with(&secret, Method::PUT, "/api/v1/realms/x", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an issue key is not an admin key");
    let (s, _) = srv
        .api(Method::PUT, "/api/v1/realms/x", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = srv
        .api_with(
            &secret,
            Method::POST,
            "/api/v1/realms/x/sessions",
            Some(json!({"subject_id": "a"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, list) = srv.api(Method::GET, "/api/v1/api-keys", None).await;
    let listed = list.to_string();
    assert!(
        listed.contains("\"idp\"") && listed.contains("\"bootstrap\""),
        "{listed}"
    );
    assert!(
        !listed.contains(&secret) && !listed.contains("hash"),
        "{listed}"
    );
    let (s, _) = srv.api(Method::DELETE, "/api/v1/api-keys/idp", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = srv
        .api_with(
            &secret,
            Method::POST,
            "/api/v1/realms/x/sessions",
            Some(json!({"subject_id": "a"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "revoked at once");
    let (s, v) = srv.api(Method::DELETE, "/api/v1/api-keys/idp", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    let audit = audit.to_string();
    assert!(
        audit.contains("create_api_key") && audit.contains("revoke_api_key"),
        "{audit}"
    );
    let store = srv.store.clone();
    srv.stop().await;
    // Restarted without SESSIONS_BOOTSTRAP_API_KEY: the bootstrap key no longer opens anything.
    let srv = Running::start_without_bootstrap_key(store, &[]).await;
    let (s, _) = srv.api(Method::GET, "/api/v1/realms", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    srv.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_data_directory_and_its_files_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let srv = Running::start(Store::embedded(), &[]).await;
    let dir = srv.store.data_dir().to_owned();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let mut files = 0;
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                assert_eq!(mode(&p), 0o700, "{}", p.display());
                stack.push(p);
            } else {
                assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
                files += 1;
            }
        }
    }
    assert!(files > 0);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_get_an_id_and_unknown_routes_a_json_404() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let resp = srv.http.get(srv.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let id = resp.headers()["x-request-id"].clone();
    assert_eq!(id.len(), 32);
    assert_ne!(id, HeaderValue::from_static(""));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_dashboard_pages_are_an_html_404_with_a_link_to_the_sessions() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let cookie = srv.sign_in().await;
    for path in ["/no/such/page", "/realms/demo/sessions", "/sessions"] {
        for cookie in [None, Some(cookie.as_str())] {
            let mut req = srv.http.get(srv.url(path)).header("accept", "text/html");
            if let Some(cookie) = cookie {
                req = req.header("cookie", cookie);
            }
            let resp = req.send().await.unwrap();
            let what = format!(
                "{path} signed {}",
                if cookie.is_some() { "in" } else { "out" }
            );
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{what}");
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default()
            };
            assert!(header("content-type").starts_with("text/html"), "{what}");
            assert_eq!(header("x-request-id").len(), 32, "{what}");
            // The page's own policy, which lets its hydration script run.
            assert!(
                header("content-security-policy").contains("'nonce-"),
                "{what}"
            );
            let body = resp.text().await.unwrap();
            assert!(body.contains("<h1>Page not found</h1>"), "{what}: {body}");
            assert!(
                body.contains(r#"<a href="/">Back to the sessions</a>"#),
                "{what}: {body}"
            );
            assert!(!body.contains("internal_error"), "{what}: {body}");
            // The header knows who is signed in: the page had the server's state.
            assert_eq!(body.contains("Signed in as"), cookie.is_some(), "{what}");
        }
    }
    srv.stop().await;
}

async fn grant(srv: &Running, subject: &str, sid: Option<&str>, client: &str, token: &str) {
    let expires = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
    let (s, v) = srv
        .api(
            Method::POST,
            "/api/v1/realms/acme/grants",
            Some(
                json!({"kind": "refresh_token", "subject_id": subject, "sid": sid,
                        "client_id": client, "expires_at": expires, "token": token}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn active(srv: &Running, token: &str) -> bool {
    let (s, v) = srv
        .api(
            Method::POST,
            "/api/v1/realms/acme/grants/introspect",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["active"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offline_token_ends_with_its_subjects_sessions_and_tokens_can_be_revoked_one_by_one() {
    let srv = Running::start(Store::embedded(), &[]).await;
    with_sessions(&srv).await;
    grant(&srv, "alice", None, "portal", "alice-offline-refresh-token").await;
    grant(&srv, "bob", None, "portal", "bob-offline-refresh-token-1").await;
    grant(&srv, "bob", None, "portal", "bob-offline-refresh-token-2").await;
    grant(&srv, "bob", None, "mail", "bob-offline-refresh-token-3").await;
    // The lost laptop: every session of alice, with her tokens.
    let (s, v) = srv
        .api(
            Method::POST,
            "/api/v1/realms/acme/sessions/end",
            Some(json!({"subject_id": "alice", "reason": "lost laptop"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sessions_removed"], 2);
    assert_eq!(v["tokens_revoked"], 1, "{v}");
    assert!(!active(&srv, "alice-offline-refresh-token").await);
    // RFC 7009, as a form.
    let resp = srv
        .http
        .post(srv.url("/api/v1/realms/acme/grants/revoke"))
        .bearer_auth(KEY)
        .form(&[
            ("token", "bob-offline-refresh-token-1"),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!active(&srv, "bob-offline-refresh-token-1").await);
    // Unknown tokens: 200 all the same.
    let (s, v) = srv
        .api(
            Method::POST,
            "/api/v1/realms/acme/grants/revoke",
            Some(json!({"token": "never-issued"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["revoked"], false);
    // Every grant of a subject, scoped to a client.
    let (s, v) = srv
        .api(
            Method::POST,
            "/api/v1/realms/acme/grants/revoke-subject",
            Some(json!({"subject_id": "bob", "client_ids": ["portal"], "reason": "offboarding"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["grants_revoked"], 1);
    assert!(!active(&srv, "bob-offline-refresh-token-2").await);
    assert!(
        active(&srv, "bob-offline-refresh-token-3").await,
        "another client's token stays"
    );
    let (s, v) = srv
        .api(
            Method::POST,
            "/api/v1/realms/acme/grants/revoke-subject",
            Some(json!({"subject_id": "  "})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    let audit = audit.to_string();
    assert!(
        audit.contains("revoke_token") && audit.contains("revoke_subject_grants"),
        "{audit}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn viewers_operators_and_read_keys_are_refused_what_their_role_does_not_permit() {
    let srv = Running::start(Store::embedded(), &[]).await;
    with_sessions(&srv).await;
    let admin = srv.sign_in().await;
    for (username, role) in [("vic", "viewer"), ("olga", "operator")] {
        let (s, body) = answer(
            srv.server_fn(
                "create_admin",
                &[
                    ("username", username),
                    ("password", PASSWORD),
                    ("role", role),
                ],
                Some(&admin),
            )
            .await,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let viewer = srv.sign_in_as("vic", PASSWORD).await;
    let operator = srv.sign_in_as("olga", PASSWORD).await;
    let remove_bob = json!({"realm": "acme", "request": {"subject_id": "bob"}});
    let refused = |(s, body): (StatusCode, String), what: &str| {
        assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {body}");
        assert!(body.contains("\"code\":\"forbidden\""), "{what}: {body}");
    };

    // A viewer's forged revocation is refused by the server, whatever the page showed.
    refused(
        srv.server_fn_json("end_sessions", remove_bob.clone(), &viewer)
            .await,
        "viewer revokes",
    );
    refused(
        srv.server_fn_json(
            "end_all_sessions",
            json!({"realm": "acme", "request": {}}),
            &viewer,
        )
        .await,
        "viewer signs out the realm",
    );
    assert_eq!(session_count(&srv).await, 3, "nothing ended");
    // An operator revokes, but manages neither administrators nor keys.
    let (s, body) = srv
        .server_fn_json("end_sessions", remove_bob, &operator)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(session_count(&srv).await, 2);
    for (name, form) in [
        (
            "create_admin",
            vec![
                ("username", "mallory"),
                ("password", PASSWORD),
                ("role", "admin"),
            ],
        ),
        (
            "set_admin_role",
            vec![("username", "olga"), ("role", "admin")],
        ),
        (
            "set_admin_disabled",
            vec![("username", "admin"), ("disabled", "true")],
        ),
        (
            "reset_admin_password",
            vec![("username", "admin"), ("password", PASSWORD)],
        ),
        ("create_api_key", vec![("name", "sneaky"), ("admin", "on")]),
    ] {
        refused(
            answer(srv.server_fn(name, &form, Some(&operator)).await).await,
            name,
        );
        refused(
            answer(srv.server_fn(name, &form, Some(&viewer)).await).await,
            name,
        );
    }
    // The last enabled admin stays.
    let (s, body) = answer(
        srv.server_fn(
            "set_admin_disabled",
            &[("username", "admin"), ("disabled", "true")],
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("last enabled administrator"), "{body}");

    // The JSON API maps key scopes onto the same permissions: a read key reads, changes nothing.
    let (s, created) = srv
        .api(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "auditor", "scopes": ["sessions:read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let read_key = created["secret"].as_str().unwrap().to_owned();
    let (s, page) = srv
        .api_with(&read_key, Method::GET, "/api/v1/realms/acme/sessions", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["total_count"], 2);
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/realms/acme/sessions/end",
            Some(json!({"subject_id": "alice"})),
        ),
        (
            Method::POST,
            "/api/v1/realms/acme/sessions/end-all",
            Some(json!({})),
        ),
        (Method::PUT, "/api/v1/realms/acme", Some(json!({}))),
        (Method::GET, "/api/v1/api-keys", None),
        (Method::POST, "/api/v1/signing-keys/rotate", None),
    ] {
        let (s, v) = srv.api_with(&read_key, method, path, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
        assert_eq!(v["error"]["code"], "forbidden", "{path}: {v}");
    }
    assert_eq!(session_count(&srv).await, 2, "nothing ended");
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit", None).await;
    let audit = audit.to_string();
    assert!(
        audit.contains("create_admin") && audit.contains("admin:olga"),
        "{audit}"
    );
    srv.stop().await;
}

async fn metrics_text(srv: &Running) -> String {
    let resp = srv.http.get(srv.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn made_up_methods_and_paths_add_no_metric_series() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let invented = |i: usize| format!("X{i:04}{}", "M".repeat(2000));
    let made_up_requests = |range: std::ops::Range<usize>| {
        let srv = &srv;
        async move {
            for i in range {
                let method = Method::from_bytes(invented(i).as_bytes()).unwrap();
                for path in ["/healthz".to_owned(), format!("/api/v1/no-such-route-{i}")] {
                    srv.http
                        .request(method.clone(), srv.url(&path))
                        .send()
                        .await
                        .unwrap();
                }
                for path in [
                    format!("/api/v1/no-such-route-{i}"),
                    format!("/api/v1/realms/r{i}/sessions"),
                ] {
                    srv.http.get(srv.url(&path)).send().await.unwrap();
                }
            }
        }
    };
    made_up_requests(0..10).await;
    metrics_text(&srv).await;
    let before = metrics_text(&srv).await;
    made_up_requests(10..210).await;
    let after = metrics_text(&srv).await;
    assert!(!after.contains("MMMM"), "a raw method became a label");
    assert!(
        !after.contains("no-such-route"),
        "a raw path became a label"
    );
    assert!(after.contains("method=\"other\""), "{after}");
    assert!(after.contains("route=\"/api/v1/realms/{realm}/sessions\""));
    let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(
        series(&before),
        series(&after),
        "200 more made-up requests added series"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_scrapes_are_answered_from_memory_between_store_reads() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let (s, _) = srv
        .api(Method::PUT, "/api/v1/realms/scraped", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let create = || async {
        let (s, v) = srv
            .api(
                Method::POST,
                "/api/v1/realms/scraped/sessions",
                Some(json!({"subject_id": "s"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    };
    let active = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("sessions_active{realm=\"scraped\"}"))
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
    };
    create().await;
    let first = metrics_text(&srv).await;
    assert_eq!(active(&first).as_deref(), Some("1"), "{first}");
    create().await;
    // Within the refresh interval, scrapes read nothing from the store.
    for _ in 0..20 {
        assert_eq!(active(&metrics_text(&srv).await).as_deref(), Some("1"));
    }
    tokio::time::sleep(api::metrics::STORE_FIGURES_REFRESH + Duration::from_millis(200)).await;
    assert_eq!(active(&metrics_text(&srv).await).as_deref(), Some("2"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_sent_at_once_get_no_more_tries_than_sent_in_a_row() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let attempts = (0..60).map(|_| {
        srv.server_fn(
            "sign_in",
            &[("username", "admin"), ("password", "wrong-password!")],
            None,
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    // In a row: three free failures, a fourth that starts the delay, then 429s.
    assert_eq!(count(401), 4, "{statuses:?}");
    assert_eq!(count(429), 56, "{statuses:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overlong_user_name_is_a_400_and_is_neither_audited_nor_remembered() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let long = "n".repeat(60 * 1024);
    for _ in 0..5 {
        let resp = srv
            .server_fn(
                "sign_in",
                &[("username", &long), ("password", "whatever")],
                None,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = resp.text().await.unwrap();
        assert!(body.contains("at most 256 bytes"), "{body}");
    }
    let at_the_limit = "n".repeat(256);
    let resp = srv
        .server_fn(
            "sign_in",
            &[("username", &at_the_limit), ("password", "whatever")],
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (_, v) = srv.api(Method::GET, "/api/v1/audit?count=50", None).await;
    let targets: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "sign_in_failed")
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, [at_the_limit.as_str()], "only the 256-byte name");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_cannot_end_administrators_dashboard_sessions_by_any_path() {
    let srv = Running::start(Store::embedded(), &[]).await;
    with_sessions(&srv).await;
    let admin = srv.sign_in().await;
    let (s, body) = answer(
        srv.server_fn(
            "create_admin",
            &[
                ("username", "olga"),
                ("password", PASSWORD),
                ("role", "operator"),
            ],
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let operator = srv.sign_in_as("olga", PASSWORD).await;
    let (_, audit) = srv.api(Method::GET, "/api/v1/audit?count=50", None).await;
    let admin_sid = audit["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "sign_in" && e["target"] == "admin")
        .and_then(|e| e["outcome"].as_str()?.rsplit(' ').next())
        .unwrap()
        .to_owned();
    for (name, request) in [
        ("end_sessions", json!({"sids": [admin_sid]})),
        ("end_sessions", json!({"subject_id": "admin"})),
        ("end_sessions", json!({"ip": "127.0.0.0/8"})),
        (
            "end_sessions",
            json!({"created_after": "2000-01-01T00:00:00Z"}),
        ),
        ("end_all_sessions", json!({})),
    ] {
        let (s, body) = srv
            .server_fn_json(
                name,
                json!({"realm": "_admin", "request": request}),
                &operator,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name} {request}: {body}");
        assert!(body.contains("role operator"), "{body}");
    }
    let export = "/export/realms/acme/sessions?format=csv";
    let (s, body) = cookie_get(&srv, export, &admin, None, None).await;
    assert_eq!(s, StatusCode::OK, "the admin is still signed in: {body}");
    // An administrator may end another administrator's dashboard session.
    let (s, body) = srv
        .server_fn_json(
            "end_sessions",
            json!({"realm": "_admin", "request": {"subject_id": "olga"}}),
            &admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = cookie_get(&srv, export, &operator, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "olga was signed out: {body}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exported_csv_cells_never_start_a_spreadsheet_formula() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let (s, _) = srv
        .api(Method::PUT, "/api/v1/realms/acme", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let formula = r#"=HYPERLINK("http://evil.example","x")"#;
    let (s, v) = srv
        .api(
            Method::POST,
            "/api/v1/realms/acme/sessions",
            Some(json!({"subject_id": "eve", "display_name": formula})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, csv) = srv
        .api(
            Method::GET,
            "/api/v1/realms/acme/sessions/export?format=csv",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let csv = csv.as_str().unwrap().to_owned();
    assert!(
        csv.contains(r#""'=HYPERLINK(""http://evil.example"",""x"")""#),
        "{csv}"
    );
    let (s, jsonl) = srv
        .api(
            Method::GET,
            "/api/v1/realms/acme/sessions/export?format=jsonl",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let line: Value = match jsonl {
        Value::String(text) => serde_json::from_str(text.lines().next().unwrap()).unwrap(),
        one => one,
    };
    assert_eq!(line["display_name"], formula, "JSON lines stay exact");
    srv.stop().await;
}

/// A GET carrying `cookie`, with the given `Host` and `Sec-Fetch-Site` headers.
async fn cookie_get(
    srv: &Running,
    path: &str,
    cookie: &str,
    host: Option<&str>,
    site: Option<&str>,
) -> (StatusCode, String) {
    let mut req = srv.http.get(srv.url(path)).header("cookie", cookie);
    if let Some(host) = host {
        req = req.header("host", host);
    }
    if let Some(site) = site {
        req = req.header("sec-fetch-site", site);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    // The live stream does not end: its status is all there is to read.
    let body = if path.starts_with("/live/") {
        String::new()
    } else {
        resp.text().await.unwrap()
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_cookie_works_only_at_the_dashboards_own_host() {
    let srv = Running::start(Store::embedded(), &[]).await;
    with_sessions(&srv).await;
    let cookie = srv.sign_in().await;
    let port = srv.port();
    let export = "/export/realms/acme/sessions?format=csv";
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let (s, body) = cookie_get(&srv, export, &cookie, Some(&host), None).await;
        assert_eq!(s, StatusCode::OK, "{host}: {body}");
    }
    // A rebound name, another port, or no usable Host: refused before anything is read.
    for host in [
        format!("attacker.example:{port}"),
        "127.0.0.1:1".to_owned(),
        "not a host".to_owned(),
    ] {
        for path in [export, "/", "/live/realms/acme"] {
            let (s, body) = cookie_get(&srv, path, &cookie, Some(&host), None).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{host} {path}: {body}");
            if !path.starts_with("/live/") {
                assert!(body.contains("wrong_host"), "{body}");
            }
        }
    }
    // Without the cookie, the Host is not the guard's business (an API key works anywhere).
    let (s, _) = srv
        .api(Method::GET, "/api/v1/realms/acme/sessions", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // Other sites' pages may not read the export or the live stream.
    for path in [export, "/live/realms/acme"] {
        let (s, body) = cookie_get(&srv, path, &cookie, None, Some("cross-site")).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    let (s, _) = cookie_get(
        &srv,
        "/live/realms/acme",
        &cookie,
        None,
        Some("same-origin"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // With --public-url, its host is the one.
    let srv = srv
        .restart(&["--public-url", "https://Sessions.Example.com/"])
        .await;
    let cookie = srv.sign_in().await;
    let (s, body) = cookie_get(&srv, export, &cookie, Some("sessions.example.com"), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = cookie_get(
        &srv,
        export,
        &cookie,
        Some(&format!("127.0.0.1:{port}")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("https://Sessions.Example.com"), "{body}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_shows_a_token_holder_only_whitelisted_properties() {
    let srv = Running::start(Store::embedded(), &[]).await;
    let (s, v) = srv
        .api(
            Method::PUT,
            "/api/v1/realms/acme",
            Some(json!({"property_whitelist": ["theme"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, created) = srv
        .api(
            Method::POST,
            "/api/v1/realms/acme/sessions",
            Some(json!({"subject_id": "alice", "properties": {"theme": "dark", "risk": "high"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap();
    let only_theme = json!({"theme": "dark"});
    for refresh in [false, true] {
        let (s, v) = srv
            .api(
                Method::POST,
                "/api/v1/realms/acme/sessions/validate",
                Some(json!({"token": token, "refresh": refresh, "fields": "full"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["session"]["properties"], only_theme, "{v}");
    }
    let (s, v) = answer(
        srv.http
            .get(srv.url("/api/v1/realms/acme/sessions/current/properties"))
            .bearer_auth(KEY)
            .header("x-session-token", token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["properties"], only_theme, "one rule for both reads");
    // Administrators see every property.
    let sid = created["sid"].as_str().unwrap();
    let (s, v) = srv
        .api(
            Method::GET,
            &format!("/api/v1/realms/acme/sessions/{sid}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["properties"]["risk"], "high", "{v}");
    srv.stop().await;
}
