//! Our side, on either backend: the data set written straight into the store through the
//! `SessionStore` trait (what the server would have stored had each session come through the
//! API) — a data directory of the embedded store, or a database on the bench's scratch
//! PostgreSQL — and the release server started on it. Its clients have back-channel logout URIs
//! (a receiver on 127.0.0.1, which the server is told to allow), and the removal subjects hold
//! grants, so its removals revoke and notify as in production.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sessions::store::{SessionStore, SledStore};
use sessions::{ClientRegistration, CreatedSession, NewGrant, NewSession, RealmSettingsUpdate};
use store_postgres::PostgresStore;

use crate::dataset::{
    expired_session, Dataset, SeedGrant, SeedSession, ABSOLUTE_LIFETIME, CLIENTS, GRANT_SCOPES,
    IDLE_TIMEOUT, REALM, REMOVAL_SUBJECTS, REMOVAL_WORKLOADS, SWEEP_REALM,
};
use crate::process::Running;

/// The actor recorded for the seeding's realm and client changes.
const ACTOR: &str = "bench-http";

/// Where our server keeps its sessions.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded store, in a data directory.
    Embedded(PathBuf),
    /// PostgreSQL, the database this URL names.
    Postgres(String),
}

/// A store of either backend, opened for seeding.
enum Opened {
    Embedded(Box<SledStore>),
    Postgres(PostgresStore),
}

impl Opened {
    fn store(&self) -> &dyn SessionStore {
        match self {
            Opened::Embedded(s) => s.as_ref(),
            Opened::Postgres(s) => s,
        }
    }

