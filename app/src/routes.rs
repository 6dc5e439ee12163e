//! The dashboard's URLs: each page's typed query parameters, the links built from them, and the
//! one rule for where sign-in may send the browser back to.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use leptos::Params;
use leptos_router::params::{IntoParam, Params, ParamsError, ParamsMap};
use serde::{Deserialize, Serialize};
use sessions::{DeliveryStatus, EndSessions, FilterKind, SessionFilters, SessionQuery, SortKey};

/// The URL `path` with `query`'s fields (absent ones left out).
pub(crate) fn link(path: &str, query: &impl Serialize) -> String {
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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListParams {
    pub realm: Option<String>,
    /// Each filter's text by its name ([`SessionFilters::FIELDS`]); a time as a `datetime-local`
    /// input gives it (`2026-03-01T14:02`, UTC) or RFC 3339.
    pub filters: BTreeMap<&'static str, String>,
    pub count: Option<u32>,
    pub sort: Option<String>,
    pub results_token: Option<String>,
    pub prior: Option<bool>,
}

impl Params for ListParams {
    fn from_map(map: &ParamsMap) -> Result<Self, ParamsError> {
        Ok(ListParams {
            realm: map.get("realm"),
            filters: SessionFilters::FIELDS
                .iter()
                .filter_map(|f| Some((f.name, map.get(f.name)?)))
                .collect(),
            count: IntoParam::into_param(map.get_str("count"), "count")?,
            sort: map.get("sort"),
            results_token: map.get("results_token"),
            prior: IntoParam::into_param(map.get_str("prior"), "prior")?,
        })
    }
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
    /// The listing of `realm`'s sessions that `filters` match.
    pub fn filtered(realm: &str, filters: &SessionFilters) -> Self {
        ListParams {
            realm: Some(realm.to_owned()),
            filters: filters
                .values()
                .into_iter()
                .map(|(field, value)| (field.name, value))
                .collect(),
            ..Default::default()
        }
    }

    /// The parameters with typed text trimmed and empty values absent.
    pub fn normalized(&self) -> Self {
        ListParams {
            realm: typed(&self.realm),
            filters: self
                .filters
                .iter()
                .filter_map(|(name, text)| {
                    let text = text.trim();
                    (!text.is_empty()).then(|| (*name, text.to_owned()))
                })
                .collect(),
            count: self.count,
            sort: typed(&self.sort),
            results_token: typed(&self.results_token),
            prior: self.prior.filter(|p| *p),
        }
    }

    /// The filters' texts, in the order of their declaration.
    fn filter_pairs(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        SessionFilters::FIELDS
            .iter()
            .filter_map(|f| Some((f.name, self.filters.get(f.name)?.clone())))
    }

    /// The query string's parameters, in the order of the page's form.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs: Vec<(&'static str, String)> = Vec::new();
        pairs.extend(self.realm.clone().map(|r| ("realm", r)));
        pairs.extend(self.filter_pairs());
        pairs.extend(self.count.map(|c| ("count", c.to_string())));
        pairs.extend(self.sort.clone().map(|s| ("sort", s)));
        pairs.extend(self.results_token.clone().map(|t| ("results_token", t)));
        pairs.extend(self.prior.map(|p| ("prior", p.to_string())));
        pairs
    }

    /// The link to this listing.
    pub fn href(&self) -> String {
        link("/", &self.normalized().pairs())
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

    /// The filters these parameters ask for; an error says which time cannot be read.
    pub fn session_filters(&self) -> Result<SessionFilters, String> {
        let mut values = Vec::new();
        for field in SessionFilters::FIELDS {
            let Some(text) = self.filters.get(field.name) else {
                continue;
            };
            let value = match field.kind {
                FilterKind::Time => {
                    parse_time(text)?.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                }
                FilterKind::Text | FilterKind::Address | FilterKind::Choice(_) => text.clone(),
            };
            values.push((field.name, value));
        }
        SessionFilters::from_values(values.iter().map(|(n, v)| (*n, v.as_str())))
    }

    /// The store query these parameters ask for; an error says which time cannot be read.
    pub fn to_query(&self) -> Result<SessionQuery, String> {
        Ok(SessionQuery {
            filters: self.session_filters()?,
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
        !self.filters.is_empty()
    }

    /// The removal of every session these filters match, when a removal can say exactly them
    /// (a subject, a session id, an address range, creation times; not a name or client filter)
    /// and they include more than the exact ids (a subject's own removal is separate).
    pub fn range_ending(&self) -> Option<EndSessions> {
        let filters = self.session_filters().ok()?;
        filters
            .beyond_ids()
            .then(|| EndSessions::matching(&filters))
            .flatten()
    }

    /// The dashboard's download of every session these filters match, in `format` (`csv` or
    /// `jsonl`).
    pub fn export_href(&self, realm: &str, format: &str) -> String {
        let p = self.normalized();
        let mut pairs = vec![("format", format.to_owned())];
        match p.session_filters() {
            // As the API reads them: times in RFC 3339.
            Ok(filters) => pairs.extend(filters.values().into_iter().map(|(f, v)| (f.name, v))),
            // As typed, for the server to refuse rather than export more than asked.
            Err(_) => pairs.extend(p.filter_pairs()),
        }
        pairs.extend(p.sort.map(|s| ("sort", s)));
        link(&format!("/export/realms/{realm}/sessions"), &pairs)
    }
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

/// The ended-sessions page's parameters: the realm, the filters (empty ones are none) and where
/// the page starts.
#[derive(Params, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndedParams {
    pub realm: Option<String>,
    pub subject_id: Option<String>,
    pub sid: Option<String>,
    pub how: Option<String>,
    pub after: Option<String>,
}

impl EndedParams {
    /// The link to this listing, starting after `after` (the first page for `None`).
    pub fn href(&self, after: Option<String>) -> String {
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        link(
            "/ended",
            &EndedParams {
                realm: self.realm.clone(),
                subject_id: non_empty(&self.subject_id),
                sid: non_empty(&self.sid),
                how: non_empty(&self.how),
                after,
            },
        )
    }

    /// The dashboard's download of every ended session these filters match, in `format`
    /// (`csv` or `jsonl`).
    pub fn export_href(&self, realm: &str, format: &str) -> String {
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let mut pairs = vec![("format", format.to_owned())];
        for (name, v) in [
            ("subject_id", &self.subject_id),
            ("sid", &self.sid),
            ("how", &self.how),
        ] {
            pairs.extend(non_empty(v).map(|v| (name, v)));
        }
        link(&format!("/export/realms/{realm}/ended"), &pairs)
    }

    /// The history of one subject.
    pub fn of_subject(realm: &str, subject: &str) -> String {
        EndedParams {
            realm: Some(realm.to_owned()),
            subject_id: Some(subject.to_owned()),
            ..Default::default()
        }
        .href(None)
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
            filters: [("subject_id", "  alice ".into()), ("sid", "".into())].into(),
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
    fn ended_links_leave_out_empty_filters() {
        let p = EndedParams {
            realm: Some("demo".into()),
            subject_id: Some("alice smith".into()),
            sid: Some(String::new()),
            how: Some("revoked".into()),
            after: Some("5.00".into()),
        };
        assert_eq!(
            p.href(Some("9.ff".into())),
            "/ended?realm=demo&subject_id=alice+smith&how=revoked&after=9.ff"
        );
        assert_eq!(
            EndedParams::of_subject("demo", "bob"),
            "/ended?realm=demo&subject_id=bob"
        );
    }

    #[test]
    fn another_realm_starts_at_its_first_page() {
        let p = ListParams {
            realm: Some("a".into()),
            filters: [("subject_id", "s".into())].into(),
            results_token: Some("t".into()),
            prior: Some(true),
            ..Default::default()
        };
        assert_eq!(p.in_realm("b").href(), "/?realm=b&subject_id=s");
    }

    /// A listing with every parameter, and its URL.
    const FULL_LISTING: &str = "/?realm=demo&subject_id=alice&sid=s&display_name=smi\
                                &client_id=crm&ip=203.0.113.0%2F24\
                                &created_after=2026-03-01T14%3A02\
                                &created_before=2026-03-02T00%3A00%3A00Z\
                                &browser=firefox&os=windows&device_type=desktop&country=DE\
                                &asn=AS3320&anomaly=country_spread&window_hours=48&count=25\
                                &sort=created&results_token=t&prior=true";

    fn full_listing() -> ListParams {
        ListParams {
            realm: Some("demo".into()),
            filters: [
                ("subject_id", "alice".into()),
                ("sid", "s".into()),
                ("display_name", "smi".into()),
                ("client_id", "crm".into()),
                ("ip", "203.0.113.0/24".into()),
                ("created_after", "2026-03-01T14:02".into()),
                ("created_before", "2026-03-02T00:00:00Z".into()),
                ("browser", "firefox".into()),
                ("os", "windows".into()),
                ("device_type", "desktop".into()),
                ("country", "DE".into()),
                ("asn", "AS3320".into()),
                ("anomaly", "country_spread".into()),
                ("window_hours", "48".into()),
            ]
            .into(),
            count: Some(25),
            sort: Some("created".into()),
            results_token: Some("t".into()),
            prior: Some(true),
        }
    }

    /// (Reading a URL unescapes it with JavaScript outside the server's build.)
    #[cfg(feature = "ssr")]
    #[test]
    fn a_listing_url_reads_back_as_the_same_listing() {
        let mut map = ParamsMap::new();
        for (k, v) in
            serde_urlencoded::from_str::<Vec<(String, String)>>(&FULL_LISTING[2..]).unwrap()
        {
            map.insert(k, v);
        }
        assert_eq!(ListParams::from_map(&map).unwrap(), full_listing());
    }

    /// A listing's URL names every filter, in the form's order, and its query reads them.
    #[test]
    fn a_listing_url_carries_every_filter() {
        let p = full_listing();
        assert_eq!(p.filters.len(), SessionFilters::FIELDS.len());
        assert_eq!(p.href(), FULL_LISTING);
        let q = p.to_query().unwrap();
        assert_eq!(q.filters.subject_id.as_deref(), Some("alice"));
        assert_eq!(q.filters.ip.as_deref(), Some("203.0.113.0/24"));
        assert_eq!(
            q.filters.created_after,
            Some(parse_time("2026-03-01T14:02:00Z").unwrap())
        );
        assert_eq!((q.count, q.prior), (Some(25), true));
        assert!(ListParams {
            filters: [("created_before", "yesterday".into())].into(),
            ..Default::default()
        }
        .to_query()
        .unwrap_err()
        .contains("'yesterday' is not a time"));
    }

    #[test]
    fn exports_and_removals_carry_the_filters() {
        let p = ListParams {
            realm: Some("demo".into()),
            filters: [
                ("subject_id", " alice ".into()),
                ("ip", "203.0.113.0/24".into()),
                ("created_before", "2026-03-01T14:02".into()),
            ]
            .into(),
            sort: Some("expires".into()),
            count: Some(50),
            ..Default::default()
        };
        assert_eq!(
            p.export_href("demo", "csv"),
            "/export/realms/demo/sessions?format=csv&subject_id=alice&ip=203.0.113.0%2F24\
             &created_before=2026-03-01T14%3A02%3A00Z&sort=expires"
        );
        let removal = p
            .normalized()
            .range_ending()
            .expect("a removal can say these filters");
        assert_eq!(removal.ip.as_deref(), Some("203.0.113.0/24"));
        assert_eq!(removal.subject_id.as_deref(), Some("alice"));
        // Only what a removal can say exactly, and more than one subject's sessions.
        let mut by_client = p.clone();
        by_client.filters.insert("client_id", "crm".into());
        assert_eq!(by_client.range_ending(), None);
        let subject_only = ListParams {
            filters: [("subject_id", "alice".into())].into(),
            ..Default::default()
        };
        assert_eq!(subject_only.range_ending(), None);
        let client_only = ListParams::filtered(
            "demo",
            &SessionFilters {
                client_id: Some("crm".into()),
                ..Default::default()
            },
        );
        assert_eq!(client_only.href(), "/?realm=demo&client_id=crm");
    }
}
