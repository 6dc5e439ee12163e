//! `bench-http signals`: what a Shared Signals stream costs a removal. On each store, our release
//! server removes all `sessions` sessions of one subject through the API, without and with one
//! push stream covering the realm, in the balanced order off, on, on, off, on, off, off, on,
//! twice.
//! With the stream, the removal also queues one `session-revoked` SET per session in its own
//! write; the worker sends them afterwards to a do-nothing receiver on 127.0.0.1, and the next
//! removal starts once every one was delivered (that drain is timed too).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use store_postgres::scratch::ScratchPostgres;

use crate::ours::{self, Backend};
use crate::process::{self, Running};
use crate::run::Progress;

/// The realm the removals happen in.
const REALM: &str = "signals";
/// Threads creating each round's sessions.
const CREATE_THREADS: usize = 4;
/// Whether each removal runs with the stream: balanced, so drift over the run cancels out.
const ORDER: [bool; 16] = [
    false, true, true, false, true, false, false, true, false, true, true, false, true, false,
    false, true,
];

/// One store's removals: milliseconds without and with the stream, and each drain's SETs per
/// second.
struct Side {
    without: Vec<f64>,
    with: Vec<f64>,
    drained_per_s: Vec<f64>,
}

/// Measures both stores; answers the markdown table.
pub fn removal_with_a_stream(
    server: &Path,
    workspace: &Path,
    sessions: usize,
    progress: &Progress,
) -> Result<String, String> {
    let receiver = start_receiver()?;
    let sink = format!("http://{}{}", receiver.addr, crate::ceiling::PATH);
    let work = tempfile::Builder::new()
        .prefix("bench-signals-")
        .tempdir()
        .map_err(|e| format!("cannot create a work directory: {e}"))?;
    progress.say("embedded store");
    let embedded = Backend::Embedded(work.path().join("ours"));
    let embedded = side(server, workspace, &embedded, &sink, sessions, progress)?;
    progress.say("PostgreSQL (durable settings)");
    let pg = ScratchPostgres::start_durable().map_err(|e| e.to_string())?;
    pg.create_database("ours").map_err(|e| e.to_string())?;
    let postgres = Backend::Postgres(pg.url_for("ours"));
    let postgres = side(server, workspace, &postgres, &sink, sessions, progress)?;
    drop(pg);
    Ok(table(
        sessions,
        &[("embedded", embedded), ("PostgreSQL", postgres)],
    ))
}

/// The do-nothing handler, in a process of its own, as the SETs' receiver.
fn start_receiver() -> Result<Running, String> {
    let addr = process::free_addr()?;
    let mut cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    cmd.args(["ceiling", "--addr", &addr.to_string()]);
    Running::start(cmd, addr, crate::ceiling::PATH, "the SET receiver")
}

fn side(
    server: &Path,
    workspace: &Path,
    backend: &Backend,
    sink: &str,
    sessions: usize,
    progress: &Progress,
) -> Result<Side, String> {
    let key = random_key()?;
    let srv = ours::start(server, workspace, backend, &key, &[])?;
    let api = Api {
        base: format!("http://{}", srv.addr),
        http: reqwest::blocking::Client::new(),
    };
    let admin = format!("Bearer {key}");
    api.call("PUT", &format!("/api/v1/realms/{REALM}"), &admin, json!({}))?;
    let created = api.call(
        "POST",
        "/api/v1/api-keys",
        &admin,
        json!({"name": "receiver", "scopes": ["ssf:receiver"]}),
    )?;
    let receiver = format!("Bearer {}", created["secret"].as_str().ok_or("no secret")?);
    let mut out = Side {
        without: Vec::new(),
        with: Vec::new(),
        drained_per_s: Vec::new(),
    };
    for (round, &with) in ORDER.iter().enumerate() {
        let stream = if with {
            let body = json!({
                "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": sink},
                "realms": [REALM]
            });
            let config = api.call("POST", "/api/v1/ssf/streams", &receiver, body)?;
            Some(
                config["stream_id"]
                    .as_str()
                    .ok_or("no stream_id")?
                    .to_owned(),
            )
        } else {
            None
        };
        let subject = format!("subject-{round}");
        api.create_sessions(&admin, &subject, sessions)?;
        let started = Instant::now();
        let end = json!({"subject_id": subject});
        let outcome = api.call(
            "POST",
            &format!("/api/v1/realms/{REALM}/sessions/end"),
            &admin,
            end,
        )?;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        let queued = outcome["signals_queued"].as_u64().unwrap_or(0) as usize;
        if outcome["sessions_removed"].as_u64() != Some(sessions as u64)
            || queued != if with { sessions } else { 0 }
        {
            return Err(format!("round {round}: unexpected outcome {outcome}"));
        }
        if let Some(stream) = stream {
            out.with.push(took);
            let drained = api.wait_delivered(&admin)?;
            out.drained_per_s
                .push(sessions as f64 / drained.as_secs_f64());
            let path = format!("/api/v1/ssf/streams?stream_id={stream}");
            api.delete(&path, &receiver)?;
        } else {
            out.without.push(took);
        }
        progress.say(&format!(
            "{} removal {}: {took:.1} ms",
            if with { "with a stream," } else { "without," },
            round + 1
        ));
    }
    Ok(out)
}

