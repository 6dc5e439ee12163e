//! A throwaway PostgreSQL server: Debian's binaries, a fresh cluster in a temporary directory,
//! listening on 127.0.0.1 only (no Unix socket), stopped and deleted on drop. Tests and
//! benchmarks start one each, so `make test` needs no database running beforehand.
//!
//! PostgreSQL refuses to run as root; when the process is root, the cluster is owned by and run
//! as the `postgres` user that Debian's package creates.
//!
//! [`ha`] starts a highly available one (pg_auto_failover) for failover tests.

pub mod ha;

pub use ha::ScratchHa;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// What can go wrong starting a scratch server.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error(
        "PostgreSQL's server binaries were not found under /usr/lib/postgresql/*/bin \
         (install Debian's `postgresql` package; `scripts/setup.sh` does)"
    )]
    NotInstalled,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("the scratch server did not accept connections within {0:?}")]
    NotReady(Duration),
    #[error(
        "pg_auto_failover's pg_autoctl was not found (install Debian's \
         `postgresql-<version>-auto-failover` package; `scripts/setup.sh` does)"
    )]
    AutoFailoverNotInstalled,
    #[error(
        "the highly available scratch servers did not reach {wanted} within {within:?}: {seen}"
    )]
    NotConverged {
        wanted: String,
        within: Duration,
        seen: String,
    },
}

/// A running scratch server; stopped and deleted when dropped.
pub struct ScratchPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres_user: bool,
    /// The server's command-line settings, kept for a restart.
    options: String,
}

/// The newest installed server's binaries.
pub(crate) fn find_binaries() -> Result<PathBuf, ScratchError> {
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| ScratchError::NotInstalled)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates
        .pop()
        .map(|c| c.1)
        .ok_or(ScratchError::NotInstalled)
}

