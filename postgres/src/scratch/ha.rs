//! A highly available scratch PostgreSQL, for failover tests: pg_auto_failover's monitor, a
//! primary and a synchronous secondary (Debian's `postgresql-<version>-auto-failover`), each node
//! run by its `pg_autoctl` keeper, all on 127.0.0.1 in a temporary directory, killed and deleted
//! when dropped (or when the process ends, however it ends).
//!
//! The timeouts are those of a test, not of a network: the monitor checks the nodes every second
//! and fails over a primary unreachable for 2 s, after waiting 4 s for it to demote itself; a
//! keeper cut off from the monitor and its standby demotes its primary after 3 s. (With
//! synchronous replication, a primary cut off from its standby commits nothing meanwhile.)
//!
//! [`kill_primary`](ScratchHa::kill_primary) is a node's death: its keeper and its PostgreSQL
//! server killed with SIGKILL at once, so nothing restarts it;
//! [`kill_primary_server`](ScratchHa::kill_primary_server) a crash of its PostgreSQL server
//! alone, which its keeper restarts.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{as_owner, find_binaries, free_port, is_root, quote, run, ScratchError};

/// The database the nodes serve (created by pg_auto_failover).
pub const DATABASE: &str = "sessions";
/// Longest the monitor, a node or the pair takes to come up.
const CONVERGE_WITHIN: Duration = Duration::from_secs(120);
/// The monitor's settings: how quickly it notices a node gone and promotes the standby.
const MONITOR_SETTINGS: [(&str, &str); 6] = [
    ("health_check_period", "1000"),
    ("health_check_timeout", "1000"),
    ("health_check_max_retries", "1"),
    ("health_check_retry_delay", "500"),
    ("node_considered_unhealthy_timeout", "2000"),
    ("primary_demote_timeout", "4000"),
];
/// Seconds a keeper cut off from the monitor and the standby waits before demoting its primary
/// (below the monitor's `primary_demote_timeout`, so that a partitioned primary has stopped
/// before the standby is promoted).
const NETWORK_PARTITION_TIMEOUT: &str = "3";

/// A monitor and two nodes; killed and deleted when dropped.
pub struct ScratchHa {
    bin: PathBuf,
    dir: PathBuf,
    monitor_port: u16,
    /// The nodes' ports, in the order they were created (the first is the first primary).
    ports: Vec<u16>,
    /// The running keepers (the monitor's first), each the leader of its own process group.
    keepers: Vec<(u16, Child)>,
    /// Cleans up if the process ends first; stopped when the harness is dropped.
    watchdog: Child,
}

