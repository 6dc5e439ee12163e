//! Benchmark of the sled store at scale; prints a table.
//!
//! `cargo run --release -p sessions --example bench -- [SESSIONS] [DIR]` (default 200000 sessions
//! in a temporary directory; `THREADS=n` sets the number of inserting threads). Figures from a shared machine are indicative: compare runs on the
//! same machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use sessions::store::{dir_lock, DueCursor, SessionStore, SledStoreV2};
use sessions::{
    ClientRegistration, EndAllSessions, EndSessions, GrantKind, Network, NewGrant, NewSession,
    RealmSettingsUpdate, SessionQuery, SortKey,
};

/// The server's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FIRST: &[&str] = &[
    "Alice", "Bob", "Carla", "Dmitri", "Eve", "Farah", "Gustav", "Hana", "Ivan", "Julia", "Kenji",
    "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Wei", "Ximena", "Yusuf", "Zoe",
];
const LAST: &[&str] = &[
    "Smith", "Jones", "Garcia", "Müller", "Rossi", "Dubois", "Kowalski", "Nakamura", "Okafor",
    "Silva", "Novak", "Andersen", "Haddad", "Kim", "Nguyen", "Olsen", "Petrov", "Quinn", "Ramos",
    "Schmidt", "Tanaka", "Weber",
];
const CLIENTS: &[&str] = &["portal", "mail", "crm", "mobile-app", "billing", "wiki"];
const COUNTRIES: &[&str] = &["US", "DE", "FR", "GB", "JP", "BR", "IN", "NL"];

/// Small deterministic generator, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

struct Row(String, String);

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p) as usize]
}

async fn time_queries(
    store: &dyn SessionStore,
    query: &SessionQuery,
    runs: usize,
) -> (Duration, Duration, u64) {
    let mut samples = Vec::with_capacity(runs);
    let mut total = 0;
    for _ in 0..runs {
        let t = Instant::now();
        total = store.query("bench", query).await.unwrap().total_count;
        samples.push(t.elapsed());
    }
    (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
        total,
    )
}

/// In a child process: opens the store the benchmark built (after dropping the page cache when
/// permitted), answers one validation, and prints the time that took and the resident memory.
async fn reopen(dir: &str, token: &str) {
    let t = Instant::now();
    let store = SledStoreV2::open(dir).unwrap();
    assert!(store
        .validate("bench", token, false, Utc::now())
        .await
        .unwrap()
        .is_some());
    let rss = sessions::store::resident_bytes();
    println!("REOPENED {} {}", t.elapsed().as_secs_f64(), rss);
}

#[tokio::main]
async fn main() {
    sessions::store::huge_pages::disable_transparent_huge_pages();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--reopen") {
        reopen(&args[2], &args[3]).await;
        return;
    }
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let dir = args.get(2).map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let path = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    run(n, &path, Arc::new(SledStoreV2::open(&path).unwrap())).await;
}

