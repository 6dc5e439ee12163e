//! The sessions server: opens the store, serves the JSON API and the dashboard behind one request
//! guard, and runs the background reaper and the back-channel logout delivery worker.
//! `main.rs` parses the command line and calls [`serve`]; the tests call it too, so the server
//! they test is wired exactly as the one that ships.

pub mod cli;
pub mod demo;
pub mod error;
pub mod export;
pub mod live;
pub mod migrate_store;
pub mod reaper;
pub mod server_fn_errors;
pub mod storage_dir;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::{ApiState, GuardConfig};
use app::server_fns::auth::ssr::CookiePolicy;
use app::state::AppState;
use axum::Router;
use chrono::Utc;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use service::admins::AdminAccounts;
use service::api_keys::ApiKeys;
use service::backchannel::{AllowHosts, Backchannel, SigningKeys};
use service::signals::SignalStreams;
use service::SessionService;
use sessions::store::{AccountStore, SessionStore, SledStore};
use store_postgres::PostgresStore;
use tokio_util::sync::CancellationToken;

use crate::cli::{DataDir, ServeArgs};
pub use crate::error::ServerError;

/// The opened store and what is built on it.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn AccountStore>,
    /// The same store when it is the embedded one (for what only it has: open statistics, its
    /// check, flushing at shutdown).
    pub embedded: Option<Arc<SledStore>>,
    pub keys: Arc<ApiKeys>,
    pub admins: Arc<AdminAccounts>,
    pub signing_keys: Arc<SigningKeys>,
    pub streams: Arc<SignalStreams>,
}

impl Services {
    /// Opens the store `data` names: a PostgreSQL database (its schema brought up to date), or
    /// the embedded store in its directory.
    pub async fn open(data: &DataDir) -> Result<Services, ServerError> {
        let (store, embedded): (Arc<dyn AccountStore>, _) = match &data.store_url {
            Some(url) => {
                let store = PostgresStore::open_with_options(url, &data.postgres_options())
                    .await
                    .map_err(ServerError::OpenPostgres)?;
                (Arc::new(store), None)
            }
            None => {
                // Opening reads the disk (a journal replay, an upgrade): a blocking thread's work.
                let (dir, cache_mb) = (data.data_dir.clone(), data.cache_mb);
                let store =
                    tokio::task::spawn_blocking(move || Self::open_embedded(&dir, cache_mb))
                        .await??;
                (store.clone(), Some(store))
            }
        };
        let keys = Arc::new(ApiKeys::open(store.clone()).await?);
        let admins = Arc::new(AdminAccounts::open(store.clone()).await?);
        let signing_keys = Arc::new(SigningKeys::open(store.clone(), Utc::now()).await?);
        let streams = Arc::new(SignalStreams::open(store.clone()).await?);
        if embedded.is_some() {
            storage_dir::restrict_files(&data.data_dir)?;
        }
        Ok(Services {
            store,
            embedded,
            keys,
            admins,
            signing_keys,
            streams,
        })
    }

    /// Opens the embedded store in `data_dir` (created `0700`, its files `0600`) with a page
    /// cache of `cache_mb`, with [`ServerError::StoreInUse`] when another holder has it open.
    fn open_embedded(
        data_dir: &std::path::Path,
        cache_mb: u32,
    ) -> Result<Arc<SledStore>, ServerError> {
        storage_dir::prepare(data_dir)?;
        let store = storage_dir::unless_in_use(
            data_dir,
            || SledStore::open_with_cache(data_dir, cache_mb),
            |source| ServerError::OpenStore {
                dir: data_dir.to_owned(),
                source,
            },
        )?;
        Ok(Arc::new(store))
    }
}

/// How the HTTP surface faces the network.
#[derive(Clone)]
pub struct WebConfig {
    pub guard: GuardConfig,
    pub cookie: CookiePolicy,
    /// Cancelled when the server stops: live streams end with it.
    pub shutdown: CancellationToken,
}

