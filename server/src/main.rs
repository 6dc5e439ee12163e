//! `server`: parses the command line and runs the command.

use std::process::ExitCode;

use chrono::Utc;
use clap::Parser;
use server::cli::{
    AdminCommand, ApiKeyCommand, CheckArgs, Cli, Command, CompactArgs, ServeArgs, SigningKeyCommand,
};
use server::{ServerError, Services};
use tokio_util::sync::CancellationToken;

/// mimalloc: the request path allocates small, short-lived objects on every core; glibc's malloc
/// showed at about 16% of a validate profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    sessions::store::huge_pages::disable_transparent_huge_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sled=warn".into()),
        )
        .init();
    server::storage_dir::restrict_new_files();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(*args).await,
        Command::Check(args) => check(args).await,
        Command::Compact(args) => compact(args),
        Command::ApiKey(cmd) => api_key(cmd).await,
        Command::Admin(cmd) => admin(cmd).await,
        Command::SigningKey(cmd) => signing_key(cmd).await,
        Command::MigrateStore(args) => {
            server::migrate_store::run(&args.from, &args.to, &mut std::io::stdout()).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), ServerError> {
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|source| ServerError::Listen {
            addr: args.addr,
            source,
        })?;
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            shutdown.cancel();
        }
    });
    server::serve(args, listener, shutdown).await
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

async fn check(args: CheckArgs) -> Result<(), ServerError> {
    args.data.embedded_only("check")?;
    let services = Services::open(&args.data).await?;
    let store = services
        .embedded
        .as_ref()
        .ok_or(ServerError::EmbeddedOnly { command: "check" })?;
    let report = store.check(args.repair)?;
    println!(
        "checked {} sessions, {} grants, {} deliveries",
        report.sessions, report.grants, report.deliveries
    );
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    if report.problems.is_empty() {
        println!("consistent");
        Ok(())
    } else if report.repaired {
        println!("repaired {} problems", report.problems.len());
        Ok(())
    } else {
        Err(ServerError::Problems {
            count: report.problems.len(),
        })
    }
}

fn compact(args: CompactArgs) -> Result<(), ServerError> {
    let dir = args.data.embedded_only("compact")?;
    if !dir.join("db").exists() {
        return Err(ServerError::NoStore { dir: dir.clone() });
    }
    server::storage_dir::prepare(dir)?;
    let stats = server::storage_dir::unless_in_use(
        dir,
        || sessions::store::SledStore::compact(dir),
        |source| ServerError::Compact {
            dir: dir.clone(),
            source,
        },
    )?;
    server::storage_dir::restrict_files(dir)?;
    println!(
        "compacted {}: {} MiB -> {} MiB, {} keys, in {:.1} s",
        dir.display(),
        stats.bytes_before >> 20,
        stats.bytes_after >> 20,
        stats.keys,
        stats.elapsed.as_secs_f64()
    );
    Ok(())
}

async fn admin(cmd: AdminCommand) -> Result<(), ServerError> {
    match cmd {
        AdminCommand::Create {
            data,
            username,
            role,
        } => {
            let services = Services::open(&data).await?;
            eprintln!("password for '{username}' (one line on stdin):");
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let admins = &services.admins;
            let exists = admins.list().await?.iter().any(|a| a.username == username);
            if exists {
                admins
                    .set_password(&username, password, None, "cli", Utc::now())
                    .await?;
                if let Some(role) = role {
                    admins.set_role(&username, role, "cli", Utc::now()).await?;
                }
                eprintln!("administrator '{username}' has a new password (their other dashboard sessions ended)");
            } else {
                let role = role.unwrap_or_default();
                admins
                    .create(&username, password, role, "cli", Utc::now())
                    .await?;
                eprintln!(
                    "administrator '{username}' (role {role}) can now sign in to the dashboard"
                );
            }
        }
        AdminCommand::List { data } => {
            let services = Services::open(&data).await?;
            for a in services.admins.list().await? {
                let state = if a.disabled { "disabled" } else { "enabled" };
                println!(
                    "{}\t{}\t{state}\t{}",
                    a.username,
                    a.role,
                    a.created_at.to_rfc3339()
                );
            }
        }
        AdminCommand::Disable { data, username } => {
            let services = Services::open(&data).await?;
            services
                .admins
                .set_disabled(&username, true, "cli", Utc::now())
                .await?;
            eprintln!("administrator '{username}' is disabled and signed out");
        }
        AdminCommand::Enable { data, username } => {
            let services = Services::open(&data).await?;
            services
                .admins
                .set_disabled(&username, false, "cli", Utc::now())
                .await?;
            eprintln!("administrator '{username}' can sign in again");
        }
    }
    Ok(())
}

async fn signing_key(cmd: SigningKeyCommand) -> Result<(), ServerError> {
    match cmd {
        SigningKeyCommand::Rotate { data } => {
            let services = Services::open(&data).await?;
            let kid = services.signing_keys.rotate(Utc::now()).await?;
            eprintln!("logout tokens are now signed with key '{kid}'");
        }
        SigningKeyCommand::Show { data } => {
            let services = Services::open(&data).await?;
            let jwks = services.signing_keys.jwks(Utc::now());
            println!("{}", serde_json::to_string_pretty(&jwks)?);
        }
    }
    Ok(())
}

async fn api_key(cmd: ApiKeyCommand) -> Result<(), ServerError> {
    match cmd {
        ApiKeyCommand::Create {
            data,
            name,
            scopes,
            realms,
        } => {
            let services = Services::open(&data).await?;
            let realms = (!realms.is_empty()).then_some(realms);
            let (key, secret) = services
                .keys
                .create_in_realms(&name, &scopes, realms, "cli", Utc::now())
                .await?;
            let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
            eprintln!(
                "created API key '{}' with scopes {} for {}; it is shown only now:",
                key.name,
                scopes.join(", "),
                match &key.realms {
                    Some(_) => format!("realms {}", key.realms_label()),
                    None => "every realm".to_owned(),
                }
            );
            println!("{secret}");
        }
        ApiKeyCommand::List { data } => {
            let services = Services::open(&data).await?;
            for key in services.keys.list().await? {
                let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{}\t{}\t{}\t{}",
                    key.name,
                    scopes.join(","),
                    key.created_at.to_rfc3339(),
                    key.realms.as_ref().map_or("*".to_owned(), |r| r.join(","))
                );
            }
        }
        ApiKeyCommand::Revoke { data, name } => {
            let services = Services::open(&data).await?;
            if !services.keys.revoke(&name, "cli", Utc::now()).await? {
                return Err(ServerError::NoApiKey { name });
            }
            eprintln!("revoked API key '{name}'");
        }
    }
    Ok(())
}
