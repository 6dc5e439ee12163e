//! What the server's tests share: [`Running`], the server started in the test's process exactly
//! as the binary starts it (`server::serve`), on either [`Store`]; and [`Binary`], the server
//! binary run as a child process, with [`call`] for its JSON API; [`wait_unlocked`] for tests
//! that open the embedded store themselves.

#![allow(dead_code, unused_imports)]

pub mod server;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub use self::server::{answer, answer_json, cookie_pair, Running, Store, KEY, PASSWORD};

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

/// Waits until no holder has the embedded store in `dir` open (sled's threads let go of a
/// closed store's lock a moment later).
pub fn wait_unlocked(dir: &std::path::Path) {
    for _ in 0..200 {
        if !::server::storage_dir::in_use(dir) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the store stayed locked");
}

/// The server binary (`server serve`) as a child process on a free port of 127.0.0.1, with the
/// bootstrap key [`KEY`] from its environment. Killed (SIGKILL) when dropped, so a failing test
/// leaves none behind.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    pub base: String,
    store: Store,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// `--data-dir` of a server on PostgreSQL: nothing is written there.
    unused: tempfile::TempDir,
}

impl Binary {
    /// Starts the binary on `store` with the `serve` arguments `args` and the environment
    /// variables `env`, and waits until it answers.
    pub async fn start(store: &Store, args: &[&str], env: &[(&str, &str)]) -> Binary {
        let addr = free_addr();
        let unused = tempfile::tempdir().unwrap();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let binary = Binary {
            child: spawn(addr, store, unused.path(), &args, &env),
            addr,
            base: format!("http://{addr}"),
            store: store.clone(),
            args,
            env,
            unused,
        };
        wait_healthy(&reqwest::Client::new(), &binary.base).await;
        binary
    }

    /// Starts the binary again, on the same port, store and arguments (after it ended), and
    /// waits until it answers.
    pub async fn start_again(&mut self) {
        self.child = spawn(
            self.addr,
            &self.store,
            self.unused.path(),
            &self.args,
            &self.env,
        );
        wait_healthy(&reqwest::Client::new(), &self.base).await;
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `server serve` on `addr`.
fn spawn(
    addr: SocketAddr,
    store: &Store,
    unused: &std::path::Path,
    args: &[String],
    env: &[(String, String)],
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["serve", "--addr", &addr.to_string()])
        .args(store.args(&unused.join("unused")))
        .args(args)
        .env_remove("SESSIONS_STORE_URL")
        .env("SESSIONS_BOOTSTRAP_API_KEY", KEY)
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts")
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A call of the JSON API of the server at `base` with the bootstrap key, which must succeed;
/// its body (`null` when it has none).
pub async fn call(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, v) = try_call(http, base, method, path, body)
        .await
        .unwrap_or_else(|| panic!("{path}: no answer"));
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// A call of the JSON API of the server at `base` with the bootstrap key: its status and body,
/// or `None` when no answer came (refused, cut off).
pub async fn try_call(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Option<(StatusCode, Value)> {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(KEY);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.ok()?;
    let status = resp.status();
    let text = resp.text().await.ok()?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Some((status, body))
}
