//! Back-channel logout deliveries: listed with counts per status, retried by hand.

use chrono::Utc;
use sessions::store::MAX_LISTED_DELIVERIES;
use sessions::{Delivery, DeliveryPage, DeliveryStatus, Result, SessionError};

use crate::roles::Permission;
use crate::{to_the_end, Actor, SessionService};

/// A delivery status as a caller names it (`pending`, `delivered`, `failed`; absent or empty
/// for all).
pub fn parse_delivery_status(status: Option<&str>) -> Result<Option<DeliveryStatus>> {
    match status {
        None | Some("") => Ok(None),
        Some(s) => DeliveryStatus::parse(s).map(Some).ok_or_else(|| {
            SessionError::invalid(format!(
                "status must be pending, delivered or failed, not '{s}'"
            ))
        }),
    }
}

impl SessionService {
    /// A page of the realm's deliveries, newest first, optionally of one status, older than
    /// `before`, at most `count` (1 to [`MAX_LISTED_DELIVERIES`]).
    pub async fn list_deliveries(
        &self,
        realm: &str,
        status: Option<DeliveryStatus>,
        before: Option<u64>,
        count: usize,
    ) -> Result<DeliveryPage> {
        if !(1..=MAX_LISTED_DELIVERIES).contains(&count) {
            return Err(SessionError::invalid(format!(
                "count must be 1 to {MAX_LISTED_DELIVERIES}"
            )));
        }
        let (store, realm) = (self.store.clone(), realm.to_owned());
        store.list_deliveries(&realm, status, before, count).await
    }

    /// Queues a pending or failed delivery for an attempt now, with a fresh retry window.
    pub async fn retry_delivery(&self, realm: &str, id: u64, actor: &Actor) -> Result<Delivery> {
        actor.require(Permission::Operate)?;
        let (store, realm, actor) = (self.store.clone(), realm.to_owned(), actor.audit_name());
        let delivery =
            to_the_end(async move { store.retry_delivery(&realm, id, &actor, Utc::now()).await })
                .await;
        self.wake_deliveries();
        delivery
    }
}