    /// Threads creating sessions: concurrent creates share sled batches (group commit) or
    /// PostgreSQL's log flushes (one per commit, shared by the commits waiting at once).
    fn seed_threads(&self) -> usize {
        match self {
            Opened::Embedded(_) => 4,
            Opened::Postgres(_) => store_postgres::store::DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Waits until everything stored is on disk (PostgreSQL's commits are).
    fn wait_durable(&self) -> Result<(), String> {
        match self {
            Opened::Embedded(s) => s.wait_durable().map_err(|e| e.to_string()),
            Opened::Postgres(_) => Ok(()),
        }
    }
}

impl Backend {
    /// The side's name in progress lines.
    pub fn side(&self) -> &'static str {
        match self {
            Backend::Embedded(_) => "ours",
            Backend::Postgres(_) => "ours on PostgreSQL",
        }
    }

    async fn open(&self) -> Result<Opened, String> {
        match self {
            Backend::Embedded(dir) => SledStore::open(dir)
                .map(|s| Opened::Embedded(Box::new(s)))
                .map_err(|e| format!("cannot open a store in {}: {e}", dir.display())),
            Backend::Postgres(url) => PostgresStore::open(url)
                .await
                .map(Opened::Postgres)
                .map_err(|e| format!("cannot open the store on PostgreSQL: {e}")),
        }
    }
}

/// Creates realm [`REALM`] and its clients, each with `logout_uri` as its back-channel logout
/// URI, in the store and stores the data set with its grants; answers the tokens of the sampled
/// sessions, in index order.
pub fn seed(
    backend: &Backend,
    data: &Dataset,
    logout_uri: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<String>, String> {
    let runtime = seeding_runtime()?;
    let opened = runtime.block_on(backend.open())?;
    let store = opened.store();
    runtime.block_on(put_realm(store, REALM, data.now))?;
    for client in CLIENTS {
        let registration = ClientRegistration {
            backchannel_logout_uri: Some(logout_uri.to_owned()),
            ..Default::default()
        };
        runtime
            .block_on(store.put_client(REALM, client, &registration, ACTOR, data.now))
            .map_err(|e| e.to_string())?;
    }
    let tokens = Mutex::new(Vec::new());
    create_all(
        &runtime,
        &opened,
        REALM,
        data.size,
        |i| data.session(i),
        progress,
        |i, created| {
            for grant in data.session_grants(i) {
                runtime.block_on(put_grant(store, &grant, Some(&created.session.sid)))?;
            }
            if data.sampled(i) {
                tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((i, created.token.clone()));
            }
            Ok(())
        },
    )?;
    for k in 0..REMOVAL_WORKLOADS * REMOVAL_SUBJECTS {
        for consent in data.consents(k) {
            runtime.block_on(put_grant(store, &consent, None))?;
        }
    }
    opened.wait_durable()?;
    let mut tokens = tokens.into_inner().unwrap_or_else(|p| p.into_inner());
    tokens.sort();
    Ok(tokens.into_iter().map(|(_, t)| t).collect())
}

/// Records a seeded grant as the identity provider would have when it issued it, under our
/// session `sid` (refresh tokens).
async fn put_grant(
    store: &dyn SessionStore,
    grant: &SeedGrant,
    sid: Option<&str>,
) -> Result<(), String> {
    let new = NewGrant {
        kind: grant.kind,
        subject_id: grant.subject_id.clone(),
        sid: sid.map(str::to_owned),
        client_id: grant.client_id.clone(),
        expires_at: grant.expires,
        token: grant.token.clone(),
        scopes: GRANT_SCOPES.iter().map(|s| s.to_string()).collect(),
    };
    store
        .create_grant(REALM, &new, grant.created)
        .await
        .map(|_| ())
        .map_err(|e| format!("recording a grant of {}: {e}", grant.subject_id))
}

/// Stores `count` sessions in realm [`SWEEP_REALM`] that expired an hour before `now`.
pub fn seed_expired(
    backend: &Backend,
    count: usize,
    now: DateTime<Utc>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), String> {
    let runtime = seeding_runtime()?;
    let opened = runtime.block_on(backend.open())?;
    runtime.block_on(put_realm(opened.store(), SWEEP_REALM, now))?;
    create_all(
        &runtime,
        &opened,
        SWEEP_REALM,
        count,
        |i| expired_session(i, now),
        progress,
        |_, _| Ok(()),
    )?;
    opened.wait_durable()
}

/// Fills the PostgreSQL database at `url` with a copy of the embedded store in `from` through
/// `server migrate-store`, the product's own path between the backends (its sessions' tokens stay
/// valid, its counters are rebuilt from the rows): several times faster than creating a million
/// sessions one by one, each in a transaction of its own.
pub fn copy_into_postgres(server: &Path, from: &Path, url: &str) -> Result<(), String> {
    let out = Command::new(server)
        .arg("migrate-store")
        .arg("--from")
        .arg(from)
        .arg("--to")
        .arg(url)
        .env("RUST_LOG", "warn")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", server.display()))?;
    if !out.status.success() {
        return Err(format!(
            "migrate-store failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Copies a closed store's directory (`cp -a`).
pub fn copy_store(from: &Path, to: &Path) -> Result<(), String> {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .map_err(|e| format!("cannot run cp: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cannot copy {} to {}",
            from.display(),
            to.display()
        ));
    }
    Ok(())
}

/// Our server's reaper interval here: its first pass comes one interval after start, after the
/// warm-up load that precedes the measured expiry sweep.
pub const REAPER_INTERVAL_SECS: u64 = 15;

/// Starts `server serve` on the backend's store at a free port of 127.0.0.1 with `api_key` as its
/// bootstrap key, from `workspace` (where it finds the dashboard's assets), back-channel logout
/// URIs on 127.0.0.1 allowed, and `extra` arguments (such as [`Places::args`]), and waits for
/// `/healthz`.
pub fn start(
    server: &Path,
    workspace: &Path,
    backend: &Backend,
    api_key: &str,
    extra: &[String],
) -> Result<Running, String> {
    let addr = crate::process::free_addr()?;
    let mut cmd = Command::new(server);
    cmd.current_dir(workspace)
        .arg("serve")
        .arg("--addr")
        .arg(addr.to_string())
        .args(["--backchannel-allow-hosts", "127.0.0.1"]);
    match backend {
        Backend::Embedded(dir) => cmd.arg("--data-dir").arg(dir),
        Backend::Postgres(url) => cmd.arg("--store").arg(url),
    };
    cmd.args(extra);
    cmd.env("SESSIONS_BOOTSTRAP_API_KEY", api_key)
        .env(
            "SESSIONS_REAPER_INTERVAL_SECS",
            REAPER_INTERVAL_SECS.to_string(),
        )
        .env("RUST_LOG", "warn,sled=warn")
        .stdout(Stdio::null());
    Running::start(cmd, addr, "/healthz", backend.side())
}

/// The GeoIP databases a placing server reads.
#[derive(Clone, Debug)]
pub struct Places {
    pub city: PathBuf,
    pub asn: PathBuf,
}

impl Places {
    /// The server's arguments that name the databases: it places every session it creates.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--geoip-db".into(),
            self.city.display().to_string(),
            "--asn-db".into(),
            self.asn.display().to_string(),
        ]
    }
}

/// Networks in the synthetic databases: as many /24 networks as a real City database holds
/// ranges, so that a lookup walks as deep a tree.
const SYNTHETIC_NETWORKS: &str = "1000000";

/// Writes synthetic City and ASN databases into `dir` with the `geoip-fixture` binary (every
/// address of the data set is in them).
pub fn write_places(fixture: &Path, dir: &Path) -> Result<Places, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let status = Command::new(fixture)
        .arg(dir)
        .args(["--synthetic", SYNTHETIC_NETWORKS])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", fixture.display()))?;
    if !status.success() {
        return Err(format!("{} failed: {status}", fixture.display()));
    }
    Ok(Places {
        city: dir.join("GeoLite2-City.mmdb"),
        asn: dir.join("GeoLite2-ASN.mmdb"),
    })
}

/// The runtime the seeding's store calls run on (PostgreSQL's connections too).
fn seeding_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime for seeding: {e}"))
}

async fn put_realm(
    store: &dyn SessionStore,
    realm: &str,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let settings = RealmSettingsUpdate {
        idle_timeout_secs: Some(IDLE_TIMEOUT.num_seconds() as u64),
        absolute_lifetime_secs: Some(ABSOLUTE_LIFETIME.num_seconds() as u64),
        ..Default::default()
    };
    store
        .put_realm(realm, &settings, ACTOR, now)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Creates sessions `0..count` of `realm` on the backend's seeding threads (each waiting for its
/// store calls on `runtime`), each at its own creation time, handing what the store answered to
/// `created` (on the same thread).
fn create_all(
    runtime: &tokio::runtime::Runtime,
    opened: &Opened,
    realm: &str,
    count: usize,
    session: impl Fn(usize) -> SeedSession + Sync,
    progress: &(dyn Fn(&str) + Sync),
    created: impl Fn(usize, &CreatedSession) -> Result<(), String> + Sync,
) -> Result<(), String> {
    let store = opened.store();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let step = (count / 10).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..opened.seed_threads())
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return Ok(());
                        }
                        let s = session(i);
                        let new = NewSession {
                            subject_id: s.subject_id,
                            display_name: Some(s.display_name),
                            client_ids: s.client_ids,
                            ip: Some(s.ip),
                            user_agent: Some(s.user_agent.to_owned()),
                            ..Default::default()
                        };
                        let answer = runtime
                            .block_on(store.create_session(realm, &new, s.created))
                            .map_err(|e| format!("creating session {i}: {e}"))?;
                        created(i, &answer)?;
                        if (i + 1).is_multiple_of(step) {
                            let rate = (i + 1) as f64 / started.elapsed().as_secs_f64();
                            progress(&format!(
                                "{realm}: {} of {count} sessions stored ({rate:.0}/s)",
                                i + 1
                            ));
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| "a seeding thread panicked".to_owned())?
        })
    })
}
