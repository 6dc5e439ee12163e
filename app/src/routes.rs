//! The dashboard's URLs: each page's typed query parameters, the links built from them, and the
//! one rule for where sign-in may send the browser back to.

use chrono::{DateTime, NaiveDateTime, Utc};
use leptos::Params;
use leptos_router::params::Params;
use serde::{Deserialize, Serialize};
use sessions::{DeliveryStatus, RemoveSessions, SessionQuery, SortKey};

/// The URL `path` with `query`'s fields (absent ones left out).
fn link(path: &str, query: &impl Serialize) -> String {
    match serde_urlencoded::to_string(query) {
        Ok(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    }
}

/// Text as a person typed it: trimmed; empty counts as absent. (The service itself never trims:
/// ids are exact.)
fn typed(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The sessions page's parameters: realm, filters, sort, page size and position.
#[derive(Params, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListParams {
    pub realm: Option<String>,
    pub subject_id: Option<String>,
    pub sid: Option<String>,
    pub display_name: Option<String>,
    pub client_id: Option<String>,
    /// An IP address or CIDR range.
    pub ip: Option<String>,
    /// A UTC time as a `datetime-local` input gives it (`2026-03-01T14:02`) or RFC 3339.
    pub created_after: Option<String>,
    pub created_before: Option<String>,
    pub count: Option<u32>,
    pub sort: Option<String>,
    pub results_token: Option<String>,
    pub prior: Option<bool>,
}

/// A time as the filters take it: RFC 3339, or a `datetime-local` value (minutes or seconds),
/// read as UTC.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("'{text}' is not a time (expected 2026-03-01T14:02, in UTC)"))
}

impl ListParams {
    /// The parameters with typed text trimmed and empty values absent.
    pub fn normalized(&self) -> Self {
        ListParams {
            realm: typed(&self.realm),
            subject_id: typed(&self.subject_id),
            sid: typed(&self.sid),
            display_name: typed(&self.display_name),
            client_id: typed(&self.client_id),
            ip: typed(&self.ip),
            created_after: typed(&self.created_after),
            created_before: typed(&self.created_before),
            count: self.count,
            sort: typed(&self.sort),
            results_token: typed(&self.results_token),
            prior: self.prior.filter(|p| *p),
        }
    }

    /// The link to this listing.
    pub fn href(&self) -> String {
        link("/", &self.normalized())
    }

    /// The same listing in another realm, from its first page.
    pub fn in_realm(&self, realm: &str) -> Self {
        ListParams {
            realm: Some(realm.to_owned()),
            results_token: None,
            prior: None,
            ..self.clone()
        }
    }

    /// The store query these parameters ask for; an error says which time cannot be read.
    pub fn to_query(&self) -> Result<SessionQuery, String> {
        let time = |t: &Option<String>| t.as_deref().map(parse_time).transpose();
        Ok(SessionQuery {
            subject_id: self.subject_id.clone(),
            sid: self.sid.clone(),
            display_name: self.display_name.clone(),
            client_id: self.client_id.clone(),
            ip: self.ip.clone(),
            created_after: time(&self.created_after)?,
            created_before: time(&self.created_before)?,
            count: self.count,
            sort: self
                .sort
                .as_deref()
                .and_then(SortKey::parse)
                .unwrap_or_default(),
            results_token: self.results_token.clone(),
            prior: self.prior.unwrap_or(false),
        })
    }

    /// Whether any filter narrows the listing.
    pub fn has_filter(&self) -> bool {
        self.subject_id.is_some()
            || self.sid.is_some()
            || self.display_name.is_some()
            || self.client_id.is_some()
            || self.ip.is_some()
            || self.created_after.is_some()
            || self.created_before.is_some()
    }

    /// The removal of every session these filters match, when a removal can say exactly them
    /// (a subject, a session id, an address range, creation times; not a name or client filter)
    /// and they include an address or a creation time (a subject's own removal is separate).
    pub fn range_removal(&self) -> Option<RemoveSessions> {
        let q = self.to_query().ok()?;
        let ranged = q.ip.is_some() || q.created_after.is_some() || q.created_before.is_some();
        (ranged && q.display_name.is_none() && q.client_id.is_none()).then(|| RemoveSessions {
            subject_id: q.subject_id,
            sid: q.sid,
            ip: q.ip,
            created_after: q.created_after,
            created_before: q.created_before,
            ..Default::default()
        })
    }

    /// The dashboard's download of every session these filters match, in `format` (`csv` or
    /// `jsonl`).
    pub fn export_href(&self, realm: &str, format: &str) -> String {
        let p = self.normalized();
        let q = self.to_query().unwrap_or_default();
        let time = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        };
        link(
            &format!("/export/realms/{realm}/sessions"),
            &ExportLink {
                format,
                subject_id: p.subject_id,
                sid: p.sid,
                display_name: p.display_name,
                client_id: p.client_id,
                ip: p.ip,
                created_after: time(q.created_after),
                created_before: time(q.created_before),
                sort: p.sort,
            },
        )
    }
}

