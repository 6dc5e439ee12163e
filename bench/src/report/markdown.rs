//! This benchmark's section of `BENCHMARKS.md`, between its own markers, so the store-level
//! section `make bench` writes stays as it is (and the other way round).

use std::path::Path;

use chrono::{DateTime, Utc};

use super::machine::describe;
use super::thousands;
use crate::run::Settings;

const START: &str = "<!-- bench-http:start -->";
const END: &str = "<!-- bench-http:end -->";

/// The section's text: how the run was made, the table, what to read it with, the chart.
pub fn section(settings: &Settings, table: &str, chart: &Path, started: DateTime<Utc>) -> String {
    let sizes: Vec<String> = settings.sizes.iter().map(|s| thousands(*s)).collect();
    let chart_name = chart.file_name().map_or_else(
        || chart.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    format!(
        "## Through HTTP, side by side with the incumbent (`make bench-http`)

The last table `make bench-http` wrote (sizes {sizes}; `make bench-http SIZES=\"10000\" DURATION=4s`
for a quick run).

- date: {date}
- machine: {machine} (shared with other work: figures are indicative)
- load: wrk on 127.0.0.1, {threads} threads; validate and create on {connections} connections,
  an administrator's queries on {admin} connections, removals one at a time (a wrk run each, our
  server's logout deliveries waited out after each); each load {secs} s (validation during a
  sweep at least 10 s; a sweep is waited for up to 90 s)
- ours: the release server (`cargo leptos build --release`, mimalloc), its store written through
  the `sessions` crate before it starts; realm `bench`, idle timeout 7 days, refreshing
  validations written at most once per 60 s (the realm's default); every client has a
  back-channel logout URI (a do-nothing receiver on 127.0.0.1, allowed with
  `--backchannel-allow-hosts`)
- ours on PG: the same server with `--store postgres://...`, a database of its own on the same
  PostgreSQL server as Duende's (measured after Duende's loads, one at a time), filled from a
  copy of the freshly seeded embedded store by `server migrate-store` (the same sessions and
  tokens; counters rebuilt from the rows); its disk is the whole database
  (`pg_database_size`), its memory the server's and PostgreSQL's processes
- Duende: its `ServerSideSessions` and `PersistedGrants` tables and indexes on PostgreSQL 15
  (defaults, fsync and synchronous commit on), loaded by `COPY`, the SQL of its Entity Framework
  stores behind a minimal axum endpoint in the same release build (tokio-postgres, a pool of
  {pool}); every renewal is written; its disk is both tables with their indexes
- warm-up: each side's loads, and its sweep, follow an unrecorded validation load, in runs of
  3 s until the sampled sessions were drawn three times over (about 95% of them validated at
  least once, as a server that has run a while has), 30 s at most
- ceiling: an axum handler that does nothing, same build; \"ours ÷ ceiling\" compares rates for
  the same method (POST)
- data: one generated data set per size (fixed seed): subjects with a skewed number of sessions,
  realistic display names, 1–3 of 6 clients each, ages up to 6 days, and 6 subjects with 1,000
  sessions each for the removals (3 per removal row), each session holding a refresh token per
  client and each subject a consent per client it signed in to; validations draw from up to
  100,000 sampled sessions
- removals: ours is `POST .../sessions/end` by subject with every flag on (the session records
  deleted, the tokens issued under them and the subject's consents revoked, a back-channel logout
  queued per session and client), durable when it answers. In \"remove 1,000 of a subject\"
  Duende does less: a bare `DELETE` of the session rows (`DeleteSessionsAsync` alone), its lower
  bound. In \"remove 1,000 of a subject, with tokens and notifications\" Duende does what
  `RemoveSessionsAsync` does with every flag, in one transaction: one `DELETE` of the subject's
  `PersistedGrants` (`RemoveAllAsync` by subject), a `SELECT` of its sessions (each ticket read
  for its clients), an `INSERT` per session of a row per client into a notifications table, and
  one `DELETE` of the sessions. Duende has no such table (it signs and POSTs each logout from the
  request, not modelled): the rows stand for our outbox. Its EF stores load rows and delete them
  one by one; a `DELETE` by subject is their best case
- \"ours ÷ Duende\" divides rates for loads and Duende's p50 by ours for one-shot requests.
  Our listings are newest first and filter by exact subject, display-name word prefix and client;
  Duende's are by `Id` with `LIKE '%x%'` on subject and display name, two `COUNT(*)`s per page,
  and no client filter
- expiry sweep: {sweep} expired sessions removed by each side's own job (our reaper, batches
  of 250 ended 64 at a time; Duende's cleanup job, batches of 100) while validations run; each
  side is restarted first and warmed up, then the load is measured from the moment its sweep
  begins

{table}
![p99 against the number of sessions: ours solid, ours on PostgreSQL dotted, Duende dashed]({chart_name})
",
        sizes = sizes.join(", "),
        date = started.format("%Y-%m-%d %H:%M UTC"),
        machine = describe(),
        threads = settings.threads,
        connections = settings.connections,
        admin = settings.admin_connections,
        secs = settings.duration.as_secs(),
        pool = settings.pool,
        sweep = thousands(settings.sweep),
    )
}

/// Replaces the section between the markers in `file` with `body`, or appends it.
pub fn write_section(file: &Path, body: &str) -> std::io::Result<()> {
    let old = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    std::fs::write(file, replace_section(&old, body))
}

fn replace_section(old: &str, body: &str) -> String {
    let section = format!("{START}\n{}\n{END}", body.trim_end());
    match (old.find(START), old.find(END)) {
        (Some(s), Some(e)) if e > s => {
            format!("{}{section}{}", &old[..s], &old[e + END.len()..])
        }
        _ if old.trim().is_empty() => format!("{section}\n"),
        _ => format!("{}\n\n{section}\n", old.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_its_own_section() {
        let first = replace_section("# Store benchmarks\n\nstore table\n", "http v1");
        assert!(first.starts_with("# Store benchmarks\n\nstore table\n\n<!-- bench-http:start -->"));
        let mut edited = first.replace("store table", "new store table");
        edited.push_str("\nafter\n");
        let second = replace_section(&edited, "http v2");
        assert!(second.contains("new store table"));
        assert!(second.contains("http v2"));
        assert!(!second.contains("http v1"));
        assert!(second.ends_with("<!-- bench-http:end -->\n\nafter\n"));
        assert_eq!(replace_section("", "x"), format!("{START}\nx\n{END}\n"));
    }
}
