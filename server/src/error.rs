//! What can stop the server or one of its commands. `main` prints an error's `Display` after
//! `error: ` and exits non-zero; the tests match on the variants.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use service::backchannel::InvalidAllowHost;
use sessions::SessionError;

/// An error of the server or of a command.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The embedded store's directory is locked: another process (a running server, a command)
    /// holds it, or a store of this process that was just closed has not let go of it yet.
    #[error("{} is in use by another process (a running server?): stop it first", dir.display())]
    StoreInUse { dir: PathBuf },
    /// The embedded store in `dir` could not be opened.
    #[error("cannot open the store in {}: {source}", dir.display())]
    OpenStore {
        dir: PathBuf,
        #[source]
        source: SessionError,
    },
    /// The PostgreSQL store could not be opened (or its schema brought up to date).
    #[error("cannot open the PostgreSQL store: {0}")]
    OpenPostgres(#[source] SessionError),
    /// Compacting the embedded store in `dir` failed.
    #[error("cannot compact the store in {}: {source}", dir.display())]
    Compact {
        dir: PathBuf,
        #[source]
        source: SessionError,
    },
    /// A command that works on an existing embedded store found none in `dir`.
    #[error("{} holds no store", dir.display())]
    NoStore { dir: PathBuf },
    /// A command only the embedded store has was given a PostgreSQL store.
    #[error(
        "{command} works on the embedded store in --data-dir; --store (SESSIONS_STORE_URL) names \
         a PostgreSQL store, which PostgreSQL itself checks and compacts"
    )]
    EmbeddedOnly { command: &'static str },
    /// A command-line flag's value is unusable.
    #[error("{flag}: {message}")]
    Flag { flag: &'static str, message: String },
    /// `--backchannel-allow-hosts` names something that is not a host (the message names the
    /// flag).
    #[error(transparent)]
    AllowHosts(#[from] InvalidAllowHost),
    /// A start-up setting (`SESSIONS_BOOTSTRAP_API_KEY`, `SESSIONS_ADMIN_PASSWORD`) could not
    /// be applied.
    #[error("{setting}: {source}")]
    Setting {
        setting: &'static str,
        #[source]
        source: SessionError,
    },
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A file or directory of the data directory could not be created, read or restricted.
    #[error("cannot {action} {}: {source}", path.display())]
    DataDir {
        /// What was being done: `create`, `read`, `list`, `restrict`, `restrict to 0700`...
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Any other input or output failure (serving, reading stdin, writing a report).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] SessionError),
    /// A blocking task panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// Printing JSON failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// `check` found problems and was not asked to repair them.
    #[error(
        "{count} problems found; run with --repair to rebuild indexes and counts from the records"
    )]
    Problems { count: usize },
    /// `api-key revoke` named no key.
    #[error("no API key named '{name}'")]
    NoApiKey { name: String },
    /// `migrate-store`: the database holds a realm of the same name that is not the one copied.
    #[error(
        "the database holds another realm '{realm}' (created {created_at}); copy into an empty \
         database"
    )]
    OtherRealm {
        realm: String,
        created_at: DateTime<Utc>,
    },
    /// `migrate-store`: a realm's activity counters differ once copied.
    #[error("the activity counters of realm {realm} differ after copying them")]
    StatsDiffer { realm: String },
    /// `migrate-store`: a session or grant id of the embedded store is not an id.
    #[error("bad id {id}")]
    BadId { id: String },
    /// `migrate-store`: counts of both stores differ at the end.
    #[error("counts differ: {}", what.join(", "))]
    CountsDiffer { what: Vec<String> },
}

impl ServerError {
    /// Whether the embedded store's directory was locked by another holder.
    pub fn is_store_in_use(&self) -> bool {
        matches!(self, ServerError::StoreInUse { .. })
    }
}
