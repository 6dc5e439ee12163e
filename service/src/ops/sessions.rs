//! Sessions: the identity provider's data plane (create, validate, end, join, properties) and
//! administration (list, inspect, end with flags). Every ending wakes the delivery worker.

use std::collections::BTreeMap;

use chrono::Utc;
use sessions::store::parse_sid;
use sessions::{
    validate, CreatedSession, EndAllSessions, EndOutcome, EndSessions, LastAddress, NewSession,
    QueryResult, Result, Session, SessionError, SessionQuery,
};
use sessions::{EndedPage, EndedQuery};

use crate::admins::ADMIN_REALM;
use crate::roles::Permission;
use crate::{to_the_end, Actor, SessionService};

/// An address in one text form: an IPv4-mapped IPv6 address as IPv4, IPv6 in its shortest
/// lower-case form; text that is no address as given.
fn canonical_address(ip: &str) -> String {
    ip.parse::<std::net::IpAddr>()
        .map(|a| a.to_canonical().to_string())
        .unwrap_or_else(|_| ip.to_owned())
}

impl SessionService {
    /// Starts a session; its token is in the answer and nowhere else.
    pub async fn create_session(&self, realm: &str, new: NewSession) -> Result<CreatedSession> {
        let (store, realm) = (self.store.clone(), realm.to_owned());
        let network = new.ip.as_deref().and_then(|ip| self.geoip.lookup(ip));
        let created = to_the_end(async move {
            store
                .create_located_session(&realm, &new, network, Utc::now())
                .await
        })
        .await;
        // A quota eviction may have queued logouts.
        self.wake_deliveries();
        created
    }

    /// The session the token belongs to, if valid; with `refresh`, extends its idle expiry.
    pub async fn validate(
        &self,
        realm: &str,
        token: &str,
        refresh: bool,
        from: Option<&str>,
    ) -> Result<Option<Session>> {
        // An empty address names none (as an empty filter does).
        let from = from.filter(|ip| !ip.trim().is_empty());
        if let Some(ip) = from {
            validate::text("ip", ip)?;
        }
        let now = Utc::now();
        let valid = self.store.validate(realm, token, refresh, now).await?;
        let (Some(session), Some(ip)) = (&valid, from) else {
            return Ok(valid);
        };
        // A refresh written now (at most once per the realm's update interval) from an address
        // other than the latest: that address is kept beside the sign-in's.
        let ip = canonical_address(ip);
        let written = session.last_access_at.timestamp_millis() == now.timestamp_millis();
        let latest = session.last_ip.as_deref().map(canonical_address);
        if !refresh || !written || latest.as_deref() == Some(ip.as_str()) {
            return Ok(valid);
        }
        let last = LastAddress {
            network: self.geoip.lookup(&ip),
            ip,
        };
        let (store, realm, sid) = (self.store.clone(), realm.to_owned(), session.sid.clone());
        match to_the_end(async move { store.note_address(&realm, &sid, &last).await }).await {
            Ok(moved) => Ok(moved.or(valid)),
            // The validation stands: the address waits for the next refresh.
            Err(e) => {
                tracing::warn!(error = %e, "could not record a session's new address");
                Ok(valid)
            }
        }
    }

    /// Ends the token's session with every flag. Durable.
    pub async fn logout(&self, realm: &str, token: &str) -> Result<bool> {
        let (store, realm, token) = (self.store.clone(), realm.to_owned(), token.to_owned());
        let ended = to_the_end(async move { store.logout(&realm, &token, Utc::now()).await }).await;
        self.wake_deliveries();
        ended
    }

    /// Records that a client joined the session.
    pub async fn add_client(&self, realm: &str, sid: &str, client_id: &str) -> Result<Session> {
        let (store, realm, sid, client) = (
            self.store.clone(),
            realm.to_owned(),
            sid.to_owned(),
            client_id.to_owned(),
        );
        to_the_end(async move { store.add_client(&realm, &sid, &client).await }).await
    }

    /// The whitelisted properties of the token's session.
    pub async fn get_properties(
        &self,
        realm: &str,
        token: &str,
    ) -> Result<BTreeMap<String, String>> {
        self.store.get_properties(realm, token, Utc::now()).await
    }

    /// Sets whitelisted properties of the token's session.
    pub async fn set_properties(
        &self,
        realm: &str,
        token: &str,
        properties: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        let (store, realm, token) = (self.store.clone(), realm.to_owned(), token.to_owned());
        to_the_end(async move {
            store
                .set_properties(&realm, &token, &properties, Utc::now())
                .await
        })
        .await
    }

    /// One page of a realm's sessions, filtered, sorted and counted.
    pub async fn query(&self, realm: &str, query: SessionQuery) -> Result<QueryResult> {
        let (store, realm) = (self.store.clone(), realm.to_owned());
        store.query(&realm, &query).await
    }

