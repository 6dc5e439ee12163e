//! Where a session's addresses are: country, city and autonomous system, as the operator's
//! MaxMind-format databases say (read by the service, `service::network`), kept with the session
//! when it is created and when a refresh comes from a new address.
//!
//! The model compiles for WASM; stores keep what a lookup found, so a session shows where it was
//! when it was seen, whatever later editions of the databases say.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SessionError};

/// Where an address is. Each part is absent when the databases do not say (or are not given).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Network {
    /// ISO 3166-1 alpha-2 country code, upper case (`DE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The city's English name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Autonomous system number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// The organisation the autonomous system is registered to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn_org: Option<String>,
}

impl Network {
    /// Whether it says nothing.
    pub fn is_empty(&self) -> bool {
        *self == Network::default()
    }

    /// The country as a flag (two regional indicator symbols), if it is a country code.
    pub fn flag(&self) -> Option<String> {
        let code = self.country.as_deref()?;
        country_code(code)?;
        Some(
            code.chars()
                .map(|c| char::from_u32(0x1F1E6 + (c as u32 - 'A' as u32)).unwrap_or(c))
                .collect(),
        )
    }

    /// "Berlin, DE".
    pub fn place(&self) -> Option<String> {
        match (&self.city, &self.country) {
            (Some(city), Some(country)) => Some(format!("{city}, {country}")),
            (None, Some(country)) => Some(country.clone()),
            (Some(city), None) => Some(city.clone()),
            (None, None) => None,
        }
    }

    /// "AS3320 Deutsche Telekom AG".
    pub fn operator(&self) -> Option<String> {
        match (self.asn, &self.asn_org) {
            (Some(n), Some(org)) => Some(format!("AS{n} {org}")),
            (Some(n), None) => Some(format!("AS{n}")),
            (None, Some(org)) => Some(org.clone()),
            (None, None) => None,
        }
    }
}

/// The address a refresh came from when it was not the session's last one, with its network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastAddress {
    pub ip: String,
    pub network: Option<Network>,
}

/// A country filter's value as stored: two ASCII letters, upper-cased (`de` → `DE`).
pub fn country_code(text: &str) -> Option<String> {
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| text.to_ascii_uppercase())
}

/// An autonomous system filter's value: `3320` or `AS3320` (any case), at most 10 digits (a
/// number past 32 bits names no autonomous system, so it matches none).
pub fn asn(text: &str) -> Option<u64> {
    let digits = match text.get(..2) {
        Some(p) if p.eq_ignore_ascii_case("as") => &text[2..],
        _ => text,
    };
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Checks a country filter's value.
pub fn parse_country(field: &str, text: &str) -> Result<String> {
    country_code(text).ok_or_else(|| {
        SessionError::invalid(format!(
            "{field} '{text}' is not a country code (expected two letters of ISO 3166-1, such as DE)"
        ))
    })
}

/// Checks an autonomous system filter's value.
pub fn parse_asn(field: &str, text: &str) -> Result<u64> {
    asn(text).ok_or_else(|| {
        SessionError::invalid(format!(
            "{field} '{text}' is not an autonomous system number (expected digits, such as 3320 or AS3320)"
        ))
    })
}

/// Which of a session's networks a filter tests: the sign-in's, and the last address's.
pub fn networks<'a>(
    first: Option<&'a Network>,
    last: Option<&'a LastAddress>,
) -> impl Iterator<Item = &'a Network> {
    first
        .into_iter()
        .chain(last.and_then(|l| l.network.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_read_as_written_by_people() {
        assert_eq!(country_code("de").as_deref(), Some("DE"));
        assert_eq!(country_code("DEU"), None);
        assert_eq!(country_code("d1"), None);
        assert_eq!(country_code("ää"), None);
        assert_eq!(asn("AS3320"), Some(3320));
        assert_eq!(asn("as3320"), Some(3320));
        assert_eq!(asn("3320"), Some(3320));
        assert_eq!(asn("AS"), None);
        assert_eq!(asn("+3320"), None);
        assert_eq!(asn("6483000109"), Some(6_483_000_109), "matches none");
        assert_eq!(asn("99999999999"), None);
        assert!(parse_country("country", "xyz")
            .unwrap_err()
            .to_string()
            .contains("country 'xyz'"));
    }

    #[test]
    fn labels_show_what_is_known() {
        let n = Network {
            country: Some("DE".into()),
            city: Some("Berlin".into()),
            asn: Some(3320),
            asn_org: Some("Deutsche Telekom AG".into()),
        };
        assert_eq!(n.flag().as_deref(), Some("🇩🇪"));
        assert_eq!(n.place().as_deref(), Some("Berlin, DE"));
        assert_eq!(n.operator().as_deref(), Some("AS3320 Deutsche Telekom AG"));
        assert_eq!(Network::default().place(), None);
        assert!(Network::default().is_empty());
    }
}
