//! The sessions server: opens the store, serves the JSON API and the dashboard, and runs the
//! background reaper and the back-channel logout delivery worker. `main.rs` only parses the command line.

pub mod cli;
pub mod demo;
pub mod live;
pub mod reaper;

use std::sync::Arc;

use api::{AdminAccounts, ApiKeys, ApiState, Backchannel, SigningKeys};
use app::state::AppState;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use sessions::store::{SessionStore, SledStore};
use tower_http::trace::TraceLayer;

/// The opened store and what is built on it.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<SledStore>,
    pub keys: Arc<ApiKeys>,
    pub admins: Arc<AdminAccounts>,
    pub signing_keys: Arc<SigningKeys>,
}

impl Services {
    /// Opens the store in `data_dir`, with a clear error when another process holds it.
    pub fn open(data_dir: &std::path::Path) -> Result<Services, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let store = SledStore::open(data_dir).map_err(|e| {
            if e.to_string().contains("lock") || e.to_string().contains("WouldBlock") {
                format!(
                    "{} is in use by another process (a running server?): stop it first",
                    data_dir.display()
                )
            } else {
                format!("cannot open the store in {}: {e}", data_dir.display())
            }
        })?;
        let store = Arc::new(store);
        let keys = Arc::new(ApiKeys::open(store.clone()).map_err(|e| e.to_string())?);
        let admins = Arc::new(AdminAccounts::open(store.clone()).map_err(|e| e.to_string())?);
        let signing_keys = Arc::new(
            SigningKeys::open(store.clone(), chrono::Utc::now()).map_err(|e| e.to_string())?,
        );
        Ok(Services {
            store,
            keys,
            admins,
            signing_keys,
        })
    }
}

/// The whole HTTP surface: the JSON API and the dashboard with its server functions and assets.
pub fn router(
    services: &Services,
    backchannel: Arc<Backchannel>,
    leptos_options: LeptosOptions,
) -> Router {
    let store: Arc<dyn SessionStore> = services.store.clone();
    let api = api::router(ApiState {
        store: store.clone(),
        keys: services.keys.clone(),
        backchannel: backchannel.clone(),
    });
    let routes = generate_route_list(app::App);
    let app_state = AppState {
        store: store.clone(),
        admins: services.admins.clone(),
        backchannel,
    };
    let dashboard = Router::new()
        .leptos_routes_with_context(
            &leptos_options,
            routes,
            move || provide_context(app_state.clone()),
            {
                let options = leptos_options.clone();
                move || app::shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(app::shell))
        .with_state(leptos_options);
    let live = Router::new()
        .route(
            "/live/realms/{realm}",
            axum::routing::get(live::realm_counts),
        )
        .with_state(store);
    dashboard
        .merge(api)
        .merge(live)
        .layer(TraceLayer::new_for_http())
}
