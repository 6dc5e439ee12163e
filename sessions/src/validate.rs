//! Input checks shared by every entry point, so bad input is refused the same way everywhere.

use crate::address::AddressRange;
use crate::error::{Result, SessionError};
use crate::model::{
    EndSessions, FilterKind, NewSession, RealmSettings, SessionFilters, SessionQuery,
    MAX_FIELD_LEN, MAX_PAGE_SIZE, MAX_REALM_LEN,
};

/// Longest grant token recorded; anything longer cannot be one.
pub const MAX_GRANT_TOKEN_LEN: usize = 4096;

/// A realm name: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
pub fn realm_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_REALM_LEN || !name.chars().all(ok_char) {
        return Err(SessionError::invalid(format!(
            "realm name must be 1 to {MAX_REALM_LEN} characters of A-Z, a-z, 0-9, '.', '_' or '-'"
        )));
    }
    Ok(())
}

/// Whether a realm name is reserved for the server (it starts with `_`, like the dashboard's
/// `_admin`): such realms are refused by the API and hidden from every listing, count and metric.
pub fn is_reserved_realm(name: &str) -> bool {
    name.starts_with('_')
}

/// A required identifier (subject id, client id, property key): non-empty, at most 255 bytes,
/// no control characters.
pub fn identifier(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(SessionError::invalid(format!("{field} must not be empty")));
    }
    text(field, value)
}

/// A value that names something exactly (a subject, a session, a client): neither empty nor only
/// whitespace, which would otherwise mean "no filter" or match by accident.
pub fn not_blank(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(SessionError::invalid(format!("{field} must not be blank")));
    }
    Ok(())
}

