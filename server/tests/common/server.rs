//! The server started in this process exactly as the binary starts it: the command line parsed
//! by `Cli`, then `server::serve` on a listener of 127.0.0.1, on the embedded store in a
//! directory or on a database of the shared scratch PostgreSQL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::cli::{Cli, Command};
use server::ServerError;
use store_postgres::scratch::ScratchPostgres;
use tokio_util::sync::CancellationToken;

/// The bootstrap API key (every scope) the servers are started with.
pub const KEY: &str = "server-test-bootstrap-key-0123456789";
/// The password of the dashboard administrator `admin`.
pub const PASSWORD: &str = "server-test-admin-password";

/// Where a server keeps its data. Clones name the same store, so a server started again on a
/// clone finds what the first one wrote.
#[derive(Clone)]
pub enum Store {
    /// The embedded store in `dir` (a temporary one is deleted with the last clone).
    Embedded {
        dir: PathBuf,
        _temporary: Option<Arc<tempfile::TempDir>>,
    },
    /// A database on the shared scratch PostgreSQL server (started on first use).
    Postgres { url: String },
}

impl Store {
    /// The embedded store in a new temporary directory (not created yet: the server creates it).
    pub fn embedded() -> Store {
        let temporary = tempfile::tempdir().unwrap();
        Store::Embedded {
            dir: temporary.path().join("data"),
            _temporary: Some(Arc::new(temporary)),
        }
    }

    /// The embedded store in `dir`, which the caller keeps.
    pub fn embedded_in(dir: &Path) -> Store {
        Store::Embedded {
            dir: dir.to_owned(),
            _temporary: None,
        }
    }

    /// A new database on the shared scratch PostgreSQL server.
    pub fn postgres() -> Store {
        Store::Postgres {
            url: ScratchPostgres::shared().new_database("server").unwrap(),
        }
    }

    /// A new, empty store of the same kind.
    pub fn new_like(&self) -> Store {
        match self {
            Store::Embedded { .. } => Store::embedded(),
            Store::Postgres { .. } => Store::postgres(),
        }
    }

    /// The embedded store's directory.
    pub fn data_dir(&self) -> &Path {
        match self {
            Store::Embedded { dir, .. } => dir,
            Store::Postgres { .. } => panic!("a PostgreSQL store has no data directory"),
        }
    }

    /// The PostgreSQL database's URL.
    pub fn url(&self) -> &str {
        match self {
            Store::Postgres { url } => url,
            Store::Embedded { .. } => panic!("the embedded store has no URL"),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Store::Postgres { .. })
    }

    /// The arguments of `serve` naming the store. With PostgreSQL, `--data-dir` is `unused`,
    /// where nothing may be written.
    pub fn args(&self, unused: &Path) -> Vec<String> {
        match self {
            Store::Embedded { dir, .. } => vec!["--data-dir".into(), dir.display().to_string()],
            Store::Postgres { url } => vec![
                "--data-dir".into(),
                unused.display().to_string(),
                "--store".into(),
                url.clone(),
            ],
        }
    }
}

/// Runs one test body on each store, as `<name>::on_sled` and `<name>::on_postgres`: both
/// stores are the product, so a flow that works on one is tested on the other.
#[macro_export]
macro_rules! on_both_stores {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread")]
            async fn on_sled() {
                super::$test($crate::common::Store::embedded()).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn on_postgres() {
                super::$test($crate::common::Store::postgres()).await
            }
        }
    )+};
}

/// A server started with `server::serve` in this process, with the bootstrap key [`KEY`] (unless
/// started without) and the administrator `admin` (password [`PASSWORD`]). Stopped when dropped.
pub struct Running {
    pub base: String,
    /// A client that does not follow redirects (a sign-in's cookie is on its own answer).
    pub http: reqwest::Client,
    pub store: Store,
    bootstrap_key: bool,
    stop: CancellationToken,
    done: Option<tokio::task::JoinHandle<Result<(), ServerError>>>,
    /// `--data-dir` of a server on PostgreSQL: it must stay empty.
    unused: tempfile::TempDir,
}

impl Running {
    /// Starts the server on `store` with the `serve` arguments `extra`. A start on an embedded
    /// store that a server of this process just let go of waits until its lock is released.
    pub async fn start(store: Store, extra: &[&str]) -> Running {
        Self::start_with(store, true, extra).await
    }

    /// Starts the server without `--bootstrap-api-key` (the bootstrap key, if registered before,
    /// is removed).
    pub async fn start_without_bootstrap_key(store: Store, extra: &[&str]) -> Running {
        Self::start_with(store, false, extra).await
    }

    async fn start_with(store: Store, bootstrap_key: bool, extra: &[&str]) -> Running {
        for _ in 0..200 {
            match Self::try_start(store.clone(), bootstrap_key, extra).await {
                Ok(running) => return running,
                Err(ServerError::StoreInUse { .. }) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("the server stopped: {e}"),
            }
        }
        panic!("the data directory stayed locked");
    }

