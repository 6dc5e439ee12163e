//! The types shared by the store, the JSON API and the dashboard.
//!
//! Nothing here does I/O, so this module also compiles for the WASM dashboard.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Page size used when a query names none.
pub const DEFAULT_PAGE_SIZE: u32 = 25;
/// Largest page a query may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Longest subject id, client id, display name, property key or value, IP or user agent accepted.
pub const MAX_FIELD_LEN: usize = 255;
/// Longest realm name accepted.
pub const MAX_REALM_LEN: usize = 64;

/// One user's sign-in session as admins and relying parties see it. The secret token is never
/// part of it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// Public, unguessable session id.
    pub sid: String,
    pub realm: String,
    pub subject_id: String,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_access_at: DateTime<Utc>,
    /// When the session ends if it is not used again.
    pub idle_expires_at: DateTime<Utc>,
    /// When the session ends whatever happens (absolute lifetime).
    pub expires_at: DateTime<Utc>,
    pub client_ids: Vec<String>,
    pub properties: BTreeMap<String, String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The device the user agent names; absent without a user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<crate::device::Device>,
    /// The address of the latest refresh (the sign-in's `ip` until a refresh names another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ip: Option<String>,
    /// Where `ip` is, when the server has GeoIP databases (`--geoip-db`, `--asn-db`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::network::Network>,
    /// Where `last_ip` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_network: Option<crate::network::Network>,
}

impl Session {
    /// The moment the session stops being valid: the earlier of its idle and absolute expiry.
    pub fn effective_expiry(&self) -> DateTime<Utc> {
        self.idle_expires_at.min(self.expires_at)
    }
}

/// What an identity provider supplies to start a session.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// 1 to 255 bytes of UTF-8, no control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 255,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub subject_id: String,
    /// At most 255 bytes, no control characters.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub display_name: Option<String>,
    /// At most 64 client ids, each 1 to 255 bytes without control characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 64))]
    pub client_ids: Vec<String>,
    /// At most 64 properties; names 1 to 255 bytes, values at most 255 bytes, neither with
    /// control characters.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// At most 255 bytes, no control characters.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub ip: Option<String>,
    /// At most 255 bytes, no control characters.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub user_agent: Option<String>,
}

/// A freshly created session and its secret token, which is shown this once and stored only as a
/// hash.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedSession {
    #[serde(flatten)]
    pub session: Session,
    pub token: String,
}

/// What happens when a subject already holds its realm's quota of sessions.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum QuotaPolicy {
    /// Refuse the new session.
    #[default]
    Deny,
    /// End the subject's oldest session to make room.
    EvictOldest,
}

/// Per-realm behaviour.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RealmSettings {
    /// Seconds without use after which a session ends.
    pub idle_timeout_secs: u64,
    /// Seconds after creation after which a session ends whatever happens.
    pub absolute_lifetime_secs: u64,
    /// A refreshing validation writes the new last-access time at most this often.
    pub latest_access_update_interval_secs: u64,
    /// Most sessions one subject may hold at once; `None` for no limit.
    pub max_sessions_per_subject: Option<u32>,
    pub quota_policy: QuotaPolicy,
    /// Properties a session's holder may read and set with its token.
    pub property_whitelist: Vec<String>,
    /// Whether a session that expires sends back-channel logout notifications like a revoked one.
    #[serde(default)]
    pub backchannel_logout_on_expiry: bool,
    /// Longest lifetime a recorded grant (token or consent) may have; a longer `expires_at` is
    /// cut to this.
    #[serde(default = "default_max_grant_lifetime_secs")]
    pub max_grant_lifetime_secs: u64,
    /// Whether clients of this realm may register plain `http://` back-channel logout URIs (for
    /// development). Hosts on the server's back-channel allow-list may use http regardless.
    #[serde(default)]
    pub backchannel_allow_http: bool,
}

/// Default cap on grant lifetimes: 30 days.
pub const DEFAULT_MAX_GRANT_LIFETIME_SECS: u64 = 30 * 24 * 3600;

fn default_max_grant_lifetime_secs() -> u64 {
    DEFAULT_MAX_GRANT_LIFETIME_SECS
}

impl RealmSettings {
    /// The properties a session's holder sees through its token: those the whitelist names. One
    /// rule for every read with a token (validation and the properties call), on every backend.
    pub fn holder_properties(
        &self,
        properties: BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        properties
            .into_iter()
            .filter(|(k, _)| self.property_whitelist.contains(k))
            .collect()
    }

