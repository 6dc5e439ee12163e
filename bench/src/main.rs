//! `bench-http`: our server, Duende IdentityServer's server-side session store on PostgreSQL and a
//! do-nothing axum handler, measured through HTTP with wrk in one run (`make bench-http`).
//!
//! `bench-http run` orchestrates; `ceiling` and `incumbent` are the two servers it starts as
//! child processes (built with the same release profile and allocator as our server).

mod ceiling;
mod dataset;
mod incumbent;
mod ours;
mod process;
mod report;
mod run;
mod signals;
mod workloads;
mod wrk;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The same allocator as our server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "HTTP benchmark: ours, Duende's store on PostgreSQL, and the ceiling")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs every workload at every size; prints the table and writes it to BENCHMARKS.md.
    Run(RunArgs),
    /// Writes one size's data set into an embedded store and the sampled sessions' tokens into a
    /// file, a line each, then stops: for profiling our server by hand (`server serve --data-dir`).
    Seed {
        /// The data directory (created; must not hold a store yet).
        #[arg(long)]
        data_dir: PathBuf,
        /// Sessions in the data set (at least 10,000).
        #[arg(long)]
        size: usize,
        /// Where the tokens go.
        #[arg(long)]
        tokens: PathBuf,
        /// The clients' back-channel logout URI (serve with `--backchannel-allow-hosts` naming
        /// its host).
        #[arg(long, default_value = "http://127.0.0.1:9/logout")]
        logout_uri: String,
    },
    /// Stores one data set in an embedded store, then starts our server on it with each page
    /// cache size (`--cache-mb`) in turn: time to answer, memory, validate and listing rates.
    /// Prints a table.
    Cache {
        /// Our release server binary.
        #[arg(long)]
        server: PathBuf,
        /// Sessions in the data set.
        #[arg(long, default_value_t = 1_000_000)]
        size: usize,
        /// The cache sizes, in MiB.
        #[arg(long, num_args = 1.., value_delimiter = ' ', default_values_t = [64, 128, 256, 512])]
        cache_mb: Vec<u32>,
        /// How long each load runs, e.g. `5s`.
        #[arg(long, default_value = "4s", value_parser = parse_duration)]
        duration: Duration,
    },
    /// Times a removal of one subject's sessions through the API on each store, without and
    /// with one Shared Signals push stream covering the realm. Prints a table.
    Signals {
        /// Our release server binary.
        #[arg(long)]
        server: PathBuf,
        /// Sessions of the subject each removal ends.
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
    },
    /// Serves the do-nothing handler.
    Ceiling {
        #[arg(long)]
        addr: SocketAddr,
    },
    /// Serves Duende's store over PostgreSQL.
    Incumbent {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 16)]
        pool: usize,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Our release server binary.
    #[arg(long)]
    server: PathBuf,
    /// The `geoip-fixture` binary (`cargo build --release -p service --features geoip-fixture`);
    /// by default the one beside `--server`.
    #[arg(long)]
    geoip_fixture: Option<PathBuf>,
    /// Data sizes (sessions), each at least 10,000.
    #[arg(long, num_args = 1.., value_delimiter = ' ', default_values_t = [10_000, 100_000, 1_000_000])]
    sizes: Vec<usize>,
    /// How long each load runs, e.g. `5s`.
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Connections of the data-plane loads (validate, create).
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// Connections of the administrator's queries.
    #[arg(long, default_value_t = 4)]
    admin_connections: u32,
    /// Expired sessions the expiry sweep removes.
    #[arg(long, default_value_t = 100_000)]
    sweep: usize,
    /// Connection pool of the incumbent's endpoint.
    #[arg(long, default_value_t = 16)]
    pool: usize,
    /// The file whose `bench-http` section is rewritten.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// The chart written next to it.
    #[arg(long, default_value = "bench-http.svg")]
    chart: PathBuf,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text}"))?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("not a duration (use 5s or 1m): {text}")),
    }
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Cmd::Run(args) => run(args),
        Cmd::Seed {
            data_dir,
            size,
            tokens,
            logout_uri,
        } => seed(data_dir, size, tokens, &logout_uri),
        Cmd::Cache {
            server,
            size,
            cache_mb,
            duration,
        } => cache(server, size, &cache_mb, duration),
        Cmd::Signals { server, sessions } => std::env::current_dir()
            .map_err(|e| e.to_string())
            .and_then(|workspace| {
                signals::removal_with_a_stream(&server, &workspace, sessions, &run::Progress::new())
            })
            .map(|table| println!("{table}")),
        Cmd::Ceiling { addr } => serve(addr, |l| async move {
            ceiling::serve(l).await.map_err(|e| e.to_string())
        }),
        Cmd::Incumbent {
            addr,
            database_url,
            pool,
        } => serve(addr, move |l| async move {
            let store = incumbent::store::DuendeStore::connect(&database_url, pool)
                .map_err(|e| e.to_string())?;
            axum::serve(l, incumbent::endpoint::router(store))
                .await
                .map_err(|e| e.to_string())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench-http: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a server on a multi-threaded runtime, as our server does.
fn serve<F, Fut>(addr: SocketAddr, server: F) -> Result<(), String>
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        server(listener).await
    })
}

