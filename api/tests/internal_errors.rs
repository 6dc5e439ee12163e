//! What the request guard answers for a failure on the server's side, through a real HTTP server
//! on 127.0.0.1: a generic JSON 500 that names the same request id as the `X-Request-Id` header
//! (and the log), whether the handler built that answer itself or answered a bare 500 that the
//! guard replaced after the handler was done.

use api::error::ApiError;
use api::guard::{protect, GuardConfig};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::Value;

/// Serves `app` behind the guard; answers its base URL.
async fn serve(app: axum::Router) -> String {
    let app = protect(app, GuardConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread")]
async fn a_500_names_the_request_id_of_its_x_request_id_header() {
    let app = axum::Router::new()
        // A bare 500 with details that must not leave the server: the guard replaces it.
        .route(
            "/bare",
            get(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "sled io error at /var/lib/sessions/db",
                )
            }),
        )
        // The API's own generic 500, built while the request is served.
        .route(
            "/api-error",
            get(|| async { ApiError::internal().into_response() }),
        );
    let base = serve(app).await;
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for path in ["/bare", "/api-error", "/bare"] {
        let resp = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32, "{path}: {id}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "internal_error", "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert_eq!(
            message,
            format!("internal error; the server's log has the details under request id {id}"),
            "{path}"
        );
        assert!(!message.contains("sled"), "{path}: {message}");
        ids.push(id);
    }
    assert!(
        ids[0] != ids[1] && ids[0] != ids[2],
        "one id per request: {ids:?}"
    );
}
