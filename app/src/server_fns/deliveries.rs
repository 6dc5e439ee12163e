//! Back-channel logout deliveries: what was sent to which client, what failed, and "retry now".

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::{Delivery, DeliveryPage, DeliveryStatus, Realm};

/// Deliveries per page.
pub const PAGE_SIZE: usize = 50;

/// What the deliveries page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveriesView {
    pub realms: Vec<Realm>,
    pub realm: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub page: Option<DeliveryPage>,
}

/// One page of the chosen realm's (else the first realm's) deliveries, optionally of one status,
/// older than `before`.
#[server]
pub async fn load_deliveries(
    realm: Option<String>,
    status: Option<String>,
    before: Option<u64>,
) -> Result<DeliveriesView, ServerFnError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{blocking, fail, state, user_realms};
    require_admin().await?;
    let store = state()?.store;
    let status = match status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            fail(
                400,
                format!("Unknown status '{s}': use pending, delivered or failed."),
            )
        })?),
    };
    let (realms, realm) = user_realms(store.as_ref(), realm)?;
    let page = match &realm {
        Some(r) => {
            let (store, r) = (store.clone(), r.clone());
            Some(blocking(move || store.list_deliveries(&r, status, before, PAGE_SIZE)).await?)
        }
        None => None,
    };
    Ok(DeliveriesView {
        realms,
        realm,
        status,
        page,
    })
}

/// Queues a pending or failed delivery for an attempt now.
#[server]
pub async fn retry_delivery(realm: String, id: u64) -> Result<Delivery, ServerFnError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{blocking, state};
    let admin = require_admin().await?;
    let state = state()?;
    let store = state.store.clone();
    let actor = format!("admin:{}", admin.username);
    let delivery =
        blocking(move || store.retry_delivery(&realm, id, &actor, chrono::Utc::now())).await?;
    state.backchannel.wake.notify_one();
    Ok(delivery)
}
