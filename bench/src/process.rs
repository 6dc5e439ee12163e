//! The processes a run starts (our server, the incumbent's endpoint, the ceiling), and what the
//! machine tells about them: resident memory, and the page cache dropped before a cold start.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A child process, stopped with SIGTERM (then killed) when dropped.
pub struct Running {
    child: Child,
    pub addr: SocketAddr,
}

impl Running {
    /// Starts `cmd` and waits until `GET health_path` on `addr` answers 2xx.
    pub fn start(
        mut cmd: Command,
        addr: SocketAddr,
        health_path: &str,
        what: &str,
    ) -> Result<Running, String> {
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        let mut running = Running { child, addr };
        let url = format!("http://{addr}{health_path}");
        let client = reqwest::blocking::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = running.child.try_wait() {
                return Err(format!("{what} exited at start-up with {status}"));
            }
            if client
                .get(&url)
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(running);
            }
            if started.elapsed() > Duration::from_secs(300) {
                running.stop();
                return Err(format!("{what} did not answer {url} within 300 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process gracefully (SIGTERM, up to 60 s), else kills it.
    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: kill(2) with our own child's pid and a valid signal number.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free port on 127.0.0.1.
pub fn free_addr() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))
}

/// Proportional set size (shared pages divided among their users) of a process, in bytes: summed
/// over several processes it does not count shared memory twice.
pub fn pss_bytes(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// The PostgreSQL server listening on `port` and its backends: the postmaster found by its
/// command line, then its children.
pub fn postgres_pids(port: u16) -> Vec<u32> {
    let procs: Vec<(u32, u32, String)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The parent pid is the second field after the parenthesised command name.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
            Some((pid, ppid, cmdline.replace('\0', " ")))
        })
        .collect();
    let port_option = format!("port={port} ");
    let Some(postmaster) = procs
        .iter()
        .find(|(_, _, cmd)| cmd.contains("postgres") && cmd.contains(&port_option))
        .map(|p| p.0)
    else {
        return Vec::new();
    };
    std::iter::once(postmaster)
        .chain(procs.iter().filter(|p| p.1 == postmaster).map(|p| p.0))
        .collect()
}

/// Writes dirty pages and drops the OS page cache; false when the machine does not permit it.
pub fn drop_page_cache() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

/// Bytes the files under `dir` take.
pub fn disk_bytes(dir: &std::path::Path) -> u64 {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => std::fs::read_dir(dir)
            .map(|es| {
                es.filter_map(|e| e.ok())
                    .map(|e| disk_bytes(&e.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}
