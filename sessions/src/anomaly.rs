//! Anomaly filters: sessions that look wrong for their subject. Each is a listing filter
//! (`anomaly=`), so it also selects an export and a removal, and the overview counts each.

/// What looks wrong about a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Anomaly {
    /// The subject's sessions used within the window (default 24 h) are, by their sign-in and
    /// latest addresses, in two or more countries: each of those sessions.
    CountrySpread,
    /// A device (browser and OS) the subject used in none of its other sessions, live or ended,
    /// that started in the 30 days before this one (when there were any).
    NewDevice,
    /// The latest address is in another country than the sign-in's.
    CountryChanged,
}

/// How many live sessions of a realm have an anomaly (the overview's figures).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnomalyCount {
    /// The anomaly's name: its `anomaly` filter value.
    pub anomaly: String,
    /// How the dashboard names it.
    pub label: String,
    /// Sessions with it now (the spread over the default 24-hour window).
    pub session_count: u64,
}

/// The spread window when a query names none, in hours.
pub const DEFAULT_WINDOW_HOURS: u32 = 24;
/// The longest spread window, in hours (30 days).
pub const MAX_WINDOW_HOURS: u32 = 720;
/// How far back a new device is looked for among the subject's other sessions.
pub const NEW_DEVICE_LOOKBACK_MS: i64 = 30 * 24 * 3600 * 1000;

impl Anomaly {
    pub const ALL: [Anomaly; 3] = [
        Anomaly::CountrySpread,
        Anomaly::NewDevice,
        Anomaly::CountryChanged,
    ];
    /// Each anomaly's name in the API and its label in the dashboard.
    pub const CHOICES: &'static [(&'static str, &'static str)] = &[
        ("country_spread", "Countries spread (window)"),
        ("new_device", "New device (30 days)"),
        ("country_changed", "Country changed since sign-in"),
    ];

    pub fn as_str(self) -> &'static str {
        Self::CHOICES[self as usize].0
    }

    pub fn label(self) -> &'static str {
        Self::CHOICES[self as usize].1
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// A spread window's value in hours: 1 to [`MAX_WINDOW_HOURS`].
pub fn window_hours(text: &str) -> Option<u32> {
    text.parse()
        .ok()
        .filter(|h| (1..=MAX_WINDOW_HOURS).contains(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Anomaly::ALL {
            assert_eq!(Anomaly::parse(a.as_str()), Some(a));
        }
        assert_eq!(Anomaly::parse("other"), None);
        assert_eq!(window_hours("24"), Some(24));
        assert_eq!(window_hours("0"), None);
        assert_eq!(window_hours("721"), None);
        assert_eq!(window_hours("-1"), None);
    }
}