/// Refuses a data size below [`dataset::MIN_SIZE`].
fn check_size(size: usize) -> Result<(), String> {
    if size < dataset::MIN_SIZE {
        return Err(format!(
            "size {size} is below the minimum of {}",
            dataset::MIN_SIZE
        ));
    }
    Ok(())
}

fn seed(data_dir: PathBuf, size: usize, tokens: PathBuf, logout_uri: &str) -> Result<(), String> {
    check_size(size)?;
    if data_dir.exists()
        && data_dir
            .read_dir()
            .map_err(|e| e.to_string())?
            .next()
            .is_some()
    {
        return Err(format!("{} is not empty", data_dir.display()));
    }
    let progress = run::Progress::new();
    let data = dataset::Dataset::new(size, chrono::Utc::now());
    let backend = ours::Backend::Embedded(data_dir);
    let sampled = ours::seed(&backend, &data, logout_uri, &|m| progress.say(m))?;
    std::fs::write(&tokens, sampled.join("\n") + "\n")
        .map_err(|e| format!("{}: {e}", tokens.display()))?;
    progress.say(&format!(
        "stored {size} sessions; {} tokens in {}",
        sampled.len(),
        tokens.display()
    ));
    Ok(())
}

fn cache(
    server: PathBuf,
    size: usize,
    caches_mb: &[u32],
    duration: Duration,
) -> Result<(), String> {
    check_size(size)?;
    let settings = run::Settings {
        sizes: vec![size],
        duration,
        threads: 2,
        connections: 64,
        admin_connections: 4,
        sweep: 0,
        pool: 16,
        geoip_fixture: server.with_file_name("geoip-fixture"),
        server,
        workspace: std::env::current_dir().map_err(|e| e.to_string())?,
    };
    let table = run::cache_sweep(&settings, &run::Progress::new(), size, caches_mb)?;
    println!("{table}");
    Ok(())
}

fn run(args: RunArgs) -> Result<(), String> {
    args.sizes.iter().try_for_each(|&s| check_size(s))?;
    let settings = run::Settings {
        sizes: args.sizes,
        duration: args.duration,
        threads: args.threads,
        connections: args.connections,
        admin_connections: args.admin_connections,
        sweep: args.sweep,
        pool: args.pool,
        geoip_fixture: args
            .geoip_fixture
            .unwrap_or_else(|| args.server.with_file_name("geoip-fixture")),
        server: args.server,
        workspace: std::env::current_dir().map_err(|e| e.to_string())?,
    };
    let progress = run::Progress::new();
    let started = chrono::Utc::now();
    let rows = run::run(&settings, &progress)?;
    let table = report::table(&rows);
    println!("{table}");
    let section = report::section(&settings, &table, &args.chart, started);
    report::write_section(&args.out, &section)
        .map_err(|e| format!("{}: {e}", args.out.display()))?;
    report::write_chart(&args.chart, &rows)
        .map_err(|e| format!("{}: {e}", args.chart.display()))?;
    progress.say(&format!(
        "wrote {} and {}",
        args.out.display(),
        args.chart.display()
    ));
    Ok(())
}