async fn run(n: usize, path: &std::path::Path, store: Arc<SledStoreV2>) {
    let update = RealmSettingsUpdate {
        idle_timeout_secs: Some(30 * 24 * 3600),
        absolute_lifetime_secs: Some(60 * 24 * 3600),
        ..Default::default()
    };
    store
        .put_realm("bench", &update, "bench", Utc::now())
        .await
        .unwrap();
    let mut rows: Vec<Row> = Vec::new();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let start = Utc::now() - TimeDelta::days(1);

    // Inserts from two threads (the machine has two cores).
    let t = Instant::now();
    let threads: u64 = std::env::var("THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let per_thread = n / threads as usize;
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let store = store.clone();
            {
                let rt = tokio::runtime::Handle::current();
                std::thread::spawn(move || {
                    rt.block_on(async move {
                        let mut rng = Rng(0x2545f4914f6cdd1d ^ (thread + 1));
                        let mut out = Vec::with_capacity(per_thread);
                        for i in 0..per_thread {
                            let subject = format!("user-{}", rng.next() % (n as u64 / 3 + 1));
                            let name = format!("{} {}", rng.pick(FIRST), rng.pick(LAST));
                            let clients =
                                vec![rng.pick(CLIENTS).to_owned(), rng.pick(CLIENTS).to_owned()];
                            let new = NewSession {
                                subject_id: subject,
                                display_name: Some(name),
                                client_ids: clients,
                                ip: Some(format!(
                                    "10.{}.{}.{}",
                                    rng.next() % 256,
                                    rng.next() % 256,
                                    rng.next() % 256
                                )),
                                user_agent: Some(
                                    "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into(),
                                ),
                                ..Default::default()
                            };
                            let at = start
                                + TimeDelta::milliseconds((i * 2 + thread as usize) as i64 * 50);
                            // Placed as a GeoIP database would place it.
                            let network = Network {
                                country: Some(rng.pick(COUNTRIES).to_owned()),
                                city: Some(format!("City {}", rng.next() % 500)),
                                asn: Some(64_512 + (rng.next() % 200) as u32),
                                asn_org: Some(format!("Network {}", rng.next() % 200)),
                            };
                            let c = store
                                .create_located_session("bench", &new, Some(network), at)
                                .await
                                .unwrap();
                            out.push(Row(c.token, c.session.sid));
                        }
                        out
                    })
                })
            }
        })
        .collect();
    for h in handles {
        rows.extend(h.join().unwrap());
    }
    let insert_rate = rows.len() as f64 / t.elapsed().as_secs_f64();
    if std::env::var("BENCH_ONLY").as_deref() == Ok("create") {
        // For profiles of the write path: the creates alone.
        println!(
            "create (2 threads): {insert_rate:.0} /s; disk per session {:.0} bytes; resident memory {} MiB; write syscalls per create {:.2}",
            store.size_on_disk().unwrap() as f64 / rows.len() as f64,
            sessions::store::resident_bytes() >> 20,
            std::fs::read_to_string("/proc/self/io")
                .ok()
                .and_then(|io| io.lines().find_map(|l| l.strip_prefix("syscw: ")?.parse::<f64>().ok()))
                .unwrap_or(0.0)
                / rows.len() as f64
        );
        return;
    }
    // One subject with 1,000 sessions for the removal figure, and another whose sessions each
    // hold a refresh token and joined a client with a back-channel URI.
    let notified = ClientRegistration {
        backchannel_logout_uri: Some("http://127.0.0.1:9/logout".into()),
        ..Default::default()
    };
    store
        .put_client("bench", "notified-app", &notified, "bench", Utc::now())
        .await
        .unwrap();
    for i in 0..1000 {
        let new = NewSession {
            subject_id: "heavy-user".into(),
            ..Default::default()
        };
        store
            .create_session("bench", &new, Utc::now())
            .await
            .unwrap();
        let new = NewSession {
            subject_id: "heavy-user-2".into(),
            client_ids: vec!["notified-app".into()],
            ..Default::default()
        };
        let sid = store
            .create_session("bench", &new, Utc::now())
            .await
            .unwrap()
            .session
            .sid;
        let grant = NewGrant {
            kind: GrantKind::RefreshToken,
            subject_id: "heavy-user-2".into(),
            sid: Some(sid),
            client_id: "notified-app".into(),
            expires_at: Utc::now() + TimeDelta::days(30),
            token: Some(format!("heavy-refresh-token-{i:06}")),
            scopes: Vec::new(),
        };
        store
            .create_grant("bench", &grant, Utc::now())
            .await
            .unwrap();
    }

    let mut table: Vec<(String, String)> = Vec::new();
    table.push((
        "sessions stored".into(),
        format!("{}", store.get_realm("bench").await.unwrap().session_count),
    ));
    table.push(("create (2 threads)".into(), format!("{insert_rate:.0} /s")));

    // Validation without refresh, two threads.
    let ops = 200_000usize;
    let tokens: Arc<Vec<String>> = Arc::new(rows.iter().map(|r| r.0.clone()).collect());
    let t = Instant::now();
    let handles: Vec<_> = (0..2u64)
        .map(|thread| {
            let (store, tokens) = (store.clone(), tokens.clone());
            {
                let rt = tokio::runtime::Handle::current();
                std::thread::spawn(move || {
                    rt.block_on(async move {
                        let mut rng = Rng(77 + thread);
                        let now = Utc::now();
                        for _ in 0..ops / 2 {
                            let tok = &tokens[(rng.next() % tokens.len() as u64) as usize];
                            assert!(store
                                .validate("bench", tok, false, now)
                                .await
                                .unwrap()
                                .is_some());
                        }
                    })
                })
            }
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    table.push((
        "validate, refresh=false (2 threads)".into(),
        format!("{:.0} /s", ops as f64 / t.elapsed().as_secs_f64()),
    ));

    let t = Instant::now();
    let now = Utc::now();
    for _ in 0..ops / 4 {
        let tok = &tokens[(rng.next() % tokens.len() as u64) as usize];
        store.validate("bench", tok, true, now).await.unwrap();
    }
    table.push((
        "validate, refresh=true (1 thread, mostly coalesced)".into(),
        format!("{:.0} /s", (ops / 4) as f64 / t.elapsed().as_secs_f64()),
    ));

    // Grants: one refresh token for each of up to 100,000 sessions, then introspection.
    let granted = rows.len().min(100_000);
    let t = Instant::now();
    let handles: Vec<_> = (0..2usize)
        .map(|thread| {
            let store = store.clone();
            let sids: Vec<String> = rows[..granted]
                .iter()
                .skip(thread)
                .step_by(2)
                .map(|r| r.1.clone())
                .collect();
            {
                let rt = tokio::runtime::Handle::current();
                std::thread::spawn(move || {
                    rt.block_on(async move {
                        for sid in sids {
                            let session = store.get_session("bench", &sid).await.unwrap();
                            let grant = NewGrant {
                                kind: GrantKind::RefreshToken,
                                subject_id: session.subject_id,
                                client_id: session.client_ids[0].clone(),
                                expires_at: Utc::now() + TimeDelta::days(30),
                                token: Some(format!("refresh-token-of-{sid}")),
                                scopes: vec!["openid".into()],
                                sid: Some(sid),
                            };
                            store
                                .create_grant("bench", &grant, Utc::now())
                                .await
                                .unwrap();
                        }
                    })
                })
            }
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    table.push((
        format!("record a refresh token ({granted}, 2 threads)"),
        format!("{:.0} /s", granted as f64 / t.elapsed().as_secs_f64()),
    ));
    let t = Instant::now();
    let handles: Vec<_> = (0..2u64)
        .map(|thread| {
            let store = store.clone();
            let sids: Vec<String> = rows[..granted].iter().map(|r| r.1.clone()).collect();
            {
                let rt = tokio::runtime::Handle::current();
                std::thread::spawn(move || {
                    rt.block_on(async move {
                        let mut rng = Rng(99 + thread);
                        let now = Utc::now();
                        for _ in 0..ops / 2 {
                            let sid = &sids[(rng.next() % sids.len() as u64) as usize];
                            let token = format!("refresh-token-of-{sid}");
                            assert!(store
                                .introspect("bench", &token, now)
                                .await
                                .unwrap()
                                .is_some());
                        }
                    })
                })
            }
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    table.push((
        "introspect a token (2 threads)".into(),
        format!("{:.0} /s", ops as f64 / t.elapsed().as_secs_f64()),
    ));

    let q = |f: &dyn Fn(&mut SessionQuery)| {
        let mut q = SessionQuery::default();
        f(&mut q);
        q
    };
    let cases: Vec<(&str, SessionQuery)> = vec![
        ("page 1 of all, by created", q(&|_| {})),
        (
            "page 1 of all, by last access",
            q(&|q| q.sort = SortKey::LastAccess),
        ),
        (
            "page 1 of all, by expiry",
            q(&|q| q.sort = SortKey::Expires),
        ),
        (
            "subject filter",
            q(&|q| q.filters.subject_id = Some("user-42".into())),
        ),
        (
            "display-name prefix 'smi'",
            q(&|q| q.filters.display_name = Some("smi".into())),
        ),
        (
            "display-name 'alice smi' (two words)",
            q(&|q| q.filters.display_name = Some("alice smi".into())),
        ),
        (
            "client filter 'crm'",
            q(&|q| q.filters.client_id = Some("crm".into())),
        ),
        (
            "client 'crm', by last access",
            q(&|q| {
                q.filters.client_id = Some("crm".into());
                q.sort = SortKey::LastAccess
            }),
        ),
        (
            "sid filter",
            q(&|q| q.filters.sid = Some(rows[rows.len() / 2].1.clone())),
        ),
    ];
    // Anomalies comparing a subject's sessions read the realm: timed on fewer runs.
    let anomaly = |a: &str| q(&|q| q.filters.anomaly = Some(a.into()));
    let cases: Vec<(&str, SessionQuery, usize)> = cases
        .into_iter()
        .map(|(name, query)| (name, query, 50))
        .chain([
            (
                "country 'DE'",
                q(&|q| q.filters.country = Some("DE".into())),
                50,
            ),
            ("anomaly country_changed", anomaly("country_changed"), 5),
            (
                "anomaly country_spread (24 h)",
                anomaly("country_spread"),
                3,
            ),
            ("anomaly new_device", anomaly("new_device"), 3),
        ])
        .collect();
    for (name, query, runs) in cases {
        let (p50, p99, total) = time_queries(&*store, &query, runs).await;
        table.push((
            format!("query: {name} (total {total})"),
            format!("p50 {p50:.2?}  p99 {p99:.2?}"),
        ));
    }

    // Deep paging: walk forward and compare the cost of early and deep pages.
    let mut query = SessionQuery {
        count: Some(25),
        ..Default::default()
    };
    let pages = (rows.len() / 25).min(8_000);
    let mut samples = Vec::with_capacity(pages);
    for _ in 0..pages {
        let t = Instant::now();
        let page = store.query("bench", &query).await.unwrap();
        samples.push(t.elapsed());
        query.results_token = page.results_token;
    }
    let split = 100.min(samples.len() / 2);
    let (early, deep) = samples.split_at_mut(split);
    let deep_len = deep.len();
    let deep = &mut deep[deep_len.saturating_sub(100)..];
    table.push((
        "query: pages 1-100, p50".into(),
        format!("{:.2?}", percentile(early, 0.5)),
    ));
    table.push((
        format!("query: pages {}-{}, p50", pages - 99, pages),
        format!("{:.2?}", percentile(deep, 0.5)),
    ));

    let (outcome, took) = timed_removal(&store, "heavy-user").await;
    table.push((
        format!(
            "remove {} sessions of one subject (durable)",
            outcome.records_deleted
        ),
        took,
    ));

    let (outcome, took) = timed_removal(&store, "heavy-user-2").await;
    table.push((
        format!(
            "remove {} sessions with {} tokens, queue {} logouts (durable)",
            outcome.records_deleted, outcome.tokens_revoked, outcome.clients_notified
        ),
        took,
    ));

    let t = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (store, sids) = (
                store.clone(),
                rows[i * 50..(i + 1) * 50]
                    .iter()
                    .map(|r| r.1.clone())
                    .collect::<Vec<_>>(),
            );
            {
                let rt = tokio::runtime::Handle::current();
                std::thread::spawn(move || {
                    rt.block_on(async move {
                        for sid in sids {
                            let req = EndSessions {
                                sids: vec![sid],
                                ..Default::default()
                            };
                            store
                                .end_sessions("bench", &req, "bench", Utc::now())
                                .await
                                .unwrap();
                        }
                    })
                })
            }
        })
        .collect();
    let flushes_before = store.durable_flushes();
    threads.into_iter().for_each(|h| h.join().unwrap());
    table.push((
        "400 single-session removals, 8 threads (durable)".into(),
        format!(
            "{:.0} /s, {} flushes",
            400.0 / t.elapsed().as_secs_f64(),
            store.durable_flushes() - flushes_before
        ),
    ));
    let size = store.size_on_disk().unwrap();
    table.push((
        "disk per session".into(),
        format!("{:.0} bytes", size as f64 / rows.len() as f64),
    ));

    outbox_scan(&*store, (n / 20).clamp(1_000, 50_000), &mut table).await;

    table.push((
        "resident memory of the benchmark process".into(),
        format!("{} MiB", sessions::store::resident_bytes() >> 20),
    ));
    // Reopen in a fresh process, from a cold page cache where the machine lets us drop it.
    let token = rows[rows.len() / 3].0.clone();
    drop(rows);
    drop(tokens);
    drop(store);
    std::thread::sleep(Duration::from_millis(500));
    let _ = std::process::Command::new("sync").status();
    reopen_row(path, &token, "as written", &mut table);
    // Offline compaction (`server compact`), then the same cold open.
    let t = Instant::now();
    let wait = Duration::from_secs(30);
    let stats = dir_lock::open_when_free(path, wait, || SledStoreV2::compact(path)).unwrap();
    table.push((
        "compact the store offline (`server compact`)".into(),
        format!(
            "{:.1} s, {} MiB -> {} MiB",
            t.elapsed().as_secs_f64(),
            stats.bytes_before >> 20,
            stats.bytes_after >> 20
        ),
    ));
    table.push((
        "disk per session after compaction".into(),
        format!("{:.0} bytes", stats.bytes_after as f64 / n as f64),
    ));
    std::thread::sleep(Duration::from_millis(500));
    reopen_row(path, &token, "after compaction", &mut table);

    let width = table.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text = format!("\n| {:width$} | result\n", "measure");
    text.push_str(&format!("|-{:-<width$}-|-------\n", ""));
    for (k, v) in &table {
        text.push_str(&format!("| {k:width$} | {v}\n"));
    }
    println!("{text}");
    if let Ok(file) = std::env::var("BENCH_OUT") {
        let machine = format!(
            "{} cores, {}, {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|c| c.lines().find_map(|l| l
                    .strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())))
                .unwrap_or_else(|| "unknown CPU".into()),
            std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| m.lines().next().map(|l| l
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)))
                .map_or("unknown memory".into(), |kb| format!(
                    "{} GiB RAM",
                    kb >> 20
                )),
        );
        let section = format!(
            "## Store level (`make bench`)\n\nThe last table `make bench` printed (`cargo run --release -p sessions --example bench -- {n}`).\n\n- date: {}\n- machine: {machine} (shared with other work: figures are indicative)\n- store layout: v2 (one tree, batched writes)\n- sessions: {n}\n{text}",
            Utc::now().format("%Y-%m-%d %H:%M UTC"),
        );
        let doc = std::fs::read_to_string(&file).unwrap_or_else(|_| "# Benchmarks\n".into());
        std::fs::write(&file, with_section(&doc, &section)).unwrap();
    }
}