/// The whole HTTP surface behind the request guard: the JSON API and the dashboard with its
/// server functions, live stream and assets, all over one [`SessionService`].
pub fn router(service: &SessionService, leptos_options: LeptosOptions, web: &WebConfig) -> Router {
    let api = api::router(ApiState {
        service: service.clone(),
    });
    let routes = generate_route_list(app::App);
    let app_state = AppState {
        service: service.clone(),
        cookie: web.cookie,
    };
    let live = live::LiveState {
        service: service.clone(),
        cookie: web.cookie,
        shutdown: web.shutdown.clone(),
    };
    let dashboard = Router::new()
        .leptos_routes_with_context(
            &leptos_options,
            routes,
            {
                let app_state = app_state.clone();
                move || provide_context(app_state.clone())
            },
            {
                let options = leptos_options.clone();
                move || app::shell(options.clone())
            },
        )
        // Any other path: a static file, else the app's "page not found" (a 404), rendered with
        // the same state as every page, as its header asks who is signed in.
        .fallback(leptos_axum::file_and_error_handler_with_context(
            move || provide_context(app_state.clone()),
            app::shell,
        ))
        .with_state(leptos_options)
        .layer(axum::middleware::from_fn(
            server_fn_errors::caller_errors_are_4xx,
        ));
    let live = Router::new()
        .route(
            "/live/realms/{realm}",
            axum::routing::get(live::realm_counts),
        )
        .route(
            "/export/realms/{realm}/sessions",
            axum::routing::get(export::download),
        )
        .route(
            "/export/realms/{realm}/ended",
            axum::routing::get(export::download_ended),
        )
        .with_state(live);
    api::guard::protect(dashboard.merge(api).merge(live), web.guard.clone())
}