/// Our server's JSON API.
struct Api {
    base: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn call(&self, method: &str, path: &str, auth: &str, body: Value) -> Result<Value, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .request(method.clone(), &url)
            .header("Authorization", auth)
            .json(&body)
            .send()
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status();
        let answer: Value = response.json().unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{method} {url}: {status} {answer}"));
        }
        Ok(answer)
    }

    fn delete(&self, path: &str, auth: &str) -> Result<(), String> {
        let url = format!("{}{path}", self.base);
        let status = self
            .http
            .delete(&url)
            .header("Authorization", auth)
            .send()
            .map_err(|e| format!("DELETE {url}: {e}"))?
            .status();
        if !status.is_success() {
            return Err(format!("DELETE {url}: {status}"));
        }
        Ok(())
    }

    /// Creates `n` sessions of `subject` through the data plane, a few at a time.
    fn create_sessions(&self, auth: &str, subject: &str, n: usize) -> Result<(), String> {
        let path = format!("/api/v1/realms/{REALM}/sessions");
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..CREATE_THREADS)
                .map(|t| {
                    let (path, count) = (
                        &path,
                        n / CREATE_THREADS + usize::from(t < n % CREATE_THREADS),
                    );
                    scope.spawn(move || -> Result<(), String> {
                        for _ in 0..count {
                            self.call("POST", path, auth, json!({"subject_id": subject}))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .map_err(|_| "a creating thread panicked".to_owned())?
            })
        })
    }

    /// Waits until the realm has no pending delivery; answers how long that took.
    fn wait_delivered(&self, auth: &str) -> Result<Duration, String> {
        let started = Instant::now();
        let path = format!("/api/v1/realms/{REALM}/backchannel-deliveries?count=1");
        loop {
            let url = format!("{}{path}", self.base);
            let page: Value = self
                .http
                .get(&url)
                .header("Authorization", auth)
                .send()
                .and_then(|r| r.json())
                .map_err(|e| format!("GET {url}: {e}"))?;
            if page["counts"]["pending"] == 0 && page["counts"]["failed"] == 0 {
                return Ok(started.elapsed());
            }
            if page["counts"]["failed"].as_u64().unwrap_or(0) > 0 {
                return Err(format!("a SET could not be delivered: {page}"));
            }
            if started.elapsed() > Duration::from_secs(600) {
                return Err("the SETs were not delivered within 10 minutes".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn random_key() -> Result<String, String> {
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn table(sessions: usize, sides: &[(&str, Side)]) -> String {
    let mut out = format!(
        "| remove {sessions} sessions of a subject | without a stream, median ms | with one push \
         stream, median ms | with ÷ without (target ≤ 1.5×) | SETs delivered afterwards, per s |\n\
         | --- | ---: | ---: | ---: | ---: |\n"
    );
    for (store, side) in sides {
        let (without, with) = (median(&side.without), median(&side.with));
        out.push_str(&format!(
            "| {store} | {without:.1} ({}) | {with:.1} ({}) | {:.2}× | {:.0} |\n",
            list(&side.without),
            list(&side.with),
            with / without,
            median(&side.drained_per_s),
        ));
    }
    out
}
