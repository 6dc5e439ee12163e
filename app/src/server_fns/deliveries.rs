//! Back-channel logout deliveries: what was sent to which client, what failed, and "retry now".

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::{Delivery, DeliveryPage, DeliveryStatus, Realm};

use crate::error::AppError;

/// Deliveries per page.
pub const PAGE_SIZE: usize = 50;

/// What the deliveries page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveriesView {
    pub realms: Vec<Realm>,
    pub realm: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub page: Option<DeliveryPage>,
    /// Whether the administrator's role may retry deliveries (else "Retry now" is not shown).
    pub may_retry: bool,
    /// The server's time of this answer, which times are shown relative to.
    pub now: DateTime<Utc>,
}

/// One page of the chosen realm's (else the first realm's) deliveries, optionally of one status,
/// older than `before`.
#[server]
pub async fn load_deliveries(
    realm: Option<String>,
    status: Option<String>,
    before: Option<u64>,
) -> Result<DeliveriesView, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service, user_realms};
    let admin = require_admin().await?;
    let service = service()?;
    let status = service::parse_delivery_status(status.as_deref()).map_err(failed)?;
    let (realms, realm) = user_realms(&service, realm).await?;
    let page = match &realm {
        Some(r) => Some(
            service
                .list_deliveries(r, status, before, PAGE_SIZE)
                .await
                .map_err(failed)?,
        ),
        None => None,
    };
    Ok(DeliveriesView {
        realms,
        realm,
        status,
        page,
        may_retry: admin.may(sessions::Permission::Operate),
        now: Utc::now(),
    })
}

/// Queues a pending or failed delivery for an attempt now.
#[server]
pub async fn retry_delivery(realm: String, id: u64) -> Result<Delivery, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    let delivery = service()?
        .retry_delivery(&realm, id, &admin.actor())
        .await
        .map_err(failed)?;
    Ok(delivery)
}
