//! The run: for each size, load every store with the same data set, then start each side in turn
//! (the ceiling, our server on its embedded store, the incumbent, our server on PostgreSQL — the
//! incumbent's PostgreSQL server, a database of its own) and drive every workload through HTTP
//! with wrk. A do-nothing receiver takes our server's back-channel logouts throughout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use crate::dataset::{Dataset, REALM, SWEEP_REALM};
use crate::incumbent::{endpoint, Incumbent};
use crate::ours::{Backend, Places};
use crate::process::{self, Running};
use crate::report::{Cell, Row};
use crate::workloads::{Request, Shape, Side, Workload, ALL, PAGE};
use crate::wrk::{self, Load, Measured, Send};

/// What a run measures and how.
#[derive(Clone, Debug)]
pub struct Settings {
    pub sizes: Vec<usize>,
    pub duration: Duration,
    pub threads: u32,
    /// Connections of data-plane loads (validate, create).
    pub connections: u32,
    /// Connections of an administrator's queries.
    pub admin_connections: u32,
    /// Expired sessions the expiry sweep removes.
    pub sweep: usize,
    /// Pool size of the incumbent's endpoint.
    pub pool: usize,
    /// Our release server binary.
    pub server: PathBuf,
    /// The `geoip-fixture` binary, which writes the GeoIP databases of the placement A/B.
    pub geoip_fixture: PathBuf,
    /// The workspace (our server runs from it, for the dashboard's assets).
    pub workspace: PathBuf,
}

/// Progress lines on stderr, with the time since the run started.
pub struct Progress(Instant);

impl Progress {
    pub fn new() -> Progress {
        Progress(Instant::now())
    }

    pub fn say(&self, message: &str) {
        eprintln!(
            "[bench-http {:>6.1}s] {message}",
            self.0.elapsed().as_secs_f64()
        );
    }
}

/// Everything one size's measurements share.
struct Bench<'a> {
    settings: &'a Settings,
    progress: &'a Progress,
    script: PathBuf,
    work: PathBuf,
    data: Dataset,
    /// Our clients' back-channel logout URI: a do-nothing receiver running through the size.
    logout_uri: String,
}

/// Runs every size; answers the rows.
pub fn run(settings: &Settings, progress: &Progress) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for &size in &settings.sizes {
        rows.extend(with_bench(settings, progress, size, |bench| bench.size())?);
        progress.say(&format!("{size} sessions: done; work directory deleted"));
    }
    Ok(rows)
}