/// Options for serving the dashboard's assets: from cargo-leptos's environment when it runs us,
/// else the workspace's defaults.
fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    let env = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_owned());
    LeptosOptions::builder()
        .output_name(env("LEPTOS_OUTPUT_NAME", "sessions-admin"))
        .site_root(env("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(env("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(addr)
        .build()
}

/// Runs the server on `listener` until `shutdown` is cancelled: opens the store, applies the
/// start-up settings, serves, then ends live streams, waits up to the grace period for open
/// requests, stops the background work and makes everything durable.
pub async fn serve(
    args: ServeArgs,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let geoip = service::network::GeoIp::open(args.geoip_db.as_deref(), args.asn_db.as_deref())
        .map_err(|e| ServerError::Flag {
            flag: "--geoip-db / --asn-db",
            message: e.to_string(),
        })?;
    let services = Services::open(&args.data).await?;
    match &services.embedded {
        Some(embedded) => log_opened(embedded, &args.data.data_dir),
        None => tracing::info!("opened the PostgreSQL store"),
    }
    apply_start_up_settings(&services, &args).await?;
    let store: Arc<dyn SessionStore> = services.store.clone();
    let reaper = tokio::spawn(reaper::run(
        store.clone(),
        Duration::from_secs(args.reaper_interval_secs.max(1)),
        reaper::Retention {
            delivered: Duration::from_secs(args.delivered_retention_days.saturating_mul(86_400)),
            ended: Duration::from_secs(args.ended_retention_days.saturating_mul(86_400)),
        },
    ));
    let addr = listener.local_addr()?;
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let allow_hosts = AllowHosts::parse(&args.delivery.backchannel_allow_hosts)?;
    // The Shared Signals transmitter is this server, where receivers reach it.
    let transmitter = args
        .web
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let backchannel = Arc::new(
        Backchannel::new(
            services.signing_keys.clone(),
            services.streams.clone(),
            issuer,
        )
        .with_transmitter(&transmitter)
        .with_allow_hosts(allow_hosts),
    );
    let deliveries = tokio::spawn(service::backchannel::worker::run(
        store.clone(),
        backchannel.clone(),
        args.delivery.config(),
    ));
    let service = SessionService::new(
        store,
        services.keys.clone(),
        services.admins.clone(),
        backchannel,
    )
    .with_geoip(geoip);
    // Servers sharing a database read its API keys and signing keys again now and then.
    let reloads = services.embedded.is_none().then(|| {
        let service = service.clone();
        tokio::spawn(async move {
            let every = service::SHARED_RELOAD_EVERY;
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticker.tick().await;
                service.reload_shared().await;
            }
        })
    });
    let web = WebConfig {
        guard: GuardConfig {
            trusted_proxies: api::guard::TrustedProxies::parse(&args.web.trusted_proxies).map_err(
                |message| ServerError::Flag {
                    flag: "--trusted-proxies",
                    message,
                },
            )?,
            dashboard_host: Some(
                api::guard::DashboardHost::new(args.web.public_url.as_deref(), addr).map_err(
                    |message| ServerError::Flag {
                        flag: "--public-url",
                        message,
                    },
                )?,
            ),
        },
        cookie: CookiePolicy {
            secure: !args.web.plain_http_cookies,
        },
        shutdown: shutdown.clone(),
    };
    api::metrics::handle();
    let app = router(&service, leptos_options(addr), &web);
    tracing::info!("serving the dashboard at http://{addr} and the API at http://{addr}/api/v1");
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let grace = Duration::from_secs(args.web.shutdown_grace_secs);
    let deadline = async {
        shutdown.cancelled().await;
        tracing::info!(
            "stopping: waiting up to {} s for open requests",
            grace.as_secs()
        );
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = server => served?,
        () = deadline => tracing::warn!("requests still open after the grace period were closed"),
    }
    reaper.abort();
    deliveries.abort();
    if let Some(reloads) = reloads {
        reloads.abort();
    }
    if let Some(store) = services.embedded.clone() {
        tokio::task::spawn_blocking(move || store.wait_durable()).await??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Logs how the embedded store opened.
fn log_opened(store: &SledStore, data_dir: &std::path::Path) {
    let opened = store.open_stats();
    tracing::info!(
        open_ms = opened.elapsed.as_millis() as u64,
        sled_open_ms = opened.sled_elapsed.as_millis() as u64,
        journal_replayed = opened.replayed,
        resident_mib = opened.resident_bytes >> 20,
        upgraded = opened.upgraded,
        "opened the store in {} in {:.2} s, resident memory {} MiB{}",
        data_dir.display(),
        opened.elapsed.as_secs_f64(),
        opened.resident_bytes >> 20,
        if opened.upgraded {
            " (upgraded from storage layout 1)"
        } else {
            ""
        }
    );
}

/// The bootstrap key (registered while its variable is set, removed once it is not), the
/// `admin` password, and the demo realm.
async fn apply_start_up_settings(services: &Services, args: &ServeArgs) -> Result<(), ServerError> {
    let bootstrap = service::api_keys::BOOTSTRAP_KEY_NAME;
    match &args.bootstrap_api_key {
        Some(key) => {
            services
                .keys
                .register(bootstrap, key, &service::api_keys::Scope::ALL, Utc::now())
                .await
                .map_err(|source| ServerError::Setting {
                    setting: "SESSIONS_BOOTSTRAP_API_KEY",
                    source,
                })?;
        }
        None => {
            if services
                .keys
                .revoke(bootstrap, "server", Utc::now())
                .await?
            {
                tracing::info!(
                    "removed the bootstrap API key: SESSIONS_BOOTSTRAP_API_KEY is no longer set"
                );
            }
        }
    }
    if let Some(password) = &args.admin_password {
        let admins = &services.admins;
        // Only a changed password is set (setting one ends the administrator's sessions).
        let set = async {
            match admins.verify("admin", password).await? {
                service::admins::Verified::Wrong => {
                    let now = Utc::now();
                    admins
                        .set_password("admin", password, None, "server", now)
                        .await
                }
                service::admins::Verified::Yes | service::admins::Verified::Disabled => Ok(()),
            }
        };
        set.await.map_err(|source| ServerError::Setting {
            setting: "SESSIONS_ADMIN_PASSWORD",
            source,
        })?;
        tracing::info!(
            "administrator 'admin' can sign in with the password from SESSIONS_ADMIN_PASSWORD"
        );
    }
    if args.demo {
        let seeded = demo::seed(services.store.as_ref(), 3000).await?;
        if seeded {
            tracing::info!("seeded realm 'demo' with 3000 sessions");
        }
    }
    Ok(())
}
