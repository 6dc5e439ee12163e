//! The command line: `serve`, `check`, and the `api-key`, `admin` and `signing-key` commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sessions::AdminRole;

use crate::error::ServerError;

/// Server-side session management for identity providers.
#[derive(Parser, Debug)]
#[command(name = "server", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the JSON API and the admin dashboard.
    Serve(Box<ServeArgs>),
    /// Verify the embedded store (in --data-dir) offline: every count recounted from the
    /// records, every index entry checked against its record. Exits non-zero on any
    /// difference.
    Check(CheckArgs),
    /// Rewrite the embedded store (in --data-dir) offline into a fresh copy and swap it in
    /// (crash-safe): reclaims the space of old page versions and makes the next start read no
    /// log. Run while the server is stopped. (PostgreSQL reclaims space itself: VACUUM.)
    Compact(CompactArgs),
    /// Create, list or revoke API keys (run while the server is stopped; a running server
    /// manages keys through /api/v1/api-keys and the dashboard).
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Manage dashboard administrators (run while the server is stopped).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage the keys that sign logout tokens (run while the server is stopped; a running
    /// server rotates with POST /api/v1/signing-keys/rotate).
    #[command(subcommand, name = "signing-key")]
    SigningKey(SigningKeyCommand),
    /// Copy the embedded store in --from into a PostgreSQL database (--to) exactly: sessions
    /// (their tokens stay valid), grants, deliveries, audit log, clients, API keys,
    /// administrators and signing keys. Run while the server is stopped; run again to finish an
    /// interrupted copy. Compares the counts of both stores at the end.
    MigrateStore(MigrateStoreArgs),
}

#[derive(Subcommand, Debug)]
pub enum SigningKeyCommand {
    /// Make a new key current; the old one stays published until its tokens have expired.
    Rotate {
        #[command(flatten)]
        data: DataDir,
    },
    /// Print the published public keys (JWKS).
    Show {
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an administrator, or set a new password; the password is read from stdin.
    Create {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        username: String,
        /// `viewer`, `operator` or `admin`: a new administrator's role (default admin); for an
        /// existing one, their new role (left as it is when not given).
        #[arg(long, value_parser = parse_role)]
        role: Option<AdminRole>,
    },
    /// List the administrators.
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Disable an administrator: their dashboard sessions end and they cannot sign in.
    Disable {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled administrator again.
    Enable {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        username: String,
    },
}

/// What `check` looks at.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// Rewrite every index entry and count that differs from the records.
    #[arg(long)]
    pub repair: bool,
}

#[derive(Args, Debug)]
pub struct CompactArgs {
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Args, Debug)]
pub struct MigrateStoreArgs {
    /// Directory of the embedded store to copy.
    #[arg(long)]
    pub from: PathBuf,
    /// The PostgreSQL database to copy it into (postgres://user@host/db).
    #[arg(long, hide_env_values = true)]
    pub to: String,
}

