//! `server`: parses the command line and runs the command.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use clap::Parser;
use leptos::config::LeptosOptions;
use server::cli::{AdminCommand, ApiKeyCommand, Cli, Command, ServeArgs, SigningKeyCommand};
use server::Services;
use sessions::store::SessionStore;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sled=warn".into()),
        )
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::ApiKey(cmd) => api_key(cmd),
        Command::Admin(cmd) => admin(cmd),
        Command::SigningKey(cmd) => signing_key(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Options for serving the dashboard's assets: from cargo-leptos's environment when it runs us,
/// else the workspace's defaults.
fn leptos_options(args: &ServeArgs) -> LeptosOptions {
    let env = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_owned());
    LeptosOptions::builder()
        .output_name(env("LEPTOS_OUTPUT_NAME", "sessions-admin"))
        .site_root(env("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(env("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(args.addr)
        .build()
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let services = Services::open(&args.data.data_dir)?;
    if let Some(key) = &args.bootstrap_api_key {
        services
            .keys
            .register("bootstrap", key, &api::Scope::ALL, Utc::now())
            .map_err(|e| e.to_string())?;
    }
    if let Some(password) = &args.admin_password {
        services
            .admins
            .set_password("admin", password, Utc::now())
            .map_err(|e| format!("SESSIONS_ADMIN_PASSWORD: {e}"))?;
        tracing::info!(
            "administrator 'admin' can sign in with the password from SESSIONS_ADMIN_PASSWORD"
        );
    }
    if args.demo {
        let store = services.store.clone();
        let seeded = tokio::task::spawn_blocking(move || server::demo::seed(store.as_ref(), 3000))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if seeded {
            tracing::info!("seeded realm 'demo' with 3000 sessions");
        }
    }
    let store: Arc<dyn SessionStore> = services.store.clone();
    let reaper = tokio::spawn(server::reaper::run(
        store.clone(),
        Duration::from_secs(args.reaper_interval_secs.max(1)),
        Duration::from_secs(args.delivered_retention_days.saturating_mul(86_400)),
    ));
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.addr));
    let backchannel = Arc::new(api::Backchannel::new(services.signing_keys.clone(), issuer));
    let deliveries = tokio::spawn(api::backchannel::worker::run(
        store,
        backchannel.clone(),
        args.delivery.config(),
    ));
    let app = server::router(&services, backchannel, leptos_options(&args));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    tracing::info!(
        "serving the dashboard at http://{} and the API at http://{}/api/v1",
        args.addr,
        args.addr
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    reaper.abort();
    deliveries.abort();
    services.store.wait_durable().map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

fn admin(cmd: AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::Create { data, username } => {
            let services = Services::open(&data.data_dir)?;
            eprintln!("password for '{username}' (one line on stdin):");
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| e.to_string())?;
            let password = password.trim_end_matches(['\r', '\n']);
            services
                .admins
                .set_password(&username, password, Utc::now())
                .map_err(|e| e.to_string())?;
            eprintln!("administrator '{username}' can now sign in to the dashboard");
        }
    }
    Ok(())
}

fn signing_key(cmd: SigningKeyCommand) -> Result<(), String> {
    match cmd {
        SigningKeyCommand::Rotate { data } => {
            let services = Services::open(&data.data_dir)?;
            let kid = services
                .signing_keys
                .rotate(Utc::now())
                .map_err(|e| e.to_string())?;
            eprintln!("logout tokens are now signed with key '{kid}'");
        }
        SigningKeyCommand::Show { data } => {
            let services = Services::open(&data.data_dir)?;
            let jwks = services.signing_keys.jwks(Utc::now());
            println!(
                "{}",
                serde_json::to_string_pretty(&jwks).map_err(|e| e.to_string())?
            );
        }
    }
    Ok(())
}

fn api_key(cmd: ApiKeyCommand) -> Result<(), String> {
    match cmd {
        ApiKeyCommand::Create { data, name, scopes } => {
            let services = Services::open(&data.data_dir)?;
            let (key, secret) = services
                .keys
                .create(&name, &scopes, Utc::now())
                .map_err(|e| e.to_string())?;
            let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
            eprintln!(
                "created API key '{}' with scopes {}; it is shown only now:",
                key.name,
                scopes.join(", ")
            );
            println!("{secret}");
        }
        ApiKeyCommand::List { data } => {
            let services = Services::open(&data.data_dir)?;
            for key in services.keys.list().map_err(|e| e.to_string())? {
                let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{}\t{}\t{}",
                    key.name,
                    scopes.join(","),
                    key.created_at.to_rfc3339()
                );
            }
        }
        ApiKeyCommand::Revoke { data, name } => {
            let services = Services::open(&data.data_dir)?;
            if !services.keys.revoke(&name).map_err(|e| e.to_string())? {
                return Err(format!("no API key named '{name}'"));
            }
            eprintln!("revoked API key '{name}'");
        }
    }
    Ok(())
}
