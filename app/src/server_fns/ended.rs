//! Ended-session history: what happened to sessions that are gone.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::{EndedPage, Realm};

use crate::error::AppError;

/// Ended sessions per page.
pub const PAGE_SIZE: u32 = 25;

/// What the ended-sessions page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndedView {
    pub realms: Vec<Realm>,
    pub realm: Option<String>,
    pub page: Option<EndedPage>,
    /// The server's time of this answer, which times are shown relative to.
    pub now: DateTime<Utc>,
}

/// One page of the chosen realm's (else the first realm's) ended sessions, newest end first,
/// filtered by subject, session id and how they ended, starting after `after`.
#[server]
pub async fn load_ended(
    realm: Option<String>,
    subject_id: Option<String>,
    sid: Option<String>,
    how: Option<String>,
    after: Option<String>,
) -> Result<EndedView, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service, user_realms};
    require_admin().await?;
    let service = service()?;
    let (realms, realm) = user_realms(&service, realm).await?;
    let page = match &realm {
        Some(r) => {
            let query = sessions::EndedQuery {
                subject_id,
                sid,
                how,
                count: Some(PAGE_SIZE),
                after,
            };
            Some(service.ended_sessions(r, query).await.map_err(failed)?)
        }
        None => None,
    };
    Ok(EndedView {
        realms,
        realm,
        page,
        now: Utc::now(),
    })
}