pub(crate) fn free_port() -> Result<u16, ScratchError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn is_root() -> bool {
    // The effective user id, from /proc so no unsafe call is needed.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl ScratchPostgres {
    /// Creates a cluster in a new temporary directory and starts it on a free port of
    /// 127.0.0.1, tuned for throwaway use (no fsync: a scratch server's data need not survive a
    /// crash of the machine).
    pub fn start() -> Result<ScratchPostgres, ScratchError> {
        Self::start_with(&["-c", "fsync=off", "-c", "synchronous_commit=off"])
    }

    /// As [`start`](Self::start), with durable settings (fsync on), for measurements that must
    /// compare with a production setup. Where the server has `pg_stat_statements`, it is loaded
    /// (with I/O timing) so that a benchmark can tell where the database's time went
    /// ([`has_statement_statistics`](Self::has_statement_statistics)).
    pub fn start_durable() -> Result<ScratchPostgres, ScratchError> {
        let bin = find_binaries()?;
        let statistics = bin.join("../lib/pg_stat_statements.so").exists();
        let profiled = [
            "-c",
            "shared_preload_libraries=pg_stat_statements",
            "-c",
            "track_io_timing=on",
        ];
        Self::start_with(if statistics { &profiled } else { &[] })
    }

    /// Whether the server keeps statement statistics (`pg_stat_statements` is loaded; a
    /// database still needs `CREATE EXTENSION pg_stat_statements` to read them).
    pub fn has_statement_statistics(&self) -> bool {
        self.options.contains("pg_stat_statements")
    }

    fn start_with(settings: &[&str]) -> Result<ScratchPostgres, ScratchError> {
        let bin = find_binaries()?;
        let dir = std::env::temp_dir().join(format!(
            "sessions-pg-{}-{}",
            std::process::id(),
            free_port()?
        ));
        std::fs::create_dir_all(&dir)?;
        let as_postgres_user = is_root();
        let port = free_port()?;
        let mut options =
            format!("-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories=''");
        for pair in settings.chunks(2) {
            options.push_str(&format!(" {} {}", pair[0], pair[1]));
        }
        let scratch = ScratchPostgres {
            bin,
            dir,
            port,
            as_postgres_user,
            options,
        };
        if as_postgres_user {
            scratch.run(
                "chown",
                &[
                    "-R",
                    "postgres:postgres",
                    &scratch.dir.display().to_string(),
                ],
            )?;
        }
        let data = scratch.data_dir().display().to_string();
        scratch.run_pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        scratch.start_server()?;
        Ok(scratch)
    }

    /// Starts the cluster's server and waits until it accepts connections.
    fn start_server(&self) -> Result<(), ScratchError> {
        let data = self.data_dir().display().to_string();
        let log = self.dir.join("server.log").display().to_string();
        self.run_pg(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &self.options, "-w", "start"],
        )?;
        self.wait_ready(Duration::from_secs(30))
    }

    /// Stops the server (a clean, fast shutdown), runs `between` (a benchmark drops the page
    /// cache there), and starts it again on the same port with the same settings. Open
    /// connections are closed.
    pub fn restart_with(&self, between: impl FnOnce()) -> Result<(), ScratchError> {
        let data = self.data_dir().display().to_string();
        self.run_pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])?;
        between();
        self.start_server()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection string for database `postgres` as superuser `postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// A connection string for another database of this server.
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database, for tests that want one each.
    pub fn create_database(&self, name: &str) -> Result<(), ScratchError> {
        self.run_client("createdb", &[name])
    }

    /// Creates a database with a name no other call in this process gave (`prefix` and a
    /// number), for tests that want one each; its URL.
    pub fn new_database(&self, prefix: &str) -> Result<String, ScratchError> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("{prefix}_{n}");
        self.create_database(&name)?;
        Ok(self.url_for(&name))
    }

    /// Creates a database as a copy of another (`CREATE DATABASE ... TEMPLATE`): a test's fresh
    /// database with the schema already in place, in milliseconds.
    pub fn create_database_from(&self, name: &str, template: &str) -> Result<(), ScratchError> {
        self.run_client("createdb", &["-T", template, name])
    }

    /// Drops a database, ending the connections still open to it.
    pub fn drop_database(&self, name: &str) -> Result<(), ScratchError> {
        self.run_client("dropdb", &["--force", name])
    }

    /// One server for the whole test process, started on first use. A static is never dropped,
    /// so a watchdog (in its own session, so an interrupt of the tests does not reach it) stops
    /// the server and deletes its directory as soon as the process ends, however it ends.
    pub fn shared() -> &'static ScratchPostgres {
        static SHARED: std::sync::OnceLock<ScratchPostgres> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            let pg = ScratchPostgres::start().expect("starting the shared scratch PostgreSQL");
            pg.stop_when_process_ends()
                .expect("starting the scratch PostgreSQL's watchdog");
            pg
        })
    }

    fn stop_when_process_ends(&self) -> Result<(), ScratchError> {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let data = self.data_dir().display().to_string();
        let stop = format!(
            "{} -D {} -m immediate -w stop",
            quote(&pg_ctl),
            quote(&data)
        );
        let stop = if self.as_postgres_user {
            format!("runuser -u postgres -- {stop}")
        } else {
            stop
        };
        when_process_ends(&format!(
            "{stop} >/dev/null 2>&1; rm -rf {}",
            quote(&self.dir.display().to_string())
        ))
        .map(drop)
    }

    /// The bytes the cluster's data directory takes on disk.
    pub fn disk_bytes(&self) -> u64 {
        fn size(p: &Path) -> u64 {
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => std::fs::read_dir(p)
                    .map(|es| es.filter_map(|e| e.ok()).map(|e| size(&e.path())).sum())
                    .unwrap_or(0),
                Ok(m) => m.len(),
                Err(_) => 0,
            }
        }
        size(&self.data_dir())
    }

    fn wait_ready(&self, within: Duration) -> Result<(), ScratchError> {
        let started = Instant::now();
        let port = self.port.to_string();
        while started.elapsed() < within {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port, "-q"])
                .status()?;
            if ready.success() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(ScratchError::NotReady(within))
    }

    /// Runs one of PostgreSQL's client programs against this server as superuser `postgres`.
    fn run_client(&self, program: &str, args: &[&str]) -> Result<(), ScratchError> {
        let port = self.port.to_string();
        let mut all = vec!["-h", "127.0.0.1", "-p", &port, "-U", "postgres"];
        all.extend_from_slice(args);
        self.run_pg(program, &all).map(|_| ())
    }

    /// Runs one of PostgreSQL's programs, as the `postgres` user when we are root.
    fn run_pg(&self, program: &str, args: &[&str]) -> Result<Output, ScratchError> {
        let path = self.bin.join(program);
        run(as_owner(&path, args, self.as_postgres_user).current_dir(&self.dir))
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output, ScratchError> {
        run(Command::new(program).args(args).current_dir(&self.dir))
    }
}

/// `text` quoted for `sh`.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Runs the shell commands `script` as soon as this process ends, however it ends: a watchdog in
/// a session of its own, so that an interrupt of the tests does not reach it.
/// Its process leads a session (and process group) of its own.
pub(crate) fn when_process_ends(script: &str) -> Result<std::process::Child, ScratchError> {
    let script = format!("tail --pid={} -f /dev/null; {script}", std::process::id());
    Ok(Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?)
}

/// `program` with `args`, run as the `postgres` user when `as_postgres_user` (we are root).
pub(crate) fn as_owner(program: &Path, args: &[&str], as_postgres_user: bool) -> Command {
    if as_postgres_user {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

/// Runs `command` to its end; an error with what it printed when it failed.
pub(crate) fn run(command: &mut Command) -> Result<Output, ScratchError> {
    let output = command.output()?;
    if !output.status.success() {
        return Err(ScratchError::Command {
            command: format!("{command:?}"),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(output)
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        let data = self.data_dir().display().to_string();
        if let Err(e) = self.run_pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]) {
            tracing::warn!(error = %e, "stopping the scratch PostgreSQL server failed");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
