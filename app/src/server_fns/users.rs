//! One subject's page: their sessions, grants and logout deliveries.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::{Delivery, EndedPage, Grant, QueryResult};

use crate::error::AppError;

/// Ended sessions a subject's page shows; the rest are on the ended-sessions page.
pub const ENDED_SHOWN: u32 = 10;

/// Everything a subject's page shows, in one round trip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    /// Their sessions, newest first (the first 1000, with the exact total).
    pub sessions: QueryResult,
    /// Their live tokens and consents, with or without a session.
    pub grants: Vec<Grant>,
    /// Logout notifications about them, newest first.
    pub deliveries: Vec<Delivery>,
    /// When not every delivery of the realm was looked through: how many of the newest were.
    pub deliveries_scanned: Option<usize>,
    /// Their newest ended sessions, with the exact number kept.
    pub ended: EndedPage,
    /// The signed-in administrator's own dashboard session.
    pub own_sid: String,
    /// Whether the administrator's role may end sessions (else no control for it is shown).
    pub may_operate: bool,
    /// The server's time of this answer, which times are shown relative to.
    pub now: DateTime<Utc>,
}

/// A subject's sessions, grants and deliveries in a realm.
#[server]
pub async fn load_user(realm: String, subject_id: String) -> Result<UserView, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    let service = service()?;
    let query = sessions::SessionQuery {
        filters: sessions::SessionFilters {
            subject_id: Some(subject_id.clone()),
            ..Default::default()
        },
        count: Some(sessions::MAX_PAGE_SIZE),
        ..Default::default()
    };
    let sessions = service.query(&realm, query).await.map_err(failed)?;
    let grants = service
        .list_grants(&realm, sessions::GrantOwner::Subject(subject_id.clone()))
        .await
        .map_err(failed)?;
    let deliveries = service
        .subject_deliveries(&realm, &subject_id)
        .await
        .map_err(failed)?;
    let ended_query = sessions::EndedQuery {
        subject_id: Some(subject_id.clone()),
        count: Some(ENDED_SHOWN),
        ..Default::default()
    };
    let ended = service
        .ended_sessions(&realm, ended_query)
        .await
        .map_err(failed)?;
    Ok(UserView {
        sessions,
        grants,
        deliveries: deliveries.deliveries,
        deliveries_scanned: (!deliveries.complete).then_some(service::SUBJECT_DELIVERY_SCAN),
        ended,
        may_operate: admin.may(sessions::Permission::Operate),
        own_sid: admin.sid,
        now: Utc::now(),
    })
}