    /// `session` as its holder sees it through its token (see [`Self::holder_properties`]).
    pub fn as_seen_by_holder(&self, mut session: Session) -> Session {
        session.properties = self.holder_properties(std::mem::take(&mut session.properties));
        session
    }
}

impl Default for RealmSettings {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_lifetime_secs: 8 * 60 * 60,
            latest_access_update_interval_secs: 60,
            max_sessions_per_subject: None,
            quota_policy: QuotaPolicy::Deny,
            property_whitelist: Vec::new(),
            backchannel_logout_on_expiry: false,
            max_grant_lifetime_secs: DEFAULT_MAX_GRANT_LIFETIME_SECS,
            backchannel_allow_http: false,
        }
    }
}

/// A change to a realm's settings: absent fields keep their current value (or the default, when
/// the realm is being created).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RealmSettingsUpdate {
    /// Seconds without use after which a session ends: 1 to 10 years (316224000 s).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 316224000))]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds after creation after which a session ends: 1 to 10 years (316224000 s).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 316224000))]
    pub absolute_lifetime_secs: Option<u64>,
    /// At most 10 years (316224000 s); 0 writes every refreshing validation.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 316224000))]
    pub latest_access_update_interval_secs: Option<u64>,
    /// At least 1; `null` removes the quota.
    #[serde(default, with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64))]
    pub max_sessions_per_subject: Option<Option<u32>>,
    #[serde(default)]
    pub quota_policy: Option<QuotaPolicy>,
    /// Property names, each 1 to 255 bytes without control characters.
    #[serde(default)]
    pub property_whitelist: Option<Vec<String>>,
    #[serde(default)]
    pub backchannel_logout_on_expiry: Option<bool>,
    /// 60 seconds to 10 years (316224000 s).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 60, maximum = 316224000))]
    pub max_grant_lifetime_secs: Option<u64>,
    #[serde(default)]
    pub backchannel_allow_http: Option<bool>,
}

impl RealmSettingsUpdate {
    /// The settings that result from applying this update to `base`.
    pub fn apply_to(&self, base: &RealmSettings) -> RealmSettings {
        RealmSettings {
            idle_timeout_secs: self.idle_timeout_secs.unwrap_or(base.idle_timeout_secs),
            absolute_lifetime_secs: self
                .absolute_lifetime_secs
                .unwrap_or(base.absolute_lifetime_secs),
            latest_access_update_interval_secs: self
                .latest_access_update_interval_secs
                .unwrap_or(base.latest_access_update_interval_secs),
            max_sessions_per_subject: self
                .max_sessions_per_subject
                .unwrap_or(base.max_sessions_per_subject),
            quota_policy: self.quota_policy.unwrap_or(base.quota_policy),
            property_whitelist: self
                .property_whitelist
                .clone()
                .unwrap_or_else(|| base.property_whitelist.clone()),
            backchannel_logout_on_expiry: self
                .backchannel_logout_on_expiry
                .unwrap_or(base.backchannel_logout_on_expiry),
            max_grant_lifetime_secs: self
                .max_grant_lifetime_secs
                .unwrap_or(base.max_grant_lifetime_secs),
            backchannel_allow_http: self
                .backchannel_allow_http
                .unwrap_or(base.backchannel_allow_http),
        }
    }
}

/// Distinguishes an absent field from an explicit `null`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// A realm: a namespace of sessions with its own settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Realm {
    pub name: String,
    pub settings: RealmSettings,
    pub created_at: DateTime<Utc>,
    /// Exact number of sessions stored in the realm.
    pub session_count: u64,
}

/// The order of a session listing.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SortKey {
    /// Newest first.
    #[default]
    Created,
    /// Most recently used first.
    LastAccess,
    /// Soonest to expire first.
    Expires,
}

impl SortKey {
    pub const ALL: [SortKey; 3] = [SortKey::Created, SortKey::LastAccess, SortKey::Expires];

    /// The name used in URLs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Created => "created",
            SortKey::LastAccess => "last_access",
            SortKey::Expires => "expires",
        }
    }

    /// Parses the name used in URLs and JSON.
    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The filters of a session listing, AND-ed; an absent or empty value is no filter.