impl ScratchHa {
    /// Starts the monitor, then the primary, then the secondary, and waits until the monitor
    /// reports them `primary` and `secondary` (about 20 s).
    pub fn start() -> Result<ScratchHa, ScratchError> {
        let bin = find_binaries()?;
        if !Path::new(AUTOCTL).exists() {
            return Err(ScratchError::AutoFailoverNotInstalled);
        }
        if !is_root() {
            // pg_autoctl names the clusters' superuser after the user it runs as, and puts
            // sockets where only Debian's `postgres` group may: the nodes run as `postgres`.
            return Err(ScratchError::Command {
                command: "ScratchHa::start".into(),
                output: "the highly available scratch servers run as the `postgres` user: run \
                         the tests as root (CI does)"
                    .into(),
            });
        }
        let dir = std::env::temp_dir().join(format!(
            "sessions-ha-{}-{}",
            std::process::id(),
            free_port()?
        ));
        std::fs::create_dir_all(&dir)?;
        // If this process ends before the harness is dropped (an interrupted test), a watchdog
        // kills the process groups written to `groups` and deletes the directory.
        let groups = dir.join("groups");
        std::fs::write(&groups, "")?;
        let watchdog = super::when_process_ends(&format!(
            "for g in $(cat {}); do kill -9 -- -$g; done 2>/dev/null; sleep 1; rm -rf {}",
            quote(&groups.display().to_string()),
            quote(&dir.display().to_string())
        ))?;
        let mut ha = ScratchHa {
            bin,
            dir,
            monitor_port: free_port()?,
            ports: vec![free_port()?, free_port()?],
            keepers: Vec::new(),
            watchdog,
        };
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&ha.dir))?;
        ha.start_monitor()?;
        for node in 0..ha.ports.len() {
            ha.start_node(node)?;
        }
        ha.wait_for(&["primary", "secondary"])?;
        Ok(ha)
    }

    /// A multi-host URL naming both nodes, for database [`DATABASE`] as superuser `postgres`:
    /// clients connect to whichever node is the primary now.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!(
            "postgres://postgres@{}/{DATABASE}?target_session_attrs=read-write&connect_timeout=2",
            hosts.join(",")
        )
    }

    /// The nodes' states as the monitor reports them (`node1: primary, node2: secondary`).
    pub fn states(&self) -> Result<String, ScratchError> {
        self.monitor_query(
            "SELECT string_agg(nodename || ': ' || reportedstate, ', ' ORDER BY nodeid) \
             FROM pgautofailover.node",
        )
    }

    /// The port of the node that serves writes now, if one does.
    pub fn primary_port(&self) -> Option<u16> {
        self.ports.iter().copied().find(|&port| {
            let sql = "SELECT NOT pg_is_in_recovery()";
            self.psql(port, "postgres", sql).ok().as_deref() == Some("t")
        })
    }

    /// The primary's port; an error naming the nodes' states when none serves writes.
    fn primary_to_kill(&self) -> Result<u16, ScratchError> {
        self.primary_port()
            .ok_or_else(|| ScratchError::NotConverged {
                wanted: "a primary to kill".into(),
                within: Duration::ZERO,
                seen: self.states().unwrap_or_default(),
            })
    }

    /// Kills the primary's node (its keeper and its PostgreSQL server, SIGKILL); answers its
    /// port. The monitor then promotes the secondary.
    pub fn kill_primary(&mut self) -> Result<u16, ScratchError> {
        let port = self.primary_to_kill()?;
        let at = self
            .keepers
            .iter()
            .position(|(p, _)| *p == port)
            .expect("every node has a keeper");
        let (_, mut keeper) = self.keepers.remove(at);
        kill_group(&keeper);
        let _ = keeper.wait();
        Ok(port)
    }

    /// Kills the primary's PostgreSQL server alone (SIGKILL to its postmaster), as a crash of the
    /// server would; answers its port. Its keeper starts it again, in place or, if the monitor
    /// promoted the secondary meanwhile, as a standby.
    pub fn kill_primary_server(&mut self) -> Result<u16, ScratchError> {
        let port = self.primary_to_kill()?;
        let node = self
            .ports
            .iter()
            .position(|&p| p == port)
            .expect("a node's port");
        let pid_file = self
            .dir
            .join(format!("node{}", node + 1))
            .join("postmaster.pid");
        let pid = std::fs::read_to_string(&pid_file)?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        run(Command::new("kill").args(["-9", &pid]))?;
        Ok(port)
    }

    /// Waits until the monitor reports the nodes still running in `states` (in node order),
    /// e.g. `["wait_primary"]` after a primary was killed.
    pub fn wait_for(&self, states: &[&str]) -> Result<(), ScratchError> {
        let wanted = states.join(",");
        let sql = "SELECT string_agg(reportedstate::text, ',' ORDER BY nodeid) \
                   FROM pgautofailover.node WHERE goalstate <> 'demoted'";
        let started = Instant::now();
        loop {
            let seen = self.monitor_query(sql).unwrap_or_default();
            if seen == wanted {
                return Ok(());
            }
            if started.elapsed() > CONVERGE_WITHIN {
                return Err(ScratchError::NotConverged {
                    wanted,
                    within: CONVERGE_WITHIN,
                    seen: self.states().unwrap_or(seen),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn start_monitor(&mut self) -> Result<(), ScratchError> {
        let pgdata = self.dir.join("monitor");
        let port = self.monitor_port.to_string();
        self.autoctl(&[
            "create",
            "monitor",
            "--pgctl",
            &self.pg_ctl(),
            "--pgdata",
            &pgdata.display().to_string(),
            "--pgport",
            &port,
            "--listen",
            "127.0.0.1",
            "--hostname",
            "127.0.0.1",
            "--auth",
            "trust",
            "--no-ssl",
        ])?;
        self.run_keeper(self.monitor_port, &pgdata)?;
        self.wait_until("the monitor accepting connections", || {
            self.monitor_query("SELECT 1").is_ok()
        })?;
        for (name, value) in MONITOR_SETTINGS {
            self.monitor_query(&format!("ALTER SYSTEM SET pgautofailover.{name} = {value}"))?;
        }
        self.monitor_query("SELECT pg_reload_conf()")?;
        Ok(())
    }

    /// Creates node `node` (registering it with the monitor; a secondary copies the primary
    /// meanwhile), then runs its keeper.
    fn start_node(&mut self, node: usize) -> Result<(), ScratchError> {
        let port = self.ports[node];
        let pgdata = self.dir.join(format!("node{}", node + 1));
        let pgdata_text = pgdata.display().to_string();
        let monitor = format!(
            "postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover?sslmode=disable",
            self.monitor_port
        );
        let mut create = self.autoctl_command(&[
            "create",
            "postgres",
            "--pgctl",
            &self.pg_ctl(),
            "--pgdata",
            &pgdata_text,
            "--pgport",
            &port.to_string(),
            "--listen",
            "127.0.0.1",
            "--hostname",
            "127.0.0.1",
            "--monitor",
            &monitor,
            "--auth",
            "trust",
            "--no-ssl",
            "--dbname",
            DATABASE,
            "--name",
            &format!("node{}", node + 1),
        ]);
        let log = std::fs::File::create(self.dir.join(format!("node{}.create.log", node + 1)))?;
        let mut creating = create
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        self.note_group(&creating)?;
        let started = Instant::now();
        // A secondary starts with a base backup of the primary, which begins at the primary's
        // next checkpoint: ask for one until the copy is done, rather than wait for the timer.
        let status = loop {
            if let Some(status) = creating.try_wait()? {
                break status;
            }
            if started.elapsed() > CONVERGE_WITHIN {
                kill_group(&creating);
                let _ = creating.wait();
                return Err(ScratchError::NotConverged {
                    wanted: format!("node{} created", node + 1),
                    within: CONVERGE_WITHIN,
                    seen: self.states().unwrap_or_default(),
                });
            }
            if node > 0 {
                let _ = self.psql(self.ports[0], "postgres", "CHECKPOINT");
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        if !status.success() {
            let log =
                std::fs::read_to_string(self.dir.join(format!("node{}.create.log", node + 1)))
                    .unwrap_or_default();
            return Err(ScratchError::Command {
                command: format!("pg_autoctl create postgres --pgdata {pgdata_text}"),
                output: log,
            });
        }
        self.autoctl(&[
            "config",
            "set",
            "--pgdata",
            &pgdata_text,
            "timeout.network_partition_timeout",
            NETWORK_PARTITION_TIMEOUT,
        ])?;
        self.run_keeper(port, &pgdata)
    }

    /// Starts `pg_autoctl run` for the node in `pgdata`, in a process group of its own.
    fn run_keeper(&mut self, port: u16, pgdata: &Path) -> Result<(), ScratchError> {
        let name = pgdata.file_name().unwrap_or_default().to_string_lossy();
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))?;
        let child = self
            .autoctl_command(&["run", "--pgdata", &pgdata.display().to_string()])
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()?;
        self.note_group(&child)?;
        self.keepers.push((port, child));
        Ok(())
    }

    /// Adds a child's process group to those the watchdog kills.
    fn note_group(&self, child: &Child) -> Result<(), ScratchError> {
        use std::io::Write;
        let mut groups = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("groups"))?;
        writeln!(groups, "{}", child.id())?;
        Ok(())
    }

    fn wait_until(&self, what: &str, ready: impl Fn() -> bool) -> Result<(), ScratchError> {
        let started = Instant::now();
        while !ready() {
            if started.elapsed() > CONVERGE_WITHIN {
                return Err(ScratchError::NotConverged {
                    wanted: what.into(),
                    within: CONVERGE_WITHIN,
                    seen: String::new(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn pg_ctl(&self) -> String {
        self.bin.join("pg_ctl").display().to_string()
    }

    /// `pg_autoctl` with `args`, as the clusters' owner, its configuration and state files
    /// inside the temporary directory.
    fn autoctl_command(&self, args: &[&str]) -> Command {
        let mut command = as_owner(Path::new("env"), &[], true);
        command
            .arg(format!("PATH={}:/usr/bin:/bin", self.bin.display()))
            .arg(format!(
                "XDG_CONFIG_HOME={}",
                self.dir.join("config").display()
            ))
            .arg(format!(
                "XDG_DATA_HOME={}",
                self.dir.join("share").display()
            ))
            .arg(AUTOCTL)
            .args(args)
            .current_dir(&self.dir);
        command
    }

    fn autoctl(&self, args: &[&str]) -> Result<(), ScratchError> {
        run(&mut self.autoctl_command(args)).map(|_| ())
    }

    fn monitor_query(&self, sql: &str) -> Result<String, ScratchError> {
        self.psql(self.monitor_port, "pg_auto_failover", sql)
    }

    /// One statement through `psql` as superuser `postgres`; its output, trimmed.
    fn psql(&self, port: u16, database: &str, sql: &str) -> Result<String, ScratchError> {
        let output = run(Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-d", database, "-qAtX", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "2"))?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

/// Where Debian's `pg-auto-failover-cli` puts `pg_autoctl`.
const AUTOCTL: &str = "/usr/bin/pg_autoctl";

/// SIGKILL to a keeper's whole process group: the keeper, its PostgreSQL server and the server's
/// processes.
fn kill_group(keeper: &Child) {
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{}", keeper.id())])
        .status();
}

impl Drop for ScratchHa {
    fn drop(&mut self) {
        for (_, keeper) in &mut self.keepers {
            kill_group(keeper);
            let _ = keeper.wait();
        }
        // Its work is done: it must not kill process groups whose ids may be reused later.
        kill_group(&self.watchdog);
        let _ = self.watchdog.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
