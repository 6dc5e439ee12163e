//! Sessions: what the sessions page shows, and revocation.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};
use sessions::{
    EndAllSessions, EndOutcome, EndSessions, Grant, QueryResult, Realm, Session, SessionQuery,
};

use crate::error::AppError;

/// Everything the sessions page needs, in one round trip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionsView {
    pub realms: Vec<Realm>,
    /// The realm shown: the one asked for, else the first.
    pub realm: Option<String>,
    pub page: Option<QueryResult>,
    /// The signed-in administrator's own dashboard session.
    pub own_sid: String,
    /// Whether the administrator's role may end sessions (else no control for it is shown).
    pub may_operate: bool,
    /// The server's time of this answer: times are shown relative to it, so the server's render
    /// and the browser's hydration agree.
    pub now: DateTime<Utc>,
}

/// The realms, and one page of the chosen realm's sessions.
#[server]
pub async fn load_sessions(
    realm: Option<String>,
    query: SessionQuery,
) -> Result<SessionsView, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    let service = service()?;
    let realms = service.list_realms(true).await.map_err(failed)?;
    let realm = realm.filter(|r| !r.is_empty()).or_else(|| {
        let first_user_realm = realms
            .iter()
            .find(|r| !sessions::validate::is_reserved_realm(&r.name));
        first_user_realm.or(realms.first()).map(|r| r.name.clone())
    });
    let page = match &realm {
        Some(r) => Some(service.query(r, query).await.map_err(failed)?),
        None => None,
    };
    Ok(SessionsView {
        realms,
        realm,
        page,
        may_operate: admin.may(sessions::Permission::Operate),
        own_sid: admin.sid,
        now: Utc::now(),
    })
}

/// Ends sessions (or, with `dry_run`, previews it). The administrator's own session is refused.
#[server(name = EndSessionsCall, endpoint = "end_sessions", input = Json)]
pub async fn end_sessions(realm: String, request: EndSessions) -> Result<EndOutcome, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    let outcome = service()?
        .end_sessions(&realm, request, &admin.actor())
        .await
        .map_err(failed)?;
    Ok(outcome)
}

/// One session, and whether it is the administrator's own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionDetail {
    pub session: Session,
    pub own: bool,
    /// Whether the administrator's role may end it.
    pub may_operate: bool,
    /// The server's time of this answer, which times are shown relative to.
    pub now: DateTime<Utc>,
}

/// One session by its id.
#[server]
pub async fn load_session(realm: String, sid: String) -> Result<SessionDetail, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    let service = service()?;
    let session = service.get_session(&realm, &sid).await.map_err(failed)?;
    let own = service.is_own_session(&realm, &session.sid, &admin.actor());
    Ok(SessionDetail {
        session,
        own,
        may_operate: admin.may(sessions::Permission::Operate),
        now: Utc::now(),
    })
}

/// The live tokens and consents issued under a session (which may have ended).
#[server]
pub async fn load_session_grants(realm: String, sid: String) -> Result<Vec<Grant>, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    require_admin().await?;
    service()?
        .list_grants(&realm, sessions::GrantOwner::Session(sid))
        .await
        .map_err(failed)
}

/// Ends every session of the realm (or, with `dry_run`, previews it). Not for the admin realm,
/// which holds the administrator's own session.
#[server(name = EndAllSessionsCall, endpoint = "end_all_sessions", input = Json)]
pub async fn end_all_sessions(
    realm: String,
    request: EndAllSessions,
) -> Result<EndOutcome, AppError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{failed, service};
    let admin = require_admin().await?;
    let outcome = service()?
        .end_all_sessions(&realm, request, &admin.actor())
        .await
        .map_err(failed)?;
    Ok(outcome)
}
