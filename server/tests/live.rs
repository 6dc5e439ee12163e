//! The dashboard's live count is pushed: a stream opened on one server receives the realm's new
//! count soon after sessions are created or removed — through the same server on the embedded
//! store, through another server on a shared PostgreSQL database — long before the stream's
//! fallback read (every 30 s) would have sent it. On PostgreSQL, a server whose listening
//! connection is killed connects again and the counts keep coming.

mod common;

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;

use common::{Running, Store, PASSWORD};

/// How long a pushed count may take: generous for a busy machine, and well under the 30 s after
/// which a stream reads its count anyway.
const PUSHED_WITHIN: Duration = Duration::from_secs(10);

/// How soon a stream must end once its administrator is signed out: "at once", with room for a
/// busy machine, and far below the 15 s between the stream's own checks.
const ENDS_WITHIN: Duration = Duration::from_secs(3);

/// The server on `store`, its dashboard cookie usable over plain http.
async fn start(store: &Store) -> Running {
    Running::start(store.clone(), &["--plain-http-cookies"]).await
}

/// What these tests do through a server.
trait Live {
    async fn create(&self, realm: &str, subject: &str) -> String;
    async fn remove(&self, realm: &str, sid: &str);
    async fn live(&self, realm: &str) -> LiveCounts;
    async fn live_as(&self, realm: &str, cookie: &str) -> LiveCounts;
}

impl Live for Running {
    /// Creates a session; its sid.
    async fn create(&self, realm: &str, subject: &str) -> String {
        let created = self
            .ok(
                Method::POST,
                &format!("/api/v1/realms/{realm}/sessions"),
                json!({"subject_id": subject}),
            )
            .await;
        created["sid"].as_str().unwrap().to_owned()
    }

    async fn remove(&self, realm: &str, sid: &str) {
        let removed = self
            .ok(
                Method::POST,
                &format!("/api/v1/realms/{realm}/sessions/end"),
                json!({"sids": [sid]}),
            )
            .await;
        assert_eq!(removed["sessions_removed"], 1);
    }

    /// Signs in as the administrator and opens the realm's live stream.
    async fn live(&self, realm: &str) -> LiveCounts {
        let cookie = self.sign_in().await;
        self.live_as(realm, &cookie).await
    }

    /// Opens the realm's live stream with the session `cookie`.
    async fn live_as(&self, realm: &str, cookie: &str) -> LiveCounts {
        let resp = self
            .http
            .get(self.url(&format!("/live/realms/{realm}")))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        LiveCounts {
            events: resp
                .bytes_stream()
                .map(|chunk| chunk.map(|b| String::from_utf8_lossy(&b).into_owned()))
                .boxed(),
            text: String::new(),
        }
    }
}

/// The `count` events of a live stream, in order.
struct LiveCounts {
    events: futures::stream::BoxStream<'static, reqwest::Result<String>>,
    text: String,
}