/// Where the store lives: the embedded store in a directory (the default), or a PostgreSQL
/// database that several servers share.
#[derive(Args, Debug, Clone)]
pub struct DataDir {
    /// Directory of the embedded store.
    #[arg(long, env = "SESSIONS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// A PostgreSQL database instead of the embedded store (postgres://user@host/db); its
    /// schema is brought up to date at start-up. Several servers may share it.
    #[arg(long = "store", env = "SESSIONS_STORE_URL", hide_env_values = true)]
    pub store_url: Option<String>,
    /// With a PostgreSQL store: milliseconds any one statement may run before PostgreSQL
    /// cancels it (its `statement_timeout`), so no request holds a connection past its own time
    /// limit; 0 leaves the database's own setting.
    #[arg(
        long,
        env = "SESSIONS_PG_STATEMENT_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub pg_statement_timeout_ms: u64,
    /// With a PostgreSQL store: the most connections this server opens to it.
    #[arg(
        long,
        env = "SESSIONS_PG_MAX_CONNECTIONS",
        default_value_t = store_postgres::store::DEFAULT_MAX_CONNECTIONS as u16,
        value_parser = clap::value_parser!(u16).range(1..=1000)
    )]
    pub pg_max_connections: u16,
    /// With a PostgreSQL store: the most sessions this server keeps in memory to answer
    /// validations without a round trip to the database (0: none). Each server evicts a session
    /// when PostgreSQL tells it of the session's end (a round trip after the end commits), and
    /// answers nothing from memory while it cannot hear those notifications.
    #[arg(
        long,
        env = "SESSIONS_PG_VALIDATION_CACHE",
        default_value_t = store_postgres::store::DEFAULT_VALIDATION_CACHE as u32,
        value_parser = clap::value_parser!(u32).range(0..=10_000_000)
    )]
    pub pg_validation_cache: u32,
    /// With the embedded store: megabytes of its page cache, the pages kept decoded in memory
    /// (at most this much of the server's memory). What does not fit is read again from the file
    /// (through the operating system's cache) when used.
    #[arg(
        long,
        env = "SESSIONS_CACHE_MB",
        default_value_t = sessions::store::DEFAULT_CACHE_MB,
        value_parser = clap::value_parser!(u32).range(16..=1_048_576)
    )]
    pub cache_mb: u32,
}

impl DataDir {
    /// How a PostgreSQL store is opened.
    pub fn postgres_options(&self) -> store_postgres::store::PostgresOptions {
        store_postgres::store::PostgresOptions {
            statement_timeout: (self.pg_statement_timeout_ms > 0)
                .then(|| std::time::Duration::from_millis(self.pg_statement_timeout_ms)),
            max_connections: usize::from(self.pg_max_connections),
            validation_cache: self.pg_validation_cache as usize,
        }
    }