/// The query of an export download (what the server's export route reads).
#[derive(Serialize)]
struct ExportLink<'a> {
    format: &'a str,
    subject_id: Option<String>,
    sid: Option<String>,
    display_name: Option<String>,
    client_id: Option<String>,
    ip: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    sort: Option<String>,
}

/// The link to a subject's page: every session, grant and delivery of theirs.
pub fn user_href(realm: &str, subject: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!("/realms/{}/users/{}", enc(realm), enc(subject))
}

/// The clients page's parameters.
#[derive(Params, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientsParams {
    pub realm: Option<String>,
}

impl ClientsParams {
    /// The link to the clients of `realm`.
    pub fn href(realm: &str) -> String {
        link(
            "/clients",
            &ClientsParams {
                realm: Some(realm.to_owned()),
            },
        )
    }
}

/// The deliveries page's parameters.
#[derive(Params, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveriesParams {
    pub realm: Option<String>,
    pub status: Option<String>,
    pub before: Option<u64>,
}

impl DeliveriesParams {
    /// The link to a deliveries listing.
    pub fn href(realm: &str, status: Option<DeliveryStatus>, before: Option<u64>) -> String {
        link(
            "/deliveries",
            &DeliveriesParams {
                realm: Some(realm.to_owned()),
                status: status.map(|s| s.as_str().to_owned()),
                before,
            },
        )
    }
}

/// The audit page's parameters.
#[derive(Params, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditParams {
    /// Entries older than this entry id.
    pub before: Option<u64>,
}

impl AuditParams {
    /// The link to the entries older than `before`.
    pub fn href(before: u64) -> String {
        link(
            "/audit",
            &AuditParams {
                before: Some(before),
            },
        )
    }
}

/// The sign-in page's parameters.
#[derive(Params, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoginParams {
    /// Where to go once signed in: a path of this site (see [`return_path`]).
    pub next: Option<String>,
}

impl LoginParams {
    /// The sign-in page, coming back to the page at `pathname` with the query `search` (with or
    /// without its `?`) afterwards.
    pub fn href_back_to(pathname: &str, search: &str) -> String {
        let search = search.trim_start_matches('?');
        if search.is_empty() {
            Self::href(pathname)
        } else {
            Self::href(&format!("{pathname}?{search}"))
        }
    }

    /// The sign-in page, coming back to `next` afterwards.
    pub fn href(next: &str) -> String {
        link(
            "/login",
            &LoginParams {
                next: return_path(Some(next)).map(str::to_owned),
            },
        )
    }
}

/// `next` if it is a path of this site (`/…`, not `//host…` nor `/\host…`, which browsers take
/// for another site), else `None`: sign-in never sends the browser elsewhere.
pub fn return_path(next: Option<&str>) -> Option<&str> {
    let next = next?;
    let same_site = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    same_site.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_return_targets() {
        for ok in [
            "/",
            "/?realm=demo&subject_id=a",
            "/audit?before=3",
            "/sessions/demo/x",
        ] {
            assert_eq!(return_path(Some(ok)), Some(ok));
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/\t/evil.example",
            "",
        ] {
            assert_eq!(return_path(Some(bad)), None, "{bad}");
        }
        assert_eq!(return_path(None), None);
    }

    #[test]
    fn links_carry_only_what_is_set() {
        assert_eq!(ListParams::default().href(), "/");
        let p = ListParams {
            realm: Some("demo".into()),
            subject_id: Some("  alice ".into()),
            sid: Some("".into()),
            prior: Some(false),
            ..Default::default()
        };
        assert_eq!(p.href(), "/?realm=demo&subject_id=alice");
        assert_eq!(
            LoginParams::href("/?realm=a b&x=1"),
            "/login?next=%2F%3Frealm%3Da+b%26x%3D1"
        );
        assert_eq!(LoginParams::href("//evil.example"), "/login");
        assert_eq!(
            LoginParams::href_back_to("/audit", "before=3"),
            LoginParams::href_back_to("/audit", "?before=3")
        );
        assert_eq!(LoginParams::href_back_to("/", ""), "/login?next=%2F");
        assert_eq!(
            DeliveriesParams::href("demo", Some(DeliveryStatus::Failed), Some(9)),
            "/deliveries?realm=demo&status=failed&before=9"
        );
    }

    #[test]
    fn another_realm_starts_at_its_first_page() {
        let p = ListParams {
            realm: Some("a".into()),
            subject_id: Some("s".into()),
            results_token: Some("t".into()),
            prior: Some(true),
            ..Default::default()
        };
        assert_eq!(p.in_realm("b").href(), "/?realm=b&subject_id=s");
    }
}
