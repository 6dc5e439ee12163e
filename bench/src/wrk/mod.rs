//! Drives one workload with wrk (Debian's `wrk`, installed by the Makefile when missing) and reads
//! what it measured from the line `lines.lua`'s `done()` prints.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The wrk script: requests drawn from a file of lines (bodies or paths).
const SCRIPT: &str = include_str!("lines.lua");

/// How each line of a load's file is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Send {
    /// `POST` with the line as the JSON body, to the load's URL.
    Body,
    /// `GET` of the line as the path.
    Path,
}

/// One load: where, what and how hard.
#[derive(Clone, Debug)]
pub struct Load {
    /// `http://127.0.0.1:PORT/path` (the path is the target of `Send::Body` loads).
    pub url: String,
    pub send: Send,
    /// The file of request lines.
    pub lines: PathBuf,
    /// The `Authorization` header, if any.
    pub auth: Option<String>,
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
    /// Send the lines in order and stop after this many answers per thread (one-shot work).
    pub stop_after: Option<usize>,
}

/// What wrk measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    pub requests: u64,
    pub seconds: f64,
    pub p50: Duration,
    pub p99: Duration,
}

impl Measured {
    /// Answers per second over the whole run.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// Runs of a request each, taken together as one run of them all would be: p50 the median
    /// latency, p99 the highest (for fewer than a hundred). `None` for no run.
    pub fn of_each(each: &[Measured]) -> Option<Measured> {
        Some(Measured {
            p99: each.iter().map(|m| m.p50).max()?,
            ..Self::of_loads(each)?
        })
    }

    /// Loads of the same requests taken together: their answers over their time; p50 the median
    /// of their p50s, p99 the highest of their p99s. `None` for no load.
    pub fn of_loads(each: &[Measured]) -> Option<Measured> {
        let mut p50s: Vec<Duration> = each.iter().map(|m| m.p50).collect();
        p50s.sort();
        Some(Measured {
            requests: each.iter().map(|m| m.requests).sum(),
            seconds: each.iter().map(|m| m.seconds).sum(),
            p50: *p50s.get((p50s.len().max(1) - 1) / 2)?,
            p99: each.iter().map(|m| m.p99).max()?,
        })
    }
}

/// Writes the wrk script into `dir` and answers its path.
pub fn install_script(dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join("lines.lua");
    std::fs::write(&path, SCRIPT)?;
    Ok(path)
}

/// Runs wrk; an answer that is not 2xx, or a socket error, fails the load.
pub fn run(script: &Path, load: &Load) -> Result<Measured, String> {
    let method = match load.send {
        Send::Body => "POST",
        Send::Path => "GET",
    };
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .args(["--timeout", "30s", "-s"])
        .arg(script)
        .arg(&load.url)
        .env("BENCH_LINES", &load.lines)
        .env("BENCH_METHOD", method)
        .env(
            "BENCH_MODE",
            if load.send == Send::Body {
                "body"
            } else {
                "path"
            },
        )
        .env("BENCH_AUTH", load.auth.as_deref().unwrap_or(""));
    if let Some(n) = load.stop_after {
        cmd.env("BENCH_ORDER", "sequential")
            .env("BENCH_LIMIT", n.to_string());
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse(&stdout)
}

/// Reads the `BENCH_RESULT` line of wrk's output.
fn parse(output: &str) -> Result<Measured, String> {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_RESULT "))
        .ok_or_else(|| format!("wrk printed no result: {output}"))?;
    let field = |name: &str| -> Result<u64, String> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .ok_or_else(|| format!("no {name} in wrk's result: {line}"))?
            .parse()
            .map_err(|e| format!("{name} in wrk's result: {e}"))
    };
    let (status_errors, socket_errors) = (field("status_errors")?, field("socket_errors")?);
    if status_errors > 0 || socket_errors > 0 {
        return Err(format!(
            "{status_errors} answers were not 2xx and {socket_errors} socket errors: {line}"
        ));
    }
    let requests = field("requests")?;
    if requests == 0 {
        return Err(format!("no request was answered: {line}"));
    }
    Ok(Measured {
        requests,
        seconds: field("duration_us")? as f64 / 1e6,
        p50: Duration::from_micros(field("p50_us")?),
        p99: Duration::from_micros(field("p99_us")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_result_line() {
        let out = "Running 5s test\nBENCH_RESULT requests=5000 duration_us=5000000 p50_us=680 \
                   p99_us=4100 status_errors=0 socket_errors=0\n";
        let m = parse(out).unwrap();
        assert_eq!(m.requests, 5000);
        assert_eq!(m.p50, Duration::from_micros(680));
        assert_eq!(m.p99, Duration::from_micros(4100));
        assert_eq!(m.throughput(), 1000.0);
    }

    #[test]
    fn single_requests_combine_into_one_run() {
        let one = |ms: u64| Measured {
            requests: 1,
            seconds: 1.0,
            p50: Duration::from_millis(ms),
            p99: Duration::from_millis(ms),
        };
        let m = Measured::of_each(&[one(30), one(10), one(20)]).unwrap();
        assert_eq!((m.requests, m.seconds), (3, 3.0));
        assert_eq!(m.p50, Duration::from_millis(20));
        assert_eq!(m.p99, Duration::from_millis(30));
        assert_eq!(Measured::of_each(&[]), None);
    }

    #[test]
    fn failed_answers_fail_the_load() {
        let out = "BENCH_RESULT requests=10 duration_us=1000 p50_us=1 p99_us=2 status_errors=3 \
                   socket_errors=0";
        assert!(parse(out).unwrap_err().contains("3 answers"));
        assert!(parse("nothing").is_err());
    }
}
