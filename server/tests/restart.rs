//! The server binary killed with SIGKILL between a revocation and its back-channel delivery: after
//! a restart on the same data directory the notification still arrives, exactly as queued, signed
//! with the key that was persisted before the kill.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::Form;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use common::{call, free_addr, Binary, Store};

const ISSUER: &str = "https://idp.restart.test";

/// Retrying deliveries quickly.
const ARGS: &[&str] = &[
    "--issuer",
    ISSUER,
    "--delivery-first-backoff-ms",
    "100",
    "--delivery-max-backoff-secs",
    "1",
    "--backchannel-allow-hosts",
    "127.0.0.1",
];

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: String,
}

async fn receive(State(got): State<Arc<Mutex<Vec<String>>>>, Form(f): Form<LogoutForm>) {
    got.lock().unwrap().push(f.logout_token);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_logout_survives_sigkill_and_is_delivered_after_restart() {
    let receiver_addr = free_addr();
    let http = reqwest::Client::new();
    let mut server = Binary::start(&Store::embedded(), ARGS, &[]).await;
    let base = server.base.clone();

    let realm = Some(json!({}));
    call(&http, &base, Method::PUT, "/api/v1/realms/r", realm).await;
    let client = json!({"backchannel_logout_uri": format!("http://{receiver_addr}/logout")});
    let path = "/api/v1/realms/r/clients/crm";
    call(&http, &base, Method::PUT, path, Some(client)).await;
    let created = call(
        &http,
        &base,
        Method::POST,
        "/api/v1/realms/r/sessions",
        Some(json!({"subject_id": "frank", "client_ids": ["crm"]})),
    )
    .await;
    let sid = created["sid"].as_str().unwrap().to_owned();
    let jwks_before: Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outcome = call(
        &http,
        &base,
        Method::POST,
        "/api/v1/realms/r/sessions/end",
        Some(json!({"sids": [sid]})),
    )
    .await;
    assert_eq!(outcome["clients_notified"], 1);
    let queued = call(
        &http,
        &base,
        Method::GET,
        "/api/v1/realms/r/backchannel-deliveries",
        None,
    )
    .await;
    let queued = queued["deliveries"][0].clone();
    assert_eq!(
        queued["status"], "pending",
        "the receiver is down: {queued}"
    );

    // The revocation was acknowledged; kill the server before it can deliver.
    server.kill();

    let got = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/logout", axum::routing::post(receive))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind(receiver_addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    server.start_again().await;
    let mut delivered = Value::Null;
    for _ in 0..200 {
        let page = call(
            &http,
            &base,
            Method::GET,
            "/api/v1/realms/r/backchannel-deliveries",
            None,
        )
        .await;
        if page["counts"]["delivered"] == 1 {
            delivered = page["deliveries"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let jwks_after: Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.kill();

    assert_eq!(delivered["status"], "delivered", "{delivered}");
    for field in [
        "id",
        "client_id",
        "uri",
        "subject_id",
        "sid",
        "reason",
        "created_at",
    ] {
        assert_eq!(delivered[field], queued[field], "{field} as queued");
    }
    assert_eq!(jwks_after, jwks_before, "the signing key survived the kill");
    let tokens = got.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1);
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks_after).unwrap();
    let header = jsonwebtoken::decode_header(&tokens[0]).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["crm"]);
    validation.set_issuer(&[ISSUER]);
    let claims: Value = jsonwebtoken::decode(&tokens[0], &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "frank");
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["jti"], delivered["last_jti"]);
}
