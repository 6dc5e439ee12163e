//! What the tests that run the server binary share.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// A free port on 127.0.0.1.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Waits until the server at `base` answers its health check.
pub async fn wait_healthy(http: &reqwest::Client, base: &str) {
    for _ in 0..400 {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the server at {base} did not become healthy");
}