/// Removes every session of `subject` (durable) and answers the outcome and the time it took,
/// with where the time goes: the same removal as a dry run first (the reads alone), and the
/// bytes the process wrote during the real one (after flushing what came before).
async fn timed_removal(store: &SledStoreV2, subject: &str) -> (sessions::EndOutcome, String) {
    let request = |dry_run| EndSessions {
        subject_id: Some(subject.into()),
        dry_run,
        ..Default::default()
    };
    let t = Instant::now();
    store
        .end_sessions("bench", &request(true), "bench", Utc::now())
        .await
        .unwrap();
    let reads = t.elapsed();
    let written = || {
        std::fs::read_to_string("/proc/self/io")
            .ok()
            .and_then(|io| {
                io.lines()
                    .find_map(|l| l.strip_prefix("wchar: ")?.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    // What earlier, non-durable operations left unflushed is not this removal's to write.
    store.wait_durable().unwrap();
    let before = written();
    let t = Instant::now();
    let outcome = store
        .end_sessions("bench", &request(false), "bench", Utc::now())
        .await
        .unwrap();
    let took = t.elapsed();
    let bytes = written() - before;
    (
        outcome,
        format!(
            "{took:.2?} (its dry run, the reads alone: {reads:.2?}; {:.1} MiB written)",
            bytes as f64 / (1 << 20) as f64
        ),
    )
}

/// `doc` with the text between this benchmark's markers replaced by `section` (appended, with
/// the markers, if they are missing), so other sections of the file stay as they are.
fn with_section(doc: &str, section: &str) -> String {
    const BEGIN: &str = "<!-- make bench: begin -->";
    const END: &str = "<!-- make bench: end -->";
    let block = format!("{BEGIN}\n{section}{END}");
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &doc[..b], &doc[e + END.len()..]),
        _ => format!("{}\n{block}\n", doc.trim_end()),
    }
}

/// Opens the store in a fresh process, from a cold page cache where the machine lets us drop
/// it, and adds the time to the first validation and the resident memory to the table.
fn reopen_row(path: &std::path::Path, token: &str, what: &str, table: &mut Vec<(String, String)>) {
    let _ = std::process::Command::new("sync").status();
    let cold = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--reopen", path.to_str().unwrap(), token])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    match text.lines().find_map(|l| l.strip_prefix("REOPENED ")) {
        Some(rest) => {
            let mut parts = rest.split(' ');
            let secs: f64 = parts.next().unwrap().parse().unwrap();
            let rss: u64 = parts.next().unwrap().parse().unwrap();
            let how = if cold {
                "page cache dropped"
            } else {
                "warm page cache"
            };
            table.push((
                format!("open {what}, first validate answered ({how})"),
                format!("{secs:.2} s"),
            ));
            table.push((
                format!("resident memory after open {what}"),
                format!("{} MiB", rss >> 20),
            ));
        }
        None => table.push((
            format!("open {what}"),
            format!("failed: {}", String::from_utf8_lossy(&out.stderr)),
        )),
    }
}

/// The delivery worker's look at the outbox while one client, at its limit of attempts in flight,
/// has a backlog of `backlog` deliveries queued before another client's one.
async fn outbox_scan(store: &dyn SessionStore, backlog: usize, table: &mut Vec<(String, String)>) {
    let now = Utc::now();
    store
        .put_realm("outbox", &RealmSettingsUpdate::default(), "bench", now)
        .await
        .unwrap();
    for client in ["slow", "fast"] {
        let reg = ClientRegistration {
            backchannel_logout_uri: Some(format!("http://127.0.0.1:9/{client}")),
            ..Default::default()
        };
        store
            .put_client("outbox", client, &reg, "bench", now)
            .await
            .unwrap();
    }
    let session = |client: &str, i: usize| NewSession {
        subject_id: format!("{client}-user-{i}"),
        client_ids: vec![client.to_owned()],
        ..Default::default()
    };
    for i in 0..backlog {
        store
            .create_session("outbox", &session("slow", i), now)
            .await
            .unwrap();
    }
    let all = EndAllSessions::default();
    store
        .end_all_sessions("outbox", &all, "bench", now)
        .await
        .unwrap();
    store
        .create_session("outbox", &session("fast", 0), now)
        .await
        .unwrap();
    store
        .end_all_sessions("outbox", &all, "bench", now)
        .await
        .unwrap();

    let busy = |_: &str, client: &str, _: u64| client == "slow";
    let mut samples = Vec::with_capacity(200);
    for _ in 0..200 {
        let mut cursor = DueCursor::default();
        let t = Instant::now();
        let due = store
            .due_deliveries(Utc::now(), 64, 4, &mut cursor, &busy)
            .await
            .unwrap();
        samples.push(t.elapsed());
        assert!(due.iter().any(|d| d.client_id == "fast"));
    }
    table.push((
        format!("outbox scan, a busy client's {backlog} queued first, p50"),
        format!(
            "{:.2?} (finds the other client's delivery)",
            percentile(&mut samples, 0.5)
        ),
    ));
}