    /// Starts the server once: the error it stopped with if it did not come up.
    pub async fn try_start(
        store: Store,
        bootstrap_key: bool,
        extra: &[&str],
    ) -> Result<Running, ServerError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let unused = tempfile::tempdir().unwrap();
        let mut argv: Vec<String> = vec!["server".into(), "serve".into()];
        argv.extend(["--addr".into(), addr.to_string()]);
        argv.extend(store.args(&unused.path().join("unused")));
        argv.extend(["--admin-password".into(), PASSWORD.into()]);
        if bootstrap_key {
            argv.extend(["--bootstrap-api-key".into(), KEY.into()]);
        }
        argv.extend(extra.iter().map(|s| s.to_string()));
        let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        let stop = CancellationToken::new();
        let done = tokio::spawn(server::serve(*args, listener, stop.clone()));
        let mut running = Running {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            store,
            bootstrap_key,
            stop,
            done: Some(done),
            unused,
        };
        for _ in 0..1200 {
            if running.done.as_ref().unwrap().is_finished() {
                let stopped = running.done.take().unwrap().await.unwrap();
                match stopped {
                    Err(e) => return Err(e),
                    Ok(()) => panic!("the server stopped without an error before it answered"),
                }
            }
            if let Ok(r) = running.http.get(running.url("/healthz")).send().await {
                if r.status().is_success() {
                    assert!(
                        !running.unused.path().join("unused").exists(),
                        "a server on PostgreSQL opened the embedded store"
                    );
                    return Ok(running);
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the server did not start");
    }

    /// Stops the server and waits until it has: everything it acknowledged is durable.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(done) = self.done.take() {
            if let Err(e) = done.await.unwrap() {
                panic!("the server stopped with an error: {e}");
            }
        }
    }

    /// Stops the server and starts it again on the same store, with `extra` arguments (the
    /// bootstrap key as before).
    pub async fn restart(self, extra: &[&str]) -> Running {
        let (store, bootstrap_key) = (self.store.clone(), self.bootstrap_key);
        self.stop().await;
        Self::start_with(store, bootstrap_key, extra).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// A call of the JSON API with the bootstrap key: the status and the body (JSON; text that
    /// is not JSON as a string; `null` when empty).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.api_with(KEY, method, path, body).await
    }

    /// A call of the JSON API with `key`.
    pub async fn api_with(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer_json(req.send().await.unwrap()).await
    }

    /// A call with the bootstrap key that must succeed; its body.
    pub async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, v) = self.api(method, path, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Creates an API key named `name` with `scopes` through the API; its secret.
    pub async fn create_key(&self, name: &str, scopes: &[&str]) -> String {
        let (s, created) = self
            .api(
                Method::POST,
                "/api/v1/api-keys",
                Some(json!({"name": name, "scopes": scopes})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        created["secret"].as_str().unwrap().to_owned()
    }

    /// POSTs a form to a server function as a page of this server would.
    pub async fn server_fn(
        &self,
        name: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url(&format!("/api/{name}")))
            .header("origin", &self.base)
            .header("sec-fetch-site", "same-origin")
            .form(form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    /// POSTs JSON to a server function that takes JSON, as the dashboard's revoke dialog does.
    pub async fn server_fn_json(
        &self,
        name: &str,
        body: Value,
        cookie: &str,
    ) -> (StatusCode, String) {
        let resp = self
            .http
            .post(self.url(&format!("/api/{name}")))
            .header("origin", &self.base)
            .header("sec-fetch-site", "same-origin")
            .header("cookie", cookie)
            .json(&body)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    /// Calls a server function with the session `cookie`; it must succeed.
    pub async fn server_fn_ok(&self, name: &str, form: &[(&str, &str)], cookie: &str) {
        let resp = self.server_fn(name, form, Some(cookie)).await;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success() || status.is_redirection(),
            "{name}: {status} {body}"
        );
    }

    /// Signs in as `admin`; answers the `name=value` of the session cookie.
    pub async fn sign_in(&self) -> String {
        self.sign_in_as("admin", PASSWORD).await
    }

    /// Signs in as `username`; answers the `name=value` of the session cookie.
    pub async fn sign_in_as(&self, username: &str, password: &str) -> String {
        let resp = self
            .server_fn(
                "sign_in",
                &[("username", username), ("password", password)],
                None,
            )
            .await;
        assert!(
            resp.status().is_success() || resp.status().is_redirection(),
            "sign-in of {username}: {}",
            resp.status()
        );
        cookie_pair(resp.headers())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The `name=value` of the cookie an answer sets.
pub fn cookie_pair(headers: &HeaderMap) -> String {
    let set = headers
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// An answer's status and body as text.
pub async fn answer(resp: reqwest::Response) -> (StatusCode, String) {
    (resp.status(), resp.text().await.unwrap())
}

/// An answer's status and body: JSON, text that is not JSON as a string, `null` when empty.
pub async fn answer_json(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}
