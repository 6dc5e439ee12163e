//! Sessions: what the sessions page shows, and revocation.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};
use sessions::{
    Grant, QueryResult, Realm, RemoveAllSessions, RemoveOutcome, RemoveSessions, Session,
    SessionQuery,
};

/// Everything the sessions page needs, in one round trip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionsView {
    pub realms: Vec<Realm>,
    /// The realm shown: the one asked for, else the first.
    pub realm: Option<String>,
    pub page: Option<QueryResult>,
    /// The signed-in administrator's own dashboard session.
    pub own_sid: String,
}

/// The realms, and one page of the chosen realm's sessions.
#[server]
pub async fn load_sessions(
    realm: Option<String>,
    query: SessionQuery,
) -> Result<SessionsView, ServerFnError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{blocking, shown, state};
    let admin = require_admin().await?;
    let store = state()?.store;
    let realms = store.list_realms().map_err(shown)?;
    let realm = realm.filter(|r| !r.is_empty()).or_else(|| {
        let first_user_realm = realms
            .iter()
            .find(|r| !sessions::validate::is_reserved_realm(&r.name));
        first_user_realm.or(realms.first()).map(|r| r.name.clone())
    });
    let page = match &realm {
        Some(r) => {
            let (store, r) = (store.clone(), r.clone());
            Some(blocking(move || store.query(&r, &query)).await?)
        }
        None => None,
    };
    Ok(SessionsView {
        realms,
        realm,
        page,
        own_sid: admin.sid,
    })
}

/// Ends sessions (or, with `dry_run`, previews it). The administrator's own session is refused.
#[server(endpoint = "revoke_sessions", input = Json)]
pub async fn revoke_sessions(
    realm: String,
    request: RemoveSessions,
) -> Result<RemoveOutcome, ServerFnError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{blocking, fail, state};
    let admin = require_admin().await?;
    if realm == api::ADMIN_REALM {
        // Session ids compared as parsed values: `ABC...` names the same session as `abc...`.
        use sessions::store::parse_sid;
        let own_sid = parse_sid(&admin.sid);
        let is_own = |sid: &String| own_sid.is_some() && parse_sid(sid) == own_sid;
        let own = request.sids.iter().any(is_own) || request.sid.as_ref().is_some_and(is_own);
        let by_subject = request.sids.is_empty()
            && request.sid.is_none()
            && request.subject_id.as_deref() == Some(&admin.username);
        if own || by_subject {
            return Err(fail(
                409,
                "You cannot revoke the session you are signed in with.",
            ));
        }
    }
    let state = state()?;
    let store = state.store.clone();
    let actor = format!("admin:{}", admin.username);
    let outcome =
        blocking(move || store.remove(&realm, &request, &actor, chrono::Utc::now())).await?;
    state.backchannel.wake.notify_one();
    Ok(outcome)
}

/// One session, and whether it is the administrator's own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionDetail {
    pub session: Session,
    pub own: bool,
}

/// One session by its id.
#[server]
pub async fn load_session(realm: String, sid: String) -> Result<SessionDetail, ServerFnError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{shown, state};
    let admin = require_admin().await?;
    let session = state()?.store.get_session(&realm, &sid).map_err(shown)?;
    let own = realm == api::ADMIN_REALM && session.sid == admin.sid;
    Ok(SessionDetail { session, own })
}

/// The live tokens and consents issued under a session (which may have ended).
#[server]
pub async fn load_session_grants(realm: String, sid: String) -> Result<Vec<Grant>, ServerFnError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{shown, state};
    require_admin().await?;
    state()?
        .store
        .list_grants(
            &realm,
            &sessions::GrantOwner::Session(sid),
            chrono::Utc::now(),
        )
        .map_err(shown)
}

/// Ends every session of the realm (or, with `dry_run`, previews it). Not for the admin realm,
/// which holds the administrator's own session.
#[server(endpoint = "revoke_all_sessions", input = Json)]
pub async fn revoke_all_sessions(
    realm: String,
    request: RemoveAllSessions,
) -> Result<RemoveOutcome, ServerFnError> {
    use super::auth::ssr::require_admin;
    use super::ssr::{blocking, fail, state};
    let admin = require_admin().await?;
    if realm == api::ADMIN_REALM {
        return Err(fail(
            409,
            "You cannot sign out the realm holding the session you are signed in with.",
        ));
    }
    let state = state()?;
    let store = state.store.clone();
    let actor = format!("admin:{}", admin.username);
    let outcome =
        blocking(move || store.remove_all(&realm, &request, &actor, chrono::Utc::now())).await?;
    state.backchannel.wake.notify_one();
    Ok(outcome)
}
