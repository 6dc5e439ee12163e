//! The overview: a realm's activity at a glance, from the store's time-bucketed counters.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::anomaly::AnomalyCount;
use sessions::stats::Overview;
use sessions::Realm;

use crate::error::AppError;

/// What the overview page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewView {
    /// Every realm administrators work with, for the picker.
    pub realms: Vec<Realm>,
    /// The chosen realm's overview (the first realm's if none was chosen); none without realms.
    pub overview: Option<Overview>,
}

/// The realms, and the overview of the chosen realm (else the first).
#[server(endpoint = "load_overview")]
pub async fn load_overview(realm: Option<String>) -> Result<OverviewView, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service, user_realms};
    require_admin().await?;
    let service = service()?;
    let (realms, realm) = user_realms(&service, realm).await?;
    let overview = match &realm {
        Some(r) => Some(service.overview(r).await.map_err(failed)?),
        None => None,
    };
    Ok(OverviewView { realms, overview })
}

/// How many of the realm's sessions have each anomaly (read apart: these scan the realm).
#[server]
pub async fn load_anomalies(realm: String) -> Result<Vec<AnomalyCount>, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    require_admin().await?;
    service()?.anomaly_counts(&realm).await.map_err(failed)
}