    /// One page of a realm's ended-session history, newest end first, counted.
    pub async fn ended_sessions(&self, realm: &str, query: EndedQuery) -> Result<EndedPage> {
        self.store.ended_sessions(realm, &query).await
    }

    /// One session by its id.
    pub async fn get_session(&self, realm: &str, sid: &str) -> Result<Session> {
        self.store.get_session(realm, sid).await
    }

    /// Ends selected or filtered sessions with the request's flags (or previews it). An
    /// administrator may not end the dashboard session they act from. Durable.
    pub async fn end_sessions(
        &self,
        realm: &str,
        request: EndSessions,
        actor: &Actor,
    ) -> Result<EndOutcome> {
        actor.require(permission_to_end(realm))?;
        refuse_own_session(realm, &request, actor)?;
        self.refuse_own_session_among_matches(realm, &request, actor)
            .await?;
        let (store, realm, actor) = (self.store.clone(), realm.to_owned(), actor.audit_name());
        let outcome = to_the_end(async move {
            store
                .end_sessions(&realm, &request, &actor, Utc::now())
                .await
        })
        .await;
        self.wake_deliveries();
        outcome
    }

    /// Ends every session of the realm (or previews it). Not the administrators' realm. Durable.
    pub async fn end_all_sessions(
        &self,
        realm: &str,
        request: EndAllSessions,
        actor: &Actor,
    ) -> Result<EndOutcome> {
        actor.require(permission_to_end(realm))?;
        if realm == ADMIN_REALM {
            return Err(SessionError::Conflict(
                "You cannot sign out the realm holding the session you are signed in with.".into(),
            ));
        }
        let (store, realm, actor) = (self.store.clone(), realm.to_owned(), actor.audit_name());
        let outcome = to_the_end(async move {
            store
                .end_all_sessions(&realm, &request, &actor, Utc::now())
                .await
        })
        .await;
        self.wake_deliveries();
        outcome
    }

    /// Refuses a removal by address, creation time or any filter other than the exact ids whose
    /// matches include the dashboard session the administrator acts from (found by a preview of
    /// the same removal).
    async fn refuse_own_session_among_matches(
        &self,
        realm: &str,
        request: &EndSessions,
        actor: &Actor,
    ) -> Result<()> {
        let ranged = request.filters().beyond_ids();
        let Some(own) = own_sid(realm, actor).filter(|_| ranged) else {
            return Ok(());
        };
        let preview = EndSessions {
            dry_run: true,
            ..request.clone()
        };
        let (store, realm, name) = (self.store.clone(), realm.to_owned(), actor.audit_name());
        let outcome = to_the_end(async move {
            store
                .end_sessions(&realm, &preview, &name, Utc::now())
                .await
        })
        .await?;
        if outcome.ended.iter().any(|sid| parse_sid(sid) == Some(own)) {
            return Err(SessionError::Conflict(
                "You cannot revoke the session you are signed in with: it matches these filters."
                    .into(),
            ));
        }
        Ok(())
    }

    /// Whether `sid` is the dashboard session `actor` acts from.
    pub fn is_own_session(&self, realm: &str, sid: &str, actor: &Actor) -> bool {
        own_sid(realm, actor).is_some_and(|own| parse_sid(sid) == Some(own))
    }
}

/// What ending sessions of `realm` needs: ending administrators' dashboard sessions is
/// administering them, so a lower role cannot sign a higher one out.
fn permission_to_end(realm: &str) -> Permission {
    if realm == ADMIN_REALM {
        Permission::Administer
    } else {
        Permission::Operate
    }
}

/// The dashboard session an administrator acts from, as a parsed id, if `realm` holds it.
fn own_sid(realm: &str, actor: &Actor) -> Option<[u8; 16]> {
    match actor {
        Actor::Admin { sid, .. } if realm == ADMIN_REALM => parse_sid(sid),
        _ => None,
    }
}

/// Refuses a removal that would end the acting administrator's own session: by its id (compared
/// as a parsed value, however it is written) or by their user name.
fn refuse_own_session(realm: &str, request: &EndSessions, actor: &Actor) -> Result<()> {
    let Some(own) = own_sid(realm, actor) else {
        return Ok(());
    };
    let is_own = |sid: &String| parse_sid(sid) == Some(own);
    let by_id = request.sids.iter().any(is_own) || request.sid.as_ref().is_some_and(is_own);
    let by_subject = matches!(actor, Actor::Admin { username, .. }
        if request.sids.is_empty() && request.sid.is_none()
            && request.subject_id.as_deref() == Some(username.as_str()));
    if by_id || by_subject {
        return Err(SessionError::Conflict(
            "You cannot revoke the session you are signed in with.".into(),
        ));
    }
    Ok(())
}