/// Runs `f` on a [`Bench`] of `size` sessions: a work directory, the wrk script and a logout
/// receiver, all gone when it returns.
fn with_bench<T>(
    settings: &Settings,
    progress: &Progress,
    size: usize,
    f: impl FnOnce(&Bench<'_>) -> Result<T, String>,
) -> Result<T, String> {
    let work = tempfile::Builder::new()
        .prefix("bench-http-")
        .tempdir()
        .map_err(|e| format!("cannot create a work directory: {e}"))?;
    let receiver = start_ceiling("the logout receiver")?;
    let bench = Bench {
        settings,
        progress,
        script: wrk::install_script(work.path()).map_err(|e| e.to_string())?,
        work: work.path().to_owned(),
        data: Dataset::new(size, Utc::now()),
        logout_uri: format!("http://{}{}", receiver.addr, crate::ceiling::PATH),
    };
    let result = f(&bench);
    drop(receiver);
    drop(work);
    result
}

/// `bench-http cache`: the data set stored once in an embedded store of `size` sessions, then
/// our server started on it with each page cache size in turn ([`Bench::cache_sweep`]); answers
/// the markdown table.
pub fn cache_sweep(
    settings: &Settings,
    progress: &Progress,
    size: usize,
    caches_mb: &[u32],
) -> Result<String, String> {
    with_bench(settings, progress, size, |bench| {
        bench.cache_sweep(caches_mb)
    })
}

/// One side's measurements, by workload.
type Results = HashMap<&'static str, Cell>;

impl Bench<'_> {
    fn say(&self, message: &str) {
        self.progress
            .say(&format!("{} sessions: {message}", self.data.size));
    }

    fn size(&self) -> Result<Vec<Row>, String> {
        let size = self.data.size;
        let (post_ceiling, get_ceiling) = self.ceiling()?;
        let (ours, tokens) = self.ours(&Backend::Embedded(self.work.join("ours")), None, None)?;
        self.say("starting PostgreSQL (durable settings) for Duende and for our server");
        let mut pg = Incumbent::start()?;
        let theirs = self.incumbent(&mut pg)?;
        let ours_pg = Backend::Postgres(pg.another_database(OURS_DATABASE)?);
        let (ours_pg, _) = self.ours(&ours_pg, Some(&mut pg), Some(tokens))?;
        drop(pg);
        let mut rows = Vec::new();
        for w in ALL {
            let ceiling = (w.shape() == Shape::DataPlane).then_some(post_ceiling);
            rows.push(Row {
                key: w.key(),
                label: w.label(size),
                size,
                ours: take(&ours, w.key()),
                ours_postgres: take(&ours_pg, w.key()),
                incumbent: take(&theirs, w.key()),
                ceiling,
                charted: true,
            });
        }
        let sweep = crate::report::thousands(self.settings.sweep);
        for (key, label) in [
            (
                SWEEP_KEY,
                format!("validate during a sweep of {sweep} expired"),
            ),
            (SWEEP_TIME, format!("sweep of {sweep} expired: duration")),
            (PLACED_OFF, format!("{PLACED_OFF} ({PLACED_RUNS})")),
            (PLACED_ON, format!("{PLACED_ON} ({PLACED_RUNS})")),
            (PLACED_RATIO, PLACED_RATIO.to_owned()),
            (COLD, COLD.to_owned()),
            (DISK, DISK.to_owned()),
            (MEMORY, MEMORY.to_owned()),
        ] {
            rows.push(Row {
                key,
                label,
                size,
                ours: take(&ours, key),
                ours_postgres: take(&ours_pg, key),
                incumbent: take(&theirs, key),
                ceiling: (key == SWEEP_KEY).then_some(post_ceiling),
                charted: key == SWEEP_KEY,
            });
        }
        for (key, measured) in [
            ("ceiling: do-nothing handler, POST", post_ceiling),
            ("ceiling: do-nothing handler, GET", get_ceiling),
        ] {
            rows.push(Row {
                key,
                label: key.to_owned(),
                size,
                ours: Cell::Load(measured),
                ours_postgres: Cell::Absent(""),
                incumbent: Cell::Absent(""),
                ceiling: None,
                charted: false,
            });
        }
        Ok(rows)
    }

    /// The do-nothing handler, `POST` and `GET`.
    fn ceiling(&self) -> Result<(Measured, Measured), String> {
        let server = start_ceiling("the ceiling")?;
        let base = format!("http://{}", server.addr);
        let post = Request {
            send: Send::Body,
            target: crate::ceiling::PATH.into(),
            lines: vec![r#"{"token":"x","refresh":false}"#.into()],
        };
        let get = Request {
            send: Send::Path,
            target: String::new(),
            lines: vec![crate::ceiling::PATH.into()],
        };
        let post = self.drive(&base, None, &post, Shape::DataPlane, "ceiling POST")?;
        let get = self.drive(&base, None, &get, Shape::DataPlane, "ceiling GET")?;
        drop(server);
        Ok((post, get))
    }

    /// Where the embedded side's freshly seeded store is kept for the PostgreSQL side.
    fn seeded_copy(&self) -> PathBuf {
        self.work.join("seeded")
    }

    /// Our side on `backend` (on `pg`'s server if it is PostgreSQL): seed, serve, measure, then
    /// a cold start and the expiry sweep; answers the measurements and the sampled tokens.
    /// The embedded store is seeded through the store and copied before it is measured;
    /// PostgreSQL is filled from that copy ([`crate::ours::copy_into_postgres`]) and validates
    /// the same `tokens`.
    fn ours(
        &self,
        backend: &Backend,
        pg: Option<&mut Incumbent>,
        tokens: Option<Vec<String>>,
    ) -> Result<(Results, Vec<String>), String> {
        let who = backend.side();
        let seeded = self.seeded_copy();
        let tokens = match (backend, tokens) {
            (Backend::Embedded(dir), _) => {
                self.say(&format!("{who}: storing the data set"));
                let tokens =
                    crate::ours::seed(backend, &self.data, &self.logout_uri, &|m| self.say(m))?;
                crate::ours::copy_store(dir, &seeded)?;
                tokens
            }
            (Backend::Postgres(url), Some(tokens)) => {
                self.say(&format!(
                    "{who}: copying the seeded embedded store in (server migrate-store)"
                ));
                let t = Instant::now();
                crate::ours::copy_into_postgres(&self.settings.server, &seeded, url)?;
                self.say(&format!(
                    "{who}: copied in {:.0} s",
                    t.elapsed().as_secs_f64()
                ));
                std::fs::remove_dir_all(&seeded)
                    .map_err(|e| format!("cannot delete {}: {e}", seeded.display()))?;
                tokens
            }
            (Backend::Postgres(_), None) => {
                return Err("ours on PostgreSQL: no seeded store to copy".into())
            }
        };
        let mut results = Results::new();
        let disk = match (backend, &pg) {
            (Backend::Postgres(_), Some(pg)) => pg.database_bytes(OURS_DATABASE)?,
            (Backend::Embedded(dir), _) => process::disk_bytes(dir),
            (Backend::Postgres(_), None) => return Err("ours on PostgreSQL: no server".into()),
        };
        results.insert(DISK, per_session(disk, self.data.size));
        let key = random_key()?;
        let auth = format!("Bearer {key}");
        let start_placing = |places: Option<&Places>| {
            crate::ours::start(
                &self.settings.server,
                &self.settings.workspace,
                backend,
                &key,
                &places.map(Places::args).unwrap_or_default(),
            )
        };
        let start = || start_placing(None);
        let server = start()?;
        let base = format!("http://{}", server.addr);
        let side = OurSide {
            base: base.clone(),
            auth: auth.clone(),
            tokens,
        };
        self.warm_up(
            &base,
            Some(&auth),
            &Workload::Validate.ours(&self.data, &side)?,
            who,
        )?;
        let deliveries = || self.drain_deliveries(&base, &auth, who);
        for w in ALL {
            let request = w.ours(&self.data, &side)?;
            let m = self.measure(&base, Some(&auth), w, &request, who, &deliveries)?;
            results.insert(w.key(), m);
        }
        let mut pids = vec![server.pid()];
        if let Some(pg) = &pg {
            pids.extend(process::postgres_pids(pg.port()));
        }
        results.insert(MEMORY, memory(&pids));
        let mut server = server;
        server.stop();

        let (mut cold, mut began) = (false, Instant::now());
        let mut drop_cache = || {
            cold = process::drop_page_cache();
            began = Instant::now();
        };
        match pg {
            Some(pg) => pg.restart_with(drop_cache)?,
            None => drop_cache(),
        }
        let server = start()?;
        let validate_url = format!(
            "http://{}/api/v1/realms/{REALM}/sessions/validate",
            server.addr
        );
        if !validate_once(&validate_url, Some(&auth), &side.tokens[0])? {
            return Err(format!(
                "{who}: the first validation after the restart was not valid"
            ));
        }
        results.insert(COLD, cold_start(began.elapsed(), cold));
        self.say(&format!(
            "{who}: cold start to the first validation: {:.2} s",
            began.elapsed().as_secs_f64()
        ));
        drop(server);

        self.say(&format!(
            "{who}: storing {} expired sessions for the sweep",
            self.settings.sweep
        ));
        crate::ours::seed_expired(backend, self.settings.sweep, Utc::now(), &|m| self.say(m))?;
        let server = start()?;
        let base = format!("http://{}", server.addr);
        let remaining = || -> Result<u64, String> {
            let realm = get_json(&format!("{base}/api/v1/realms/{SWEEP_REALM}"), &auth)?;
            realm["session_count"]
                .as_u64()
                .ok_or_else(|| format!("no session_count in {realm}"))
        };
        let at_ready = remaining()?;
        let validate = Workload::Validate.ours(&self.data, &side)?;
        self.warm_up(&base, Some(&auth), &validate, who)?;
        let reaper_wait = Duration::from_secs(crate::ours::REAPER_INTERVAL_SECS + 30);
        if !wait_until(reaper_wait, || Ok(remaining()? < at_ready))? {
            self.say(&format!(
                "{who}: the sweep had not begun after {reaper_wait:?}"
            ));
        }
        let left = remaining()?;
        let (sweeping, sweep) = self.drive_while(
            &base,
            Some(&auth),
            &validate,
            &format!("{who}: validate during the sweep"),
            || wait_until(SWEEP_WAIT, || Ok(remaining()? == 0)),
        )?;
        results.insert(SWEEP_KEY, Cell::Load(sweeping));
        self.say(&format!(
            "{who}: {left} of {at_ready} expired sessions were left when the load began"
        ));
        results.insert(SWEEP_TIME, Cell::Text(sweep));
        drop(server);
        // Last: it adds about 200,000 sessions, which no other row of this side should see.
        self.placement_ab(&mut results, &side, who, &start_placing)?;
        Ok((results, side.tokens))
    }

    /// Creates with and without GeoIP placement, in the same run: the server restarted for each
    /// load, with the databases or without, in the balanced order [`PLACEMENT_ORDER`] (a drift
    /// as the store grows weighs on both sides alike); each side's loads taken together.
    fn placement_ab(
        &self,
        results: &mut Results,
        side: &OurSide,
        who: &str,
        start: &dyn Fn(Option<&Places>) -> Result<Running, String>,
    ) -> Result<(), String> {
        let places = self.places()?;
        let create = Workload::Create.ours(&self.data, side)?;
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for placing in PLACEMENT_ORDER {
            let server = start(placing.then_some(&places))?;
            let base = format!("http://{}", server.addr);
            if placed(&base, &side.auth, &create)? != placing {
                return Err(format!(
                    "{who}: a create with GeoIP {} {} placed",
                    if placing { "on" } else { "off" },
                    if placing { "was not" } else { "was" }
                ));
            }
            let what = format!(
                "{who}: create, GeoIP {}",
                if placing { "on" } else { "off" }
            );
            let m = self.drive(&base, Some(&side.auth), &create, Shape::DataPlane, &what)?;
            if placing { &mut on } else { &mut off }.push(m);
            drop(server);
        }
        let both = |each: &[Measured]| Measured::of_loads(each).ok_or("no create load");
        let (off, on) = (both(&off)?, both(&on)?);
        results.insert(PLACED_OFF, Cell::Load(off));
        results.insert(PLACED_ON, Cell::Load(on));
        let ratio = on.throughput() / off.throughput();
        results.insert(PLACED_RATIO, Cell::Text(format!("{ratio:.2}×")));
        self.say(&format!("{who}: create with GeoIP ÷ without: {ratio:.2}×"));
        Ok(())
    }

    /// The synthetic GeoIP databases, written on first use into the size's work directory.
    fn places(&self) -> Result<Places, String> {
        let dir = self.work.join("geoip");
        if dir.join("GeoLite2-ASN.mmdb").exists() {
            return Ok(Places {
                city: dir.join("GeoLite2-City.mmdb"),
                asn: dir.join("GeoLite2-ASN.mmdb"),
            });
        }
        self.say("writing synthetic GeoIP databases");
        crate::ours::write_places(&self.settings.geoip_fixture, &dir)
    }

    /// For each page cache size: our server started on the seeded embedded store with
    /// `--cache-mb`, the time until it answered, a warm-up, then validate, the subject filter and
    /// the deepest page measured, and the server's memory (PSS) after them.
    fn cache_sweep(&self, caches_mb: &[u32]) -> Result<String, String> {
        let backend = Backend::Embedded(self.work.join("ours"));
        self.say("ours: storing the data set");
        let tokens = crate::ours::seed(&backend, &self.data, &self.logout_uri, &|m| self.say(m))?;
        let key = random_key()?;
        let auth = format!("Bearer {key}");
        // A first start replays what the seeding left in sled's log: not part of any row.
        drop(crate::ours::start(
            &self.settings.server,
            &self.settings.workspace,
            &backend,
            &key,
            &[],
        )?);
        let mut table = String::from(
            "| cache | start → answering | memory (PSS) after the loads | validate req/s (p99) | \
             subject filter req/s (p99) | page 10,000 req/s (p99) |\n| --- | --- | --- | --- | --- | --- |\n",
        );
        for &mb in caches_mb {
            let who = format!("cache {mb} MiB");
            let began = Instant::now();
            let args = ["--cache-mb".to_owned(), mb.to_string()];
            let server = crate::ours::start(
                &self.settings.server,
                &self.settings.workspace,
                &backend,
                &key,
                &args,
            )?;
            let started = began.elapsed();
            let side = OurSide {
                base: format!("http://{}", server.addr),
                auth: auth.clone(),
                tokens: tokens.clone(),
            };
            let validate = Workload::Validate.ours(&self.data, &side)?;
            self.warm_up(&side.base, Some(&auth), &validate, &who)?;
            let mut cells = Vec::new();
            for (w, shape) in [
                (Workload::Validate, Shape::DataPlane),
                (Workload::SubjectFilter, Shape::Admin),
                (Workload::Page(10_000), Shape::Admin),
            ] {
                let request = w.ours(&self.data, &side)?;
                let what = format!("{who}: {}", w.key());
                let m = self.drive(&side.base, Some(&auth), &request, shape, &what)?;
                cells.push(format!(
                    "{:.0} ({})",
                    m.throughput(),
                    crate::report::ms(m.p99)
                ));
            }
            let Cell::Text(pss) = memory(&[server.pid()]) else {
                unreachable!("memory is text")
            };
            self.say(&format!(
                "{who}: started in {started:.2?}, {pss} after the loads"
            ));
            table.push_str(&format!(
                "| {mb} MiB | {:.2} s | {pss} | {} |\n",
                started.as_secs_f64(),
                cells.join(" | ")
            ));
            drop(server);
        }
        Ok(table)
    }

    /// An unrecorded validation load, so that what follows is measured on a server whose caches
    /// hold what it validates, as in production: before each side's loads and before its sweep
    /// (which follows a restart). Runs of [`WARM_UP`] until the sampled sessions were drawn three
    /// times over (random draws: about 95% of them at least once) or [`WARM_UP_MOST`] passed.
    fn warm_up(
        &self,
        base: &str,
        auth: Option<&str>,
        validate: &Request,
        who: &str,
    ) -> Result<(), String> {
        let mut load = self.load(base, auth, validate, Shape::DataPlane)?;
        load.duration = load.duration.min(WARM_UP);
        let sampled = (0..self.data.size)
            .filter(|&i| self.data.sampled(i))
            .count() as u64;
        let (mut requests, mut seconds) = (0u64, 0f64);
        while requests < 3 * sampled && seconds < WARM_UP_MOST.as_secs_f64() {
            let m = wrk::run(&self.script, &load).map_err(|e| format!("{who}: warming up: {e}"))?;
            requests += m.requests;
            seconds += m.seconds;
        }
        self.say(&format!(
            "{who}: warmed up ({requests} validations in {seconds:.1} s, {:.0}/s, not recorded)",
            requests as f64 / seconds.max(f64::EPSILON)
        ));
        Ok(())
    }

    /// The incumbent: PostgreSQL with Duende's table, behind its endpoint.
    fn incumbent(&self, pg: &mut Incumbent) -> Result<Results, String> {
        self.say("loading the data set into PostgreSQL (Duende's tables, COPY)");
        pg.load(&self.data)?;
        let mut results = Results::new();
        results.insert(DISK, per_session(pg.table_bytes()?, self.data.size));
        let endpoint_server = self.start_endpoint(pg)?;
        let base = format!("http://{}", endpoint_server.addr);
        let side = IncumbentSide {
            pg,
            tokens: (0..self.data.size)
                .filter(|&i| self.data.sampled(i))
                .map(|i| self.data.session(i).key)
                .collect(),
        };
        let validate = Workload::Validate
            .incumbent(&self.data, &side)?
            .ok_or("no validation request")?;
        self.warm_up(&base, None, &validate, "Duende")?;
        // Nothing sends the notifications its removals record.
        let recorded = || -> Result<(), String> {
            let rows = pg.notifications()?;
            self.say(&format!("Duende: {rows} notifications recorded so far"));
            Ok(())
        };
        for w in ALL {
            let Some(request) = w.incumbent(&self.data, &side)? else {
                results.insert(w.key(), Cell::Absent("no such query"));
                continue;
            };
            let m = self.measure(&base, None, w, &request, "Duende", &recorded)?;
            results.insert(w.key(), m);
        }
        let mut pids = process::postgres_pids(pg.port());
        pids.push(endpoint_server.pid());
        results.insert(MEMORY, memory(&pids));
        drop(endpoint_server);
        let first_token = side.tokens[0].clone();
        drop(side);

        let (mut cold, mut began) = (false, Instant::now());
        pg.restart_with(|| {
            cold = process::drop_page_cache();
            began = Instant::now();
        })?;
        let endpoint_server = self.start_endpoint(pg)?;
        let base = format!("http://{}", endpoint_server.addr);
        if !validate_once(&format!("{base}/validate"), None, &first_token)? {
            return Err("Duende: the first validation after the restart was not valid".into());
        }
        results.insert(COLD, cold_start(began.elapsed(), cold));
        self.say(&format!(
            "Duende: cold start to the first validation: {:.2} s",
            began.elapsed().as_secs_f64()
        ));

        self.say(&format!(
            "loading {} expired rows for Duende's cleanup job",
            self.settings.sweep
        ));
        pg.load_expired(self.settings.sweep, Utc::now())?;
        self.warm_up(&base, None, &validate, "Duende")?;
        let client = reqwest::blocking::Client::new();
        let (sweeping, sweep) = self.drive_while(
            &base,
            None,
            &validate,
            "Duende: validate during the sweep",
            || {
                client
                    .post(format!("{base}/sweep"))
                    .send()
                    .map_err(|e| format!("starting the cleanup job: {e}"))?;
                wait_until(SWEEP_WAIT, || {
                    let status: Value = client
                        .get(format!("{base}/sweep"))
                        .send()
                        .and_then(|r| r.json())
                        .map_err(|e| e.to_string())?;
                    Ok(status["running"] == false)
                })
            },
        )?;
        results.insert(SWEEP_KEY, Cell::Load(sweeping));
        results.insert(SWEEP_TIME, Cell::Text(sweep));
        Ok(results)
    }

    fn start_endpoint(&self, pg: &Incumbent) -> Result<Running, String> {
        let addr = process::free_addr()?;
        let mut cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
        cmd.args(["incumbent", "--addr", &addr.to_string(), "--database-url"])
            .arg(pg.url())
            .args(["--pool", &self.settings.pool.to_string()]);
        Running::start(cmd, addr, endpoint::HEALTH_PATH, "the incumbent's endpoint")
    }

    /// Measures workload `w` on `who`'s side: a load, or one-shot requests one at a time with
    /// `settle` after each (see [`Bench::drive_one_shots`]).
    fn measure(
        &self,
        base: &str,
        auth: Option<&str>,
        w: Workload,
        request: &Request,
        who: &str,
        settle: &dyn Fn() -> Result<(), String>,
    ) -> Result<Cell, String> {
        let what = format!("{who}: {}", w.key());
        Ok(match w.shape() {
            Shape::OneShot => {
                Cell::OneShot(self.drive_one_shots(base, auth, request, &what, settle)?)
            }
            shape => Cell::Load(self.drive(base, auth, request, shape, &what)?),
        })
    }

    /// Sends one-shot requests (removals) one wrk run at a time, `settle` waiting after each for
    /// the work it left behind (our server's logout deliveries), so that none is measured while
    /// an earlier one's aftermath runs, nor a later workload.
    fn drive_one_shots(
        &self,
        base: &str,
        auth: Option<&str>,
        request: &Request,
        what: &str,
        settle: &dyn Fn() -> Result<(), String>,
    ) -> Result<Measured, String> {
        let mut each = Vec::new();
        for line in &request.lines {
            let one = Request {
                lines: vec![line.clone()],
                ..request.clone()
            };
            let load = self.load(base, auth, &one, Shape::OneShot)?;
            each.push(wrk::run(&self.script, &load).map_err(|e| format!("{what}: {e}"))?);
            settle()?;
        }
        let m = Measured::of_each(&each).ok_or_else(|| format!("{what}: no request"))?;
        let latencies: Vec<String> = each.iter().map(|m| crate::report::ms(m.p50)).collect();
        let requests = format!("{} requests ({})", m.requests, latencies.join(", "));
        self.say_measured(what, &requests, &m);
        Ok(m)
    }

    /// Waits until our server has delivered every back-channel logout it queued (to the
    /// do-nothing receiver), up to [`DRAIN_WAIT`]; says what it found.
    fn drain_deliveries(&self, base: &str, auth: &str, who: &str) -> Result<(), String> {
        let url = format!("{base}/api/v1/realms/{REALM}/backchannel-deliveries?count=1");
        let counts = || -> Result<Value, String> { Ok(get_json(&url, auth)?["counts"].clone()) };
        let t = Instant::now();
        let drained = wait_until(DRAIN_WAIT, || Ok(counts()?["pending"] == 0))?;
        let c = counts()?;
        self.say(&format!(
            "{who}: logout deliveries: {} delivered, {} failed, {} pending ({:.1} s{})",
            c["delivered"],
            c["failed"],
            c["pending"],
            t.elapsed().as_secs_f64(),
            if drained { "" } else { "; still pending" }
        ));
        Ok(())
    }

    /// Runs one load (for its duration) with wrk.
    fn drive(
        &self,
        base: &str,
        auth: Option<&str>,
        request: &Request,
        shape: Shape,
        what: &str,
    ) -> Result<Measured, String> {
        let load = self.load(base, auth, request, shape)?;
        let m = wrk::run(&self.script, &load).map_err(|e| format!("{what}: {e}"))?;
        self.say_measured(what, &format!("{:.0}/s", m.throughput()), &m);
        Ok(m)
    }

    fn say_measured(&self, what: &str, rate: &str, m: &Measured) {
        self.say(&format!(
            "{what}: {rate}, p50 {}, p99 {}",
            crate::report::ms(m.p50),
            crate::report::ms(m.p99)
        ));
    }

    /// Runs a data-plane load while `during` (a sweep, waited for until it finishes or
    /// [`SWEEP_WAIT`] passes) runs on this thread; answers what wrk measured and how long the
    /// sweep took (`> SWEEP_WAIT` if it was still running).
    fn drive_while(
        &self,
        base: &str,
        auth: Option<&str>,
        request: &Request,
        what: &str,
        during: impl FnOnce() -> Result<bool, String>,
    ) -> Result<(Measured, String), String> {
        let mut load = self.load(base, auth, request, Shape::DataPlane)?;
        load.duration = load.duration.max(Duration::from_secs(10));
        let script = self.script.clone();
        let wrk_thread = std::thread::spawn(move || wrk::run(&script, &load));
        let t = Instant::now();
        let finished = during()?;
        let took = match finished {
            true => format!("{:.1} s", t.elapsed().as_secs_f64()),
            false => format!("> {} s", SWEEP_WAIT.as_secs()),
        };
        let m = wrk_thread
            .join()
            .map_err(|_| "the wrk thread panicked".to_owned())?
            .map_err(|e| format!("{what}: {e}"))?;
        self.say(&format!(
            "{what}: {:.0}/s, p99 {}; the sweep took {took}",
            m.throughput(),
            crate::report::ms(m.p99),
        ));
        Ok((m, took))
    }

    fn load(
        &self,
        base: &str,
        auth: Option<&str>,
        request: &Request,
        shape: Shape,
    ) -> Result<Load, String> {
        let lines = self.work.join("lines.txt");
        std::fs::write(&lines, request.lines.join("\n") + "\n")
            .map_err(|e| format!("cannot write {}: {e}", lines.display()))?;
        let s = self.settings;
        let (threads, connections, duration, stop_after) = match shape {
            Shape::DataPlane => (s.threads, s.connections, s.duration, None),
            Shape::Admin => (
                s.threads.min(s.admin_connections),
                s.admin_connections,
                s.duration,
                None,
            ),
            // One connection; wrk waits out its duration even after the last answer.
            Shape::OneShot => (1, 1, ONE_SHOT_WAIT, Some(request.lines.len())),
        };
        let url = match request.send {
            Send::Body => format!("{base}{}", request.target),
            Send::Path => base.to_owned(),
        };
        Ok(Load {
            url,
            send: request.send,
            lines,
            auth: auth.map(str::to_owned),
            threads,
            connections,
            duration,
            stop_after,
        })
    }
}

/// How long a sweep is waited for (a run stays within its time budget at a million sessions).
const SWEEP_WAIT: Duration = Duration::from_secs(90);
/// How long one run of a warm-up load lasts (at most).
const WARM_UP: Duration = Duration::from_secs(3);
/// How long a warm-up lasts at most, its runs together.
const WARM_UP_MOST: Duration = Duration::from_secs(30);
/// How long wrk runs for a one-shot request (a removal, well under a second).
const ONE_SHOT_WAIT: Duration = Duration::from_secs(5);
/// How long our logout deliveries are waited for after a removal.
const DRAIN_WAIT: Duration = Duration::from_secs(120);
/// Our database on the incumbent's PostgreSQL server.
const OURS_DATABASE: &str = "ours";
const SWEEP_KEY: &str = "validate during an expiry sweep";
const SWEEP_TIME: &str = "expiry sweep duration";
const PLACED_OFF: &str = "create, GeoIP off";
const PLACED_ON: &str = "create, GeoIP on (sessions placed)";
const PLACED_RATIO: &str = "create: GeoIP on ÷ off";
const PLACED_RUNS: &str = "4 loads each, alternating";
/// The placement A/B's loads, `true` placing: ABBA twice, so that both sides sit at the same
/// mean position.
const PLACEMENT_ORDER: [bool; 8] = [false, true, true, false, true, false, false, true];
const COLD: &str = "cold start (page cache dropped) → first validate";
const DISK: &str = "disk per session";
const MEMORY: &str = "memory of the server (PSS)";

fn take(results: &Results, key: &str) -> Cell {
    results.get(key).cloned().unwrap_or(Cell::Absent("—"))
}

fn per_session(bytes: u64, sessions: usize) -> Cell {
    Cell::Text(format!("{} B", bytes / sessions as u64))
}

fn memory(pids: &[u32]) -> Cell {
    let bytes: u64 = pids.iter().filter_map(|&p| process::pss_bytes(p)).sum();
    Cell::Text(format!("{} MiB", bytes >> 20))
}

fn cold_start(took: Duration, cold: bool) -> Cell {
    let warm = if cold {
        ""
    } else {
        " (warm: dropping the page cache is not permitted here)"
    };
    Cell::Text(format!("{:.2} s{warm}", took.as_secs_f64()))
}

/// Starts the do-nothing handler (the ceiling, or the receiver of our logout deliveries).
fn start_ceiling(what: &str) -> Result<Running, String> {
    let addr = process::free_addr()?;
    let mut cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    cmd.args(["ceiling", "--addr", &addr.to_string()]);
    Running::start(cmd, addr, crate::ceiling::PATH, what)
}

/// A fresh bootstrap API key.
fn random_key() -> Result<String, String> {
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn get_json(url: &str, auth: &str) -> Result<Value, String> {
    let answer = reqwest::blocking::Client::new()
        .get(url)
        .header("Authorization", auth)
        .send()
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !answer.status().is_success() {
        return Err(format!("GET {url}: {}", answer.status()));
    }
    answer.json().map_err(|e| format!("GET {url}: {e}"))
}

/// Whether a create of `request`'s first body is answered with the session's network.
fn placed(base: &str, auth: &str, request: &Request) -> Result<bool, String> {
    let url = format!("{base}{}", request.target);
    let body = request.lines.first().ok_or("no create body")?;
    let response = reqwest::blocking::Client::new()
        .post(&url)
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .map_err(|e| format!("POST {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("POST {url}: {}", response.status()));
    }
    let answer: Value = response.json().map_err(|e| format!("POST {url}: {e}"))?;
    Ok(answer["network"].is_object())
}

/// One validation at `url`; whether the token was valid.
fn validate_once(url: &str, auth: Option<&str>, token: &str) -> Result<bool, String> {
    let mut request = reqwest::blocking::Client::new()
        .post(url)
        .json(&serde_json::json!({"token": token, "refresh": false}));
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    let answer: Value = request
        .send()
        .and_then(|r| r.json())
        .map_err(|e| format!("validate: {e}"))?;
    Ok(answer["valid"] == true)
}

/// Polls `done` every 100 ms until it holds (true) or `within` passes (false).
fn wait_until(
    within: Duration,
    mut done: impl FnMut() -> Result<bool, String>,
) -> Result<bool, String> {
    let started = Instant::now();
    while !done()? {
        if started.elapsed() > within {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(true)
}

/// Our API: results tokens come from walking the pages.
struct OurSide {
    base: String,
    auth: String,
    tokens: Vec<String>,
}

impl Side for OurSide {
    fn tokens(&self) -> &[String] {
        &self.tokens
    }

    fn results_token_for(&self, page: usize) -> Result<Option<String>, String> {
        let mut token: Option<String> = None;
        for _ in 1..page {
            let mut url = format!("{}/api/v1/realms/{REALM}/sessions?count={PAGE}", self.base);
            if let Some(t) = &token {
                url.push_str("&results_token=");
                url.push_str(&crate::workloads::url_encode(t));
            }
            let answer = get_json(&url, &self.auth)?;
            token = Some(
                answer["results_token"]
                    .as_str()
                    .ok_or_else(|| format!("no results token in {answer}"))?
                    .to_owned(),
            );
        }
        Ok(token)
    }
}

/// Duende's endpoint: results tokens are the page's first and last ids, read from the table.
struct IncumbentSide<'a> {
    pg: &'a Incumbent,
    tokens: Vec<String>,
}

impl Side for IncumbentSide<'_> {
    fn tokens(&self) -> &[String] {
        &self.tokens
    }

    fn results_token_for(&self, page: usize) -> Result<Option<String>, String> {
        self.pg.results_token_before(page)
    }
}