///
/// The one declaration of the filter set. The listing's query ([`SessionQuery`]) and the API's
/// export parameters flatten it; the API documents each field as a query parameter (its doc
/// comment is the description, its `param` attributes the constraints); the dashboard builds its
/// filter form and URL from [`SessionFilters::FIELDS`]; checks and audit descriptions go by
/// [`FilterKind`]. A new filter is a field here, its entry in [`SessionFilters::FIELDS`], and its
/// support in each store (`store::query::Filters` and the PostgreSQL listing).
///
/// Each field's doc comment is its description in the API's document, on one line (a line break
/// would show there too). Every field is text or an RFC 3339 time: flattened into a query string,
/// a field is read from its text, and serde cannot read a number or a bool from a flattened text
/// (a numeric filter takes its value as a string, or a `deserialize_with` that parses one).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct SessionFilters {
    /// Exact subject id (empty: no filter)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub subject_id: Option<String>,
    /// Exact session id, the 36-character form of a UUID (empty: no filter)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(
            pattern = r"^$|^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
        )
    )]
    pub sid: Option<String>,
    /// Each word prefixes a word of the name, any case; at most 8 different words (a word
    /// repeated counts once; more is a 400)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub display_name: Option<String>,
    /// Sessions this client joined (empty: no filter)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub client_id: Option<String>,
    /// Sessions whose client address is this IP address or in this CIDR range, e.g. `203.0.113.0/24` or `2001:db8::/32` (empty: no filter). IPv4 addresses also match as IPv4-mapped IPv6 (`::ffff:203.0.113.7`); bits past the prefix are ignored. Counted exactly by a range scan of the address index
    // The API's document adds the pattern (`address::ADDRESS_FILTER_PATTERN`, too long for an
    // attribute).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(max_length = 64))]
    pub ip: Option<String>,
    /// Sessions created at or after this time (RFC 3339)
    #[serde(default)]
    pub created_after: Option<DateTime<Utc>>,
    /// Sessions created before this time (RFC 3339); with `created_after`, a later time than it (else nothing matches)
    #[serde(default)]
    pub created_before: Option<DateTime<Utc>>,
    /// Sessions whose user agent names this browser family: chrome, edge, firefox, safari, opera, samsung_internet, internet_explorer or other (empty: no filter)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(
            pattern = r"^(|chrome|edge|firefox|safari|opera|samsung_internet|internet_explorer|other)$"
        )
    )]
    pub browser: Option<String>,
    /// Sessions whose user agent names this operating system: windows, macos, ios, ipados, android, linux, chromeos or other (empty: no filter)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(pattern = r"^(|windows|macos|ios|ipados|android|linux|chromeos|other)$")
    )]
    pub os: Option<String>,
    /// Sessions whose user agent names this kind of device: desktop, phone, tablet, bot or other (empty: no filter)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(pattern = r"^(|desktop|phone|tablet|bot|other)$")
    )]
    pub device_type: Option<String>,
    /// Sessions whose sign-in or latest address is in this country, two letters of ISO 3166-1 such as DE, any case (empty: no filter). Needs the server's GeoIP database (`--geoip-db`)
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(pattern = r"^([A-Za-z]{2})?$"))]
    pub country: Option<String>,
    /// Sessions whose sign-in or latest address is in this autonomous system: 3320 or AS3320 (empty: no filter). Needs the server's ASN database (`--asn-db`)
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(pattern = r"^(([Aa][Ss])?[0-9]{1,10})?$"))]
    pub asn: Option<String>,
    /// Sessions that look wrong: country_spread (the subject's sessions used within the window are in two or more countries), new_device (a browser and OS the subject used in none of its sessions of the 30 days before), country_changed (the latest address is in another country than the sign-in's) (empty: no filter)
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(pattern = r"^(|country_spread|new_device|country_changed)$")
    )]
    pub anomaly: Option<String>,
    /// With anomaly=country_spread: the window in hours, 1 to 720 (empty: 24); without it, no effect
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(pattern = r"^(|[1-9][0-9]?|[1-6][0-9]{2}|7[01][0-9]|720)$")
    )]
    pub window_hours: Option<String>,
}

/// One filter of [`SessionFilters`] as the dashboard shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterField {
    /// The field's name: its query parameter in the API and in the dashboard's URL, and its
    /// input's name in the dashboard's form.
    pub name: &'static str,
    /// The form's label.
    pub label: &'static str,
    /// An example value the empty input shows.
    pub placeholder: Option<&'static str>,
    pub kind: FilterKind,
}

