//! Sessions: what the sessions page shows.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::{QueryResult, Realm, SessionQuery};

/// Everything the sessions page needs, in one round trip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionsView {
    pub realms: Vec<Realm>,
    /// The realm shown: the one asked for, else the first.
    pub realm: Option<String>,
    pub page: Option<QueryResult>,
}

/// The realms, and one page of the chosen realm's sessions.
#[server]
pub async fn load_sessions(
    realm: Option<String>,
    query: SessionQuery,
) -> Result<SessionsView, ServerFnError> {
    use super::ssr::{shown, store};
    let store = store()?;
    let realms = store.list_realms().map_err(shown)?;
    let realm = realm
        .filter(|r| !r.is_empty())
        .or_else(|| realms.first().map(|r| r.name.clone()));
    let page = match &realm {
        Some(r) => Some(store.query(r, &query).map_err(shown)?),
        None => None,
    };
    Ok(SessionsView {
        realms,
        realm,
        page,
    })
}
