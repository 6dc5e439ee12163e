//! The command line: `serve`, and the `api-key` commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    Serve(ServeArgs),
    /// Create, list or revoke API keys (run while the server is stopped).
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Manage dashboard administrators (run while the server is stopped).
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an administrator, or set a new password; the password is read from stdin.
    Create {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        username: String,
    },
}

/// Where the store lives.
#[derive(Args, Debug, Clone)]
pub struct DataDir {
    /// Directory of the embedded store.
    #[arg(long, env = "SESSIONS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
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
        /// `sessions:issue` and/or `sessions:admin`; repeat for several.
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<api::Scope>,
    },
    /// List the keys (names, scopes, creation times).
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

fn parse_scope(s: &str) -> Result<api::Scope, String> {
    api::Scope::parse(s)
        .ok_or_else(|| format!("unknown scope '{s}': use sessions:issue or sessions:admin"))
}