/// What a filter's value is, which says how it is checked, described and typed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterKind {
    /// Text: at most 255 bytes, no control characters.
    Text,
    /// An IP address or CIDR range ([`crate::address::AddressRange`]).
    Address,
    /// A time: RFC 3339 in the API; the dashboard's form takes a UTC `datetime-local` value.
    Time,
    /// One of these values (each its name in the API and its label): a select in the dashboard.
    Choice(&'static [(&'static str, &'static str)]),
}

impl SessionFilters {
    /// Every field, in declaration order (a test holds the two together).
    pub const FIELDS: &'static [FilterField] = &[
        FilterField {
            name: "subject_id",
            label: "Subject",
            placeholder: None,
            kind: FilterKind::Text,
        },
        FilterField {
            name: "sid",
            label: "Session ID",
            placeholder: None,
            kind: FilterKind::Text,
        },
        FilterField {
            name: "display_name",
            label: "Display name",
            placeholder: None,
            kind: FilterKind::Text,
        },
        FilterField {
            name: "client_id",
            label: "Client",
            placeholder: None,
            kind: FilterKind::Text,
        },
        FilterField {
            name: "ip",
            label: "Client address",
            placeholder: Some("203.0.113.0/24"),
            kind: FilterKind::Address,
        },
        FilterField {
            name: "created_after",
            label: "Created after (UTC)",
            placeholder: None,
            kind: FilterKind::Time,
        },
        FilterField {
            name: "created_before",
            label: "Created before (UTC)",
            placeholder: None,
            kind: FilterKind::Time,
        },
        FilterField {
            name: "browser",
            label: "Browser",
            placeholder: None,
            kind: FilterKind::Choice(crate::device::Browser::CHOICES),
        },
        FilterField {
            name: "os",
            label: "Operating system",
            placeholder: None,
            kind: FilterKind::Choice(crate::device::Os::CHOICES),
        },
        FilterField {
            name: "device_type",
            label: "Device type",
            placeholder: None,
            kind: FilterKind::Choice(crate::device::DeviceKind::CHOICES),
        },
        FilterField {
            name: "country",
            label: "Country",
            placeholder: Some("DE"),
            kind: FilterKind::Text,
        },
        FilterField {
            name: "asn",
            label: "Network (ASN)",
            placeholder: Some("AS3320"),
            kind: FilterKind::Text,
        },
        FilterField {
            name: "anomaly",
            label: "Anomaly",
            placeholder: None,
            kind: FilterKind::Choice(crate::anomaly::Anomaly::CHOICES),
        },
        FilterField {
            name: "window_hours",
            label: "Spread window (hours)",
            placeholder: Some("24"),
            kind: FilterKind::Text,
        },
    ];

    /// The filters given (empty ones too), each with its description and its value as text
    /// (times in RFC 3339), in declaration order.
    pub fn values(&self) -> Vec<(&'static FilterField, String)> {
        let text = serde_urlencoded::to_string(self).expect("filters are text");
        serde_urlencoded::from_str::<Vec<(String, String)>>(&text)
            .expect("the text just written")
            .into_iter()
            .map(|(name, value)| {
                let field = Self::FIELDS
                    .iter()
                    .find(|f| f.name == name)
                    .expect("every filter is described in FIELDS");
                (field, value)
            })
            .collect()
    }

    /// The filters of `values` (field names and texts, times in RFC 3339); an error says which
    /// value cannot be read.
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> std::result::Result<Self, String> {
        let pairs: Vec<(&str, &str)> = values.into_iter().collect();
        let text = serde_urlencoded::to_string(&pairs).map_err(|e| e.to_string())?;
        serde_urlencoded::from_str(&text).map_err(|e| e.to_string())
    }

    /// Whether no filter is given.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether a filter that selects sessions is given (`window_hours` only qualifies the
    /// `anomaly` filter).
    pub fn selects(&self) -> bool {
        *self
            != SessionFilters {
                window_hours: self.window_hours.clone(),
                ..Default::default()
            }
    }

    /// Whether a filter other than the exact ids (`subject_id`, `sid`) is given: the sessions
    /// are then selected by a range or a property (an address range, creation times, a client,
    /// …), not only as one subject's or one session.
    pub fn beyond_ids(&self) -> bool {
        *self
            != SessionFilters {
                subject_id: self.subject_id.clone(),
                sid: self.sid.clone(),
                ..Default::default()
            }
    }
}