/// Free text (display name, property value, IP, user agent): at most 255 bytes, no control
/// characters.
pub fn text(field: &str, value: &str) -> Result<()> {
    if value.len() > MAX_FIELD_LEN {
        return Err(SessionError::invalid(format!(
            "{field} is longer than {MAX_FIELD_LEN} bytes"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(SessionError::invalid(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

/// Everything a new session carries.
pub fn new_session(s: &NewSession) -> Result<()> {
    identifier("subject_id", &s.subject_id)?;
    if let Some(name) = &s.display_name {
        text("display_name", name)?;
    }
    if s.client_ids.len() > 64 {
        return Err(SessionError::invalid(
            "a session may name at most 64 client_ids",
        ));
    }
    for c in &s.client_ids {
        identifier("client_id", c)?;
    }
    if s.properties.len() > 64 {
        return Err(SessionError::invalid(
            "a session may carry at most 64 properties",
        ));
    }
    for (k, v) in &s.properties {
        identifier("property name", k)?;
        text("property value", v)?;
    }
    if let Some(ip) = &s.ip {
        text("ip", ip)?;
    }
    if let Some(ua) = &s.user_agent {
        text("user_agent", ua)?;
    }
    Ok(())
}

/// Realm settings make sense: positive timeouts, a quota of at least one.
pub fn realm_settings(s: &RealmSettings) -> Result<()> {
    const TEN_YEARS: u64 = 10 * 366 * 24 * 3600;
    if s.idle_timeout_secs == 0 || s.idle_timeout_secs > TEN_YEARS {
        return Err(SessionError::invalid(
            "idle_timeout_secs must be between 1 and 10 years",
        ));
    }
    if s.absolute_lifetime_secs == 0 || s.absolute_lifetime_secs > TEN_YEARS {
        return Err(SessionError::invalid(
            "absolute_lifetime_secs must be between 1 and 10 years",
        ));
    }
    if s.latest_access_update_interval_secs > TEN_YEARS {
        return Err(SessionError::invalid(
            "latest_access_update_interval_secs is too large",
        ));
    }
    if s.max_sessions_per_subject == Some(0) {
        return Err(SessionError::invalid(
            "max_sessions_per_subject must be at least 1 (or null for no limit)",
        ));
    }
    for p in &s.property_whitelist {
        identifier("property_whitelist entry", p)?;
    }
    if s.max_grant_lifetime_secs < 60 || s.max_grant_lifetime_secs > TEN_YEARS {
        return Err(SessionError::invalid(
            "max_grant_lifetime_secs must be between 60 seconds and 10 years",
        ));
    }
    Ok(())
}

/// The page size a query asks for, checked.
pub fn page_size(q: &SessionQuery) -> Result<u32> {
    match q.count {
        None => Ok(crate::model::DEFAULT_PAGE_SIZE),
        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        Some(n) => Err(SessionError::invalid(format!(
            "count must be between 1 and {MAX_PAGE_SIZE}, got {n}"
        ))),
    }
}

/// The filters of a query: each within length limits.
pub fn query_filters(q: &SessionQuery) -> Result<()> {
    for (field, value) in q.filters.values() {
        match field.kind {
            FilterKind::Text => text(field.name, &value)?,
            FilterKind::Address if !value.is_empty() => {
                AddressRange::parse(&value)?;
            }
            FilterKind::Choice(choices) if !value.is_empty() => {
                choice(field.name, &value, choices)?
            }
            FilterKind::Address | FilterKind::Time | FilterKind::Choice(_) => {}
        }
    }
    if q.prior && q.results_token.is_none() {
        return Err(SessionError::invalid("prior=true needs a results_token"));
    }
    Ok(())
}

/// A value that must be one of `choices` (their names in the API).
fn choice(field: &str, value: &str, choices: &[(&str, &str)]) -> Result<()> {
    if choices.iter().any(|(name, _)| *name == value) {
        return Ok(());
    }
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    Err(SessionError::invalid(format!(
        "{field} must be one of {}",
        names.join(", ")
    )))
}

/// The filter of a removal that names its sessions by filters rather than by `sids`, checked:
/// `None` for a removal by `sids`. A blank filter value is refused, never read as "any".
pub fn removal_filter(r: &EndSessions) -> Result<Option<SessionQuery>> {
    let filters = r.filters();
    for (field, value) in filters.values() {
        not_blank(field.name, &value)?;
    }
    for sid in &r.sids {
        not_blank("sids entry", sid)?;
        text("sids entry", sid)?;
    }
    let has_filter = filters.selects();
    if r.sids.is_empty() && !has_filter {
        return Err(SessionError::invalid(
            "name the sessions to end with sids or filters (subject_id, sid, ip, created_after, created_before, browser, os, device_type, country, asn, anomaly); to end every session of the realm use end-all",
        ));
    }
    if !r.sids.is_empty() && has_filter {
        return Err(SessionError::invalid(
            "give either sids or filters (subject_id, sid, ip, created_after, created_before, browser, os, device_type, country, asn, anomaly), not both",
        ));
    }
    if !has_filter {
        return Ok(None);
    }
    let q = SessionQuery::from(filters);
    query_filters(&q)?;
    Ok(Some(q))
}

/// Filters as the audit log names them (removals, exports): `subject_id=alice
/// ip=203.0.113.0/24 created_before=2026-03-01T14:02:00Z`, the given ones only; `all sessions`
/// when there is none.
pub fn describe_filter(filters: &SessionFilters) -> String {
    let parts: Vec<String> = filters
        .values()
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(field, value)| match field.kind {
            FilterKind::Address => match AddressRange::parse(&value) {
                Ok(range) => format!("{}={range}", field.name),
                Err(_) => format!("{}={value}", field.name),
            },
            FilterKind::Text | FilterKind::Time | FilterKind::Choice(_) => {
                format!("{}={value}", field.name)
            }
        })
        .collect();
    if parts.is_empty() {
        "all sessions".into()
    } else {
        parts.join(" ")
    }
}

/// A client registration: a short name, and an absolute http(s) back-channel URI.
pub fn client_registration(client_id: &str, r: &crate::model::ClientRegistration) -> Result<()> {
    identifier("client_id", client_id)?;
    if client_id.starts_with(crate::signal::STREAM_CLIENT_PREFIX) {
        return Err(SessionError::invalid(format!(
            "client_id must not start with '{}': Shared Signals streams use it",
            crate::signal::STREAM_CLIENT_PREFIX
        )));
    }
    if let Some(name) = &r.name {
        text("name", name)?;
    }
    if let Some(uri) = &r.backchannel_logout_uri {
        backchannel_logout_uri(uri)?;
    }
    Ok(())
}

/// A back-channel logout URI: an absolute http(s) URL with a host and no fragment (OpenID Connect
/// Back-Channel Logout 1.0, section 2.2).
fn backchannel_logout_uri(uri: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(SessionError::invalid(format!(
            "backchannel_logout_uri {why}"
        )))
    };
    if uri.len() > 2000 {
        return bad("must be at most 2000 bytes");
    }
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("must not contain spaces or control characters");
    }
    let parsed = match url::Url::parse(uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        Ok(_) => return bad("must be an http:// or https:// URL"),
        Err(e) => return bad(&format!("is not an absolute URL: {e}")),
    };
    if parsed.host_str().is_none_or(str::is_empty) {
        return bad("must name a host");
    }
    if parsed.fragment().is_some() {
        return bad("must not have a fragment (#...)");
    }
    Ok(())
}

/// A grant to record: tokens carry a token, consents do not; it must not already have expired.
pub fn new_grant(g: &crate::grant::NewGrant, now: chrono::DateTime<chrono::Utc>) -> Result<()> {
    identifier("subject_id", &g.subject_id)?;
    identifier("client_id", &g.client_id)?;
    if let Some(sid) = &g.sid {
        identifier("sid", sid)?;
    }
    match (&g.token, g.kind.is_token()) {
        (None, true) => {
            return Err(SessionError::invalid(format!(
                "a {} grant needs its token",
                g.kind.as_str()
            )))
        }
        (Some(_), false) => {
            return Err(SessionError::invalid(
                "a consent carries no token; leave token out",
            ))
        }
        (Some(t), true) if t.len() < 16 || t.len() > MAX_GRANT_TOKEN_LEN => {
            return Err(SessionError::invalid(format!(
                "token must be 16 to {MAX_GRANT_TOKEN_LEN} bytes long"
            )))
        }
        _ => {}
    }
    if g.scopes.len() > 64 {
        return Err(SessionError::invalid("a grant may name at most 64 scopes"));
    }
    for s in &g.scopes {
        identifier("scope", s)?;
        if s.contains(' ') {
            return Err(SessionError::invalid("a scope must not contain spaces"));
        }
    }
    if g.expires_at <= now {
        return Err(SessionError::invalid("expires_at must be in the future"));
    }
    Ok(())
}