    /// Refuses a PostgreSQL store for what only the embedded store has (`command`).
    pub fn embedded_only(&self, command: &'static str) -> Result<&PathBuf, ServerError> {
        match &self.store_url {
            None => Ok(&self.data_dir),
            Some(_) => Err(ServerError::EmbeddedOnly { command }),
        }
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SESSIONS_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub data: DataDir,
    /// Seed a `demo` realm with a few thousand sessions when the store has no realm.
    #[arg(long, env = "SESSIONS_DEMO", default_value_t = false)]
    pub demo: bool,
    /// Registered at start-up as an API key with every scope, for automation and tests.
    #[arg(long, env = "SESSIONS_BOOTSTRAP_API_KEY", hide_env_values = true)]
    pub bootstrap_api_key: Option<String>,
    /// If set, the password of the dashboard administrator `admin` (created if missing).
    #[arg(long, env = "SESSIONS_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Seconds between runs of the expired-session reaper.
    #[arg(long, env = "SESSIONS_REAPER_INTERVAL_SECS", default_value_t = 10)]
    pub reaper_interval_secs: u64,
    /// Days a delivered logout notification stays listed before the reaper deletes it (failed
    /// ones are kept until retried).
    #[arg(long, env = "SESSIONS_DELIVERED_RETENTION_DAYS", default_value_t = 7)]
    pub delivered_retention_days: u64,
    /// Days an ended session's history entry (who, how it ended, which applications were told)
    /// is kept before the reaper deletes it; 0 keeps none past the next reaper run.
    #[arg(long, env = "SESSIONS_ENDED_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3650))]
    pub ended_retention_days: u64,
    /// A MaxMind-format City or Country database (GeoLite2, DB-IP Lite) that places each
    /// session's address: country and city, shown, filtered and exported. Replace the file by
    /// renaming a new one over it (it is memory-mapped); a restart reads the new one.
    #[arg(long, env = "SESSIONS_GEOIP_DB")]
    pub geoip_db: Option<std::path::PathBuf>,
    /// A MaxMind-format ASN database (GeoLite2-ASN, DB-IP Lite ASN): each address's autonomous
    /// system number and organisation.
    #[arg(long, env = "SESSIONS_ASN_DB")]
    pub asn_db: Option<std::path::PathBuf>,
    /// The `iss` of logout tokens (the identity provider's issuer URL); default `http://ADDR`.
    #[arg(long, env = "SESSIONS_ISSUER")]
    pub issuer: Option<String>,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    #[command(flatten)]
    pub web: WebArgs,
}

/// How the dashboard and API face the network.
#[derive(Args, Debug, Clone)]
pub struct WebArgs {
    /// Send the dashboard cookie without `Secure` and the `__Host-` prefix, for plain-http use
    /// on a workstation (`make run` sets it). Leave it off behind https.
    #[arg(long, env = "SESSIONS_PLAIN_HTTP_COOKIES", default_value_t = false)]
    pub plain_http_cookies: bool,
    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose `X-Forwarded-For` is
    /// believed; from anyone else the peer's address is the client's.
    #[arg(long, env = "SESSIONS_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Seconds a stopping server waits for open requests before it closes them.
    #[arg(long, env = "SESSIONS_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// The URL administrators open the dashboard at (e.g. `https://sessions.example.com`).
    /// Requests carrying the dashboard's cookie must name its host in `Host`; without it, the
    /// listening address (and `localhost` when that is a loopback or unspecified address).
    #[arg(long, env = "SESSIONS_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// How back-channel logout notifications are delivered and retried.
#[derive(Args, Debug, Clone)]
pub struct DeliveryArgs {
    /// Milliseconds allowed for one POST to a client.
    #[arg(long, env = "SESSIONS_DELIVERY_TIMEOUT_MS", default_value_t = 5000)]
    pub delivery_timeout_ms: u64,
    /// Milliseconds before the first retry; each further retry waits twice as long (with jitter).
    #[arg(
        long,
        env = "SESSIONS_DELIVERY_FIRST_BACKOFF_MS",
        default_value_t = 2000
    )]
    pub delivery_first_backoff_ms: u64,
    /// Longest wait between retries, in seconds.
    #[arg(
        long,
        env = "SESSIONS_DELIVERY_MAX_BACKOFF_SECS",
        default_value_t = 300
    )]
    pub delivery_max_backoff_secs: u64,
    /// Seconds a failing delivery is retried before it is marked failed.
    #[arg(
        long,
        env = "SESSIONS_DELIVERY_RETRY_FOR_SECS",
        default_value_t = 86400
    )]
    pub delivery_retry_for_secs: u64,
    /// Hosts (comma-separated names or addresses) that back-channel logout URIs may name even
    /// though they are loopback, private or link-local, and that may use plain http; for
    /// deployments and tests that need them, e.g. `127.0.0.1,localhost`.
    #[arg(long, env = "SESSIONS_BACKCHANNEL_ALLOW_HOSTS", default_value = "")]
    pub backchannel_allow_hosts: String,
    /// Milliseconds between looks at the outbox when nothing wakes the delivery worker (for
    /// retries that came due, and notifications another server queued in a shared database).
    #[arg(long, env = "SESSIONS_DELIVERY_POLL_MS", default_value_t = 500)]
    pub delivery_poll_ms: u64,
    /// Most deliveries attempted at once.
    #[arg(long, env = "SESSIONS_DELIVERY_MAX_IN_FLIGHT", default_value_t = 64)]
    pub delivery_max_in_flight: usize,
    /// Most deliveries attempted at once to one client, so that a slow client cannot hold up
    /// the others.
    #[arg(
        long,
        env = "SESSIONS_DELIVERY_MAX_IN_FLIGHT_PER_CLIENT",
        default_value_t = 4
    )]
    pub delivery_max_in_flight_per_client: usize,
}