/// A request for one page of a realm's sessions. Filters are AND-ed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    #[serde(flatten)]
    pub filters: SessionFilters,
    /// Page size: default 25, at most 1000.
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub sort: SortKey,
    /// The token of the page last seen; absent for the first page.
    #[serde(default)]
    pub results_token: Option<String>,
    /// With a results token: the page before it instead of the page after it.
    #[serde(default)]
    pub prior: bool,
}

impl From<SessionFilters> for SessionQuery {
    /// The first page of the sessions `filters` match, in the default order and page size.
    fn from(filters: SessionFilters) -> Self {
        SessionQuery {
            filters,
            ..Default::default()
        }
    }
}

/// One page of a session listing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryResult {
    pub results: Vec<Session>,
    /// Pass back with `prior` false for the next page, true for the previous one.
    pub results_token: Option<String>,
    pub has_next: bool,
    pub has_prev: bool,
    /// Exact number of sessions matching the filters.
    pub total_count: u64,
    /// 1-based number of this page.
    pub current_page: u64,
    pub total_pages: u64,
}

/// Which sessions a removal ends, and what else it does. The four flags default to true.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EndSessions {
    /// Explicitly selected sessions (at most 1000, none blank); answered one by one. Give
    /// either `sids` or filters (`subject_id`, `sid`, `ip`, `created_after`, `created_before`,
    /// `browser`, `os`, `device_type`, `country`, `asn`, `anomaly`, `window_hours`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 1000))]
    pub sids: Vec<String>,
    /// Every session of this subject (AND-ed with `sid`): not blank, at most 255 bytes, no
    /// control characters.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 255,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub subject_id: Option<String>,
    /// The session with this id (the 36-character form of a UUID).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
        )
    )]
    pub sid: Option<String>,
    /// Every session whose client address is this IP address or lies in this CIDR range
    /// (AND-ed with the other filters).
    #[serde(default)]
    pub ip: Option<String>,
    /// Every session created at or after this time (AND-ed with the other filters).
    #[serde(default)]
    pub created_after: Option<DateTime<Utc>>,
    /// Every session created before this time (AND-ed with the other filters).
    #[serde(default)]
    pub created_before: Option<DateTime<Utc>>,
    /// Every session whose user agent names this browser family (see the listing's `browser`).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^(chrome|edge|firefox|safari|opera|samsung_internet|internet_explorer|other)$"
        )
    )]
    pub browser: Option<String>,
    /// Every session whose user agent names this operating system (see the listing's `os`).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^(windows|macos|ios|ipados|android|linux|chromeos|other)$")
    )]
    pub os: Option<String>,
    /// Every session whose user agent names this kind of device (see the listing's
    /// `device_type`).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^(desktop|phone|tablet|bot|other)$")
    )]
    pub device_type: Option<String>,
    /// Every session whose sign-in or latest address is in this country (see the listing's
    /// `country`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z]{2}$"))]
    pub country: Option<String>,
    /// Every session whose sign-in or latest address is in this autonomous system (see the
    /// listing's `asn`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^([Aa][Ss])?[0-9]{1,10}$"))]
    pub asn: Option<String>,
    /// Every session with this anomaly (see the listing's `anomaly`).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^(country_spread|new_device|country_changed)$")
    )]
    pub anomaly: Option<String>,
    /// With `anomaly` country_spread: the window in hours, 1 to 720 (default 24); it names no
    /// sessions by itself.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^([1-9][0-9]?|[1-6][0-9]{2}|7[01][0-9]|720)$")
    )]
    pub window_hours: Option<String>,
    /// Limits token and consent revocation and notifications to these clients (each not
    /// blank, 1 to 255 bytes, no control characters).
    #[serde(default)]
    pub client_ids: Option<Vec<String>>,
    #[serde(default = "yes")]
    pub remove_server_side_session: bool,
    #[serde(default = "yes")]
    pub revoke_tokens: bool,
    #[serde(default = "yes")]
    pub revoke_consents: bool,
    #[serde(default = "yes")]
    pub send_backchannel_logout: bool,
    /// Only report what would happen.
    #[serde(default)]
    pub dry_run: bool,
    /// Why, for the audit log: at most 1000 bytes.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub reason: Option<String>,
}