impl LiveCounts {
    /// The next count event's number.
    async fn next(&mut self) -> u64 {
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let event: String = self.text.drain(..end + 2).collect();
                if let Some(data) = event.strip_prefix("event: count\ndata: ").map(str::trim) {
                    return data.parse().unwrap();
                }
                continue;
            }
            let chunk = self.events.next().await.expect("the stream ended").unwrap();
            self.text.push_str(&chunk);
        }
    }

    /// Fails unless the stream ends within [`ENDS_WITHIN`] (counts sent meanwhile are passed
    /// over).
    async fn ends(&mut self, after: &str) {
        let ended = tokio::time::timeout(ENDS_WITHIN, async {
            while let Some(chunk) = self.events.next().await {
                if chunk.is_err() {
                    break;
                }
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "after {after}: the stream was still open {ENDS_WITHIN:?} later"
        );
    }

    /// Waits for a count of `expected` (counts on the way to it are passed over); fails if none
    /// comes within [`PUSHED_WITHIN`].
    async fn until(&mut self, expected: u64, after: &str) {
        let waited = tokio::time::timeout(PUSHED_WITHIN, async {
            while self.next().await != expected {}
        })
        .await;
        assert!(
            waited.is_ok(),
            "after {after}: no count of {expected} within {PUSHED_WITHIN:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_the_embedded_store_a_stream_hears_of_creates_and_removals_at_once() {
    let server = start(&Store::embedded()).await;
    server
        .ok(Method::PUT, "/api/v1/realms/acme", json!({}))
        .await;
    server
        .ok(Method::PUT, "/api/v1/realms/other", json!({}))
        .await;
    let mut counts = server.live("acme").await;
    assert_eq!(counts.next().await, 0, "the count at once");
    let sid = server.create("acme", "alice").await;
    counts.until(1, "a create").await;
    server.create("acme", "bob").await;
    counts.until(2, "another create").await;
    server.remove("acme", &sid).await;
    counts.until(1, "a removal").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_postgresql_a_stream_on_one_server_hears_of_changes_made_through_the_other() {
    let store = Store::postgres();
    let a = start(&store).await;
    let b = start(&store).await;
    a.ok(Method::PUT, "/api/v1/realms/acme", json!({})).await;
    let mut counts = b.live("acme").await;
    assert_eq!(counts.next().await, 0, "the count at once");
    let sid = a.create("acme", "alice").await;
    counts.until(1, "a create through A").await;
    a.create("acme", "bob").await;
    counts.until(2, "another create through A").await;
    a.remove("acme", &sid).await;
    counts.until(1, "a removal through A").await;
    a.stop().await;
    b.stop().await;
}

/// The backends of the servers' listening connections (`application_name` as the store sets it).
const LISTENERS: &str = "FROM pg_stat_activity
     WHERE application_name = 'sessions: changes' AND datname = current_database()";

#[tokio::test(flavor = "multi_thread")]
async fn on_postgresql_a_killed_listening_connection_is_made_again_and_counts_keep_coming() {
    let store = Store::postgres();
    let (db, connection) = tokio_postgres::connect(store.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let listeners = async || -> i64 {
        db.query_one(&format!("SELECT count(*) {LISTENERS}"), &[])
            .await
            .unwrap()
            .get(0)
    };
    let a = start(&store).await;
    let b = start(&store).await;
    assert_eq!(listeners().await, 2, "one listening connection per server");
    a.ok(Method::PUT, "/api/v1/realms/acme", json!({})).await;
    let mut counts = b.live("acme").await;
    assert_eq!(counts.next().await, 0);
    a.create("acme", "alice").await;
    counts.until(1, "a create through A").await;

    let killed: i64 = db
        .query_one(
            &format!("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) {LISTENERS}"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 2);
    // Made again by both servers (a second or so after losing them).
    let again = tokio::time::timeout(Duration::from_secs(30), async {
        while listeners().await < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        again.is_ok(),
        "the listening connections were not made again"
    );
    a.create("acme", "bob").await;
    counts
        .until(2, "a create through A after the reconnection")
        .await;
    b.create("acme", "carol").await;
    counts
        .until(3, "a create through B after the reconnection")
        .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_at_once_when_its_administrator_signs_out() {
    let server = start(&Store::embedded()).await;
    server
        .ok(Method::PUT, "/api/v1/realms/acme", json!({}))
        .await;
    let cookie = server.sign_in().await;
    let mut counts = server.live_as("acme", &cookie).await;
    assert_eq!(counts.next().await, 0, "the count at once");
    // Another session of the same administrator signing out leaves this stream open.
    let other = server.sign_in().await;
    let mut other_counts = server.live_as("acme", &other).await;
    assert_eq!(other_counts.next().await, 0);
    server.server_fn_ok("sign_out", &[], &other).await;
    other_counts.ends("signing out").await;
    server.create("acme", "alice").await;
    counts
        .until(1, "a create after the other session signed out")
        .await;

    server.server_fn_ok("sign_out", &[], &cookie).await;
    counts.ends("signing out").await;
    // And it cannot be opened again with the ended session.
    let again = server
        .http
        .get(server.url("/live/realms/acme"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_at_once_when_its_administrator_is_disabled_or_given_a_new_password() {
    let server = start(&Store::embedded()).await;
    server
        .ok(Method::PUT, "/api/v1/realms/acme", json!({}))
        .await;
    let admin = server.sign_in().await;
    server
        .server_fn_ok(
            "create_admin",
            &[
                ("username", "vic"),
                ("password", PASSWORD),
                ("role", "viewer"),
            ],
            &admin,
        )
        .await;
    let mut admin_counts = server.live_as("acme", &admin).await;
    assert_eq!(admin_counts.next().await, 0);

    let vic = server.sign_in_as("vic", PASSWORD).await;
    let mut counts = server.live_as("acme", &vic).await;
    assert_eq!(counts.next().await, 0, "the count at once");
    server
        .server_fn_ok(
            "set_admin_disabled",
            &[("username", "vic"), ("disabled", "true")],
            &admin,
        )
        .await;
    counts.ends("disabling the administrator").await;

    server
        .server_fn_ok(
            "set_admin_disabled",
            &[("username", "vic"), ("disabled", "false")],
            &admin,
        )
        .await;
    let vic = server.sign_in_as("vic", PASSWORD).await;
    let mut counts = server.live_as("acme", &vic).await;
    assert_eq!(counts.next().await, 0);
    let new_password = "another correct horse";
    server
        .server_fn_ok(
            "reset_admin_password",
            &[("username", "vic"), ("password", new_password)],
            &admin,
        )
        .await;
    counts.ends("a new password").await;

    // The administrator who did all this still hears the counts.
    server.create("acme", "alice").await;
    admin_counts.until(1, "a create").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_postgresql_a_stream_ends_when_its_administrator_signs_out_through_the_other_server() {
    let store = Store::postgres();
    let a = start(&store).await;
    let b = start(&store).await;
    a.ok(Method::PUT, "/api/v1/realms/acme", json!({})).await;
    let cookie = a.sign_in().await;
    let mut counts = b.live_as("acme", &cookie).await;
    assert_eq!(counts.next().await, 0, "the count at once");
    a.server_fn_ok("sign_out", &[], &cookie).await;
    counts.ends("signing out through A").await;
    a.stop().await;
    b.stop().await;
}