impl DeliveryArgs {
    pub fn config(&self) -> service::backchannel::DeliveryConfig {
        use std::time::Duration;
        service::backchannel::DeliveryConfig {
            timeout: Duration::from_millis(self.delivery_timeout_ms.max(1)),
            first_backoff: Duration::from_millis(self.delivery_first_backoff_ms.max(1)),
            max_backoff: Duration::from_secs(self.delivery_max_backoff_secs.max(1)),
            retry_for: Duration::from_secs(self.delivery_retry_for_secs),
            poll_every: Duration::from_millis(self.delivery_poll_ms.max(1)),
            max_in_flight: self.delivery_max_in_flight.max(1),
            max_in_flight_per_client: self.delivery_max_in_flight_per_client.max(1),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create a key and print it (shown once; only its hash is stored).
    Create {
        #[command(flatten)]
        data: DataDir,
        /// A name for the key, shown in the audit log as `api-key:NAME`.
        #[arg(long)]
        name: String,
        /// `sessions:issue`, `sessions:admin`, `sessions:read` or `ssf:receiver`; repeat for
        /// several.
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<service::api_keys::Scope>,
        /// Limit the key to this realm; repeat for several. Without it the key reaches every
        /// realm. A limited key is refused (403) in other realms and on routes that span every
        /// realm.
        #[arg(long = "realm", value_name = "NAME")]
        realms: Vec<String>,
    },
    /// List the keys (names, scopes, creation times, realms or `*` for every realm).
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke a key by name.
    Revoke {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        name: String,
    },
}

fn parse_scope(s: &str) -> Result<service::api_keys::Scope, String> {
    service::api_keys::Scope::parse(s).ok_or_else(|| {
        format!("unknown scope '{s}': use sessions:issue, sessions:admin, sessions:read or ssf:receiver")
    })
}

fn parse_role(s: &str) -> Result<AdminRole, String> {
    AdminRole::parse(s).ok_or_else(|| format!("unknown role '{s}': use viewer, operator or admin"))
}

#[cfg(test)]
mod data_dir_tests {
    use super::*;
    use std::time::Duration;

    #[derive(Parser)]
    struct Only {
        #[command(flatten)]
        data: DataDir,
    }

    fn options(args: &[&str]) -> store_postgres::store::PostgresOptions {
        let args = std::iter::once("server").chain(args.iter().copied());
        Only::try_parse_from(args).unwrap().data.postgres_options()
    }

    #[test]
    fn a_postgres_store_cuts_statements_off_at_30_s_unless_told_otherwise() {
        assert_eq!(
            options(&[]).statement_timeout,
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            options(&["--pg-statement-timeout-ms", "1500"]).statement_timeout,
            Some(Duration::from_millis(1500))
        );
        // 0: the database's own setting.
        assert_eq!(
            options(&["--pg-statement-timeout-ms", "0"]).statement_timeout,
            None
        );
    }

    #[test]
    fn a_postgres_store_opens_at_most_the_connections_it_is_told() {
        let default = store_postgres::store::DEFAULT_MAX_CONNECTIONS;
        assert_eq!(options(&[]).max_connections, default);
        assert_eq!(options(&["--pg-max-connections", "48"]).max_connections, 48);
        let args = |n: &'static str| ["server", "--pg-max-connections", n];
        assert!(Only::try_parse_from(args("0")).is_err());
        assert!(Only::try_parse_from(args("1001")).is_err());
    }

    #[test]
    fn a_postgres_store_keeps_validated_sessions_unless_told_not_to() {
        let default = store_postgres::store::DEFAULT_VALIDATION_CACHE;
        assert_eq!(options(&[]).validation_cache, default);
        assert_eq!(options(&["--pg-validation-cache", "0"]).validation_cache, 0);
        let args = ["server", "--pg-validation-cache", "-1"];
        assert!(Only::try_parse_from(args).is_err());
    }

    #[test]
    fn the_embedded_store_caches_512_mib_unless_told_otherwise() {
        let cache = |args: &[&str]| {
            let args = std::iter::once("server").chain(args.iter().copied());
            Only::try_parse_from(args).map(|o| o.data.cache_mb)
        };
        assert_eq!(cache(&[]).unwrap(), sessions::store::DEFAULT_CACHE_MB);
        assert_eq!(cache(&["--cache-mb", "128"]).unwrap(), 128);
        assert!(cache(&["--cache-mb", "8"]).is_err());
        assert!(cache(&["--cache-mb", "lots"]).is_err());
    }
}