impl Default for EndSessions {
    fn default() -> Self {
        Self {
            sids: Vec::new(),
            subject_id: None,
            sid: None,
            ip: None,
            created_after: None,
            created_before: None,
            browser: None,
            os: None,
            device_type: None,
            country: None,
            asn: None,
            anomaly: None,
            window_hours: None,
            client_ids: None,
            remove_server_side_session: true,
            revoke_tokens: true,
            revoke_consents: true,
            send_backchannel_logout: true,
            dry_run: false,
            reason: None,
        }
    }
}

impl EndSessions {
    /// The filters this removal names its sessions by (none for a removal by `sids`).
    pub fn filters(&self) -> SessionFilters {
        SessionFilters {
            subject_id: self.subject_id.clone(),
            sid: self.sid.clone(),
            ip: self.ip.clone(),
            created_after: self.created_after,
            created_before: self.created_before,
            browser: self.browser.clone(),
            os: self.os.clone(),
            device_type: self.device_type.clone(),
            country: self.country.clone(),
            asn: self.asn.clone(),
            anomaly: self.anomaly.clone(),
            window_hours: self.window_hours.clone(),
            ..Default::default()
        }
    }

    /// The removal of every session `filters` match, when a removal can name exactly them: by
    /// subject, session id, address, creation times, device, network and anomaly, not by any other
    /// filter.
    pub fn matching(filters: &SessionFilters) -> Option<EndSessions> {
        let removal = EndSessions {
            subject_id: filters.subject_id.clone(),
            sid: filters.sid.clone(),
            ip: filters.ip.clone(),
            created_after: filters.created_after,
            created_before: filters.created_before,
            browser: filters.browser.clone(),
            os: filters.os.clone(),
            device_type: filters.device_type.clone(),
            country: filters.country.clone(),
            asn: filters.asn.clone(),
            anomaly: filters.anomaly.clone(),
            window_hours: filters.window_hours.clone(),
            ..Default::default()
        };
        (removal.filters() == *filters).then_some(removal)
    }
}

/// Ends every session of a realm: its own explicit operation, never an empty filter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EndAllSessions {
    #[serde(default = "yes")]
    pub remove_server_side_session: bool,
    #[serde(default = "yes")]
    pub revoke_tokens: bool,
    #[serde(default = "yes")]
    pub revoke_consents: bool,
    #[serde(default = "yes")]
    pub send_backchannel_logout: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Why, for the audit log: at most 1000 bytes.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub reason: Option<String>,
}

impl Default for EndAllSessions {
    fn default() -> Self {
        Self {
            remove_server_side_session: true,
            revoke_tokens: true,
            revoke_consents: true,
            send_backchannel_logout: true,
            dry_run: false,
            reason: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// What ending sessions did (or, for a dry run, would do). The JSON names are those of API v1
/// (`removed`, `sessions_removed`), kept so that clients written against it go on working.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndOutcome {
    /// Sessions ended (or that would be).
    #[serde(rename = "removed")]
    pub ended: Vec<String>,
    /// Selected sids that name no session of the realm.
    pub not_found: Vec<String>,
    /// Session records deleted (fewer than `removed` when `remove_server_side_session` was off).
    #[serde(rename = "sessions_removed")]
    pub records_deleted: u64,
    pub tokens_revoked: u64,
    pub consents_revoked: u64,
    /// Back-channel logout notifications queued (or, for a dry run, that would be queued).
    pub clients_notified: u64,
    /// Distinct clients the ended sessions had joined, within the client scope.
    pub clients_affected: u64,
    /// Shared Signals `session-revoked` events queued, one per ended session and stream that
    /// covers the realm (or, for a dry run, that would be queued).
    #[serde(default)]
    pub signals_queued: u64,
    pub dry_run: bool,
}

/// One administrative action, as recorded in the audit log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub realm: Option<String>,
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
    pub outcome: String,
}

/// An application (relying party) registered in a realm.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Client {
    pub client_id: String,
    pub name: Option<String>,
    /// Where OpenID Connect back-channel logout notifications are POSTed.
    pub backchannel_logout_uri: Option<String>,
    /// Whether the client needs `sid` in its logout tokens.
    pub backchannel_logout_session_required: bool,
    /// Exact number of sessions of the realm this client has joined.
    pub session_count: u64,
}

