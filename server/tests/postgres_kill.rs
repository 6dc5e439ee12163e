//! Two server binaries on one PostgreSQL database under load, one of them killed with SIGKILL:
//! every create and removal either server acknowledged is still there (or still gone) through the
//! survivor, and the database's counters agree with its rows.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use store_postgres::PostgresStore;

use common::{try_call, Binary, Store};

/// A JSON POST; `None` when there was no successful answer (refused, cut off, or an error).
async fn call(http: &reqwest::Client, base: &str, path: &str, body: Value) -> Option<Value> {
    match try_call(http, base, Method::POST, path, Some(body)).await {
        Some((status, v)) if status.is_success() => Some(v),
        _ => None,
    }
}

/// What the load saw acknowledged: created sessions (sid, token) and removed sids; and the
/// removals it asked for (one cut off by the kill may or may not have happened).
#[derive(Default)]
struct Acknowledged {
    created: Vec<(String, String)>,
    removed: Vec<String>,
    removal_asked: Vec<String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_of_one_of_two_servers_under_load_loses_nothing_acknowledged() {
    let store = Store::postgres();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut server_a = Binary::start(&store, &[], &[]).await;
    let mut server_b = Binary::start(&store, &[], &[]).await;
    let (a, b) = (server_a.base.clone(), server_b.base.clone());
    common::call(&http, &a, Method::PUT, "/api/v1/realms/r", Some(json!({}))).await;

    // Four workers per server create sessions and end every third one they created.
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (http, acked, stop) = (http.clone(), acked.clone(), stop.clone());
        let base = if w % 2 == 0 { a.clone() } else { b.clone() };
        workers.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let body = json!({"subject_id": format!("user-{w}-{}", i % 5)});
                let Some(c) = call(&http, &base, "/api/v1/realms/r/sessions", body).await else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let sid = c["sid"].as_str().unwrap().to_owned();
                let token = c["token"].as_str().unwrap().to_owned();
                acked.lock().unwrap().created.push((sid.clone(), token));
                if i.is_multiple_of(3) {
                    acked.lock().unwrap().removal_asked.push(sid.clone());
                    let body = json!({"sids": [sid], "reason": "load test"});
                    let path = "/api/v1/realms/r/sessions/end";
                    if call(&http, &base, path, body).await.is_some() {
                        acked.lock().unwrap().removed.push(sid);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server_a.kill(); // SIGKILL
    let at_kill = acked.lock().unwrap().created.len();
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        at_kill > 20,
        "the load ran before the kill ({at_kill} creates)"
    );
    assert!(
        acked.created.len() > at_kill,
        "server B kept answering after A was killed"
    );
    let removed: std::collections::HashSet<&String> = acked.removed.iter().collect();
    let asked: std::collections::HashSet<&String> = acked.removal_asked.iter().collect();
    for (sid, token) in &acked.created {
        let v = call(
            &http,
            &b,
            "/api/v1/realms/r/sessions/validate",
            json!({"token": token}),
        )
        .await
        .expect("validation through the survivor answers");
        let valid = v["valid"].as_bool().unwrap();
        if removed.contains(sid) {
            assert!(!valid, "{sid}: an acknowledged removal came back");
        } else if !asked.contains(sid) {
            assert!(valid, "{sid}: an acknowledged create was lost");
        }
    }
    println!(
        "{} creates acknowledged ({at_kill} before the kill), {} removals acknowledged",
        acked.created.len(),
        acked.removed.len()
    );
    server_b.kill();

    // The counters were written with the rows: a recount finds them equal.
    let store = PostgresStore::open(store.url()).await.unwrap();
    assert_eq!(store.check().await.unwrap(), Vec::<String>::new());
}