/// A client's registration, as sent to create or replace it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientRegistration {
    /// At most 255 bytes, no control characters.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub name: Option<String>,
    /// An absolute `https://` (or, where the realm allows it, `http://`) URL with a host and no
    /// fragment, at most 2000 bytes, without spaces or control characters. Its host must be
    /// public (not loopback, private or link-local) unless it is on the server's allow-list.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 2000,
            pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000#/?@:\[\]\\%<>^|]+(:[0-9]{1,5})?([/?][^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000#]*)?$"
        )
    )]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_filter() -> SessionFilters {
        SessionFilters {
            subject_id: Some("alice".into()),
            sid: Some("0b7c3f1e-0000-4000-8000-000000000000".into()),
            display_name: Some("smi".into()),
            client_id: Some("crm".into()),
            ip: Some("203.0.113.0/24".into()),
            created_after: Some("2026-03-01T14:02:00Z".parse().unwrap()),
            created_before: Some("2026-03-01T14:04:00.5Z".parse().unwrap()),
            browser: Some("firefox".into()),
            os: Some("windows".into()),
            device_type: Some("desktop".into()),
            country: Some("DE".into()),
            asn: Some("AS3320".into()),
            anomaly: Some("country_spread".into()),
            window_hours: Some("48".into()),
        }
    }

    /// A field without its description would be missing from the dashboard's form and URL.
    #[test]
    fn every_filter_is_described_in_declaration_order() {
        let names: Vec<&str> = every_filter()
            .values()
            .into_iter()
            .map(|(f, _)| f.name)
            .collect();
        let described: Vec<&str> = SessionFilters::FIELDS.iter().map(|f| f.name).collect();
        assert_eq!(names, described);
    }

    #[test]
    fn filters_read_back_from_their_values() {
        let filters = every_filter();
        let values = filters.values();
        assert_eq!(values[6].1, "2026-03-01T14:04:00.500Z");
        let back =
            SessionFilters::from_values(values.iter().map(|(f, v)| (f.name, v.as_str()))).unwrap();
        assert_eq!(back, filters);
        assert_eq!(
            SessionFilters::from_values([("created_after", "yesterday")]).unwrap_err(),
            "input contains invalid characters"
        );
        assert!(SessionFilters::default().values().is_empty());
    }

    /// The listing's query string, with the filters flattened into it, reads as before: every
    /// parameter, numbers and flags included, and the same refusals.
    #[test]
    fn a_query_string_reads_into_a_query() {
        let q: SessionQuery = serde_urlencoded::from_str(
            "subject_id=alice&ip=203.0.113.0%2F24&created_after=2026-03-01T14%3A02%3A00Z\
             &count=5&sort=last_access&results_token=t&prior=true",
        )
        .unwrap();
        assert_eq!(
            q,
            SessionQuery {
                filters: SessionFilters {
                    subject_id: Some("alice".into()),
                    ip: Some("203.0.113.0/24".into()),
                    created_after: every_filter().created_after,
                    ..Default::default()
                },
                count: Some(5),
                sort: SortKey::LastAccess,
                results_token: Some("t".into()),
                prior: true,
            }
        );
        let empty: SessionQuery = serde_urlencoded::from_str("subject_id=").unwrap();
        assert_eq!(empty.filters.subject_id.as_deref(), Some(""));
        let refused = |query: &str| {
            serde_urlencoded::from_str::<SessionQuery>(query)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused("created_before=yesterday"),
            "input contains invalid characters"
        );
        assert_eq!(refused("count=lots"), "invalid digit found in string");
        assert_eq!(refused("colour=red"), "unknown field `colour`");
        assert_eq!(
            refused("subject_id=a&subject_id=b"),
            "duplicate field `subject_id`"
        );
    }

    #[test]
    fn a_removal_says_only_the_filters_it_takes() {
        let ranged = SessionFilters {
            subject_id: Some("alice".into()),
            ip: Some("203.0.113.0/24".into()),
            ..Default::default()
        };
        let removal = EndSessions::matching(&ranged).unwrap();
        assert_eq!(removal.filters(), ranged);
        assert!(removal.remove_server_side_session && removal.sids.is_empty());
        assert_eq!(EndSessions::matching(&every_filter()), None);
        assert!(ranged.beyond_ids());
        assert!(!SessionFilters {
            subject_id: Some("alice".into()),
            sid: Some("s".into()),
            ..Default::default()
        }
        .beyond_ids());
    }
}
