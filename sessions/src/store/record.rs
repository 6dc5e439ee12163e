//! A session as the store holds it ([`StoredSession`], whose `encode` and `decode` are the v1
//! layout's record encoding, read by the upgrade; the v2 layout's compact record is
//! `v2::record`), and what both layouts share about sessions: display-name words, the text form
//! of a session id, times.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::keys::Sid;
use crate::error::{Result, SessionError};
use crate::model::{Session, SortKey};
use crate::network::{LastAddress, Network};

/// Display-name words are indexed by their prefixes up to this many characters; longer search
/// words are looked up by their first characters and checked against the stored name.
pub const MAX_PREFIX_CHARS: usize = 12;

/// Version byte in front of every stored session, so the layout can evolve.
const RECORD_VERSION: u8 = 1;

/// A session as stored: times in milliseconds since the epoch, the token only as its SHA-256.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StoredSession {
    pub sid: Sid,
    pub subject_id: String,
    pub display_name: Option<String>,
    pub created_ms: i64,
    pub last_access_ms: i64,
    pub idle_expires_ms: i64,
    pub expires_ms: i64,
    pub client_ids: Vec<String>,
    pub properties: BTreeMap<String, String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub token_hash: [u8; 32],
    /// Where `ip` is (not in the first layout's records).
    #[serde(skip)]
    pub network: Option<Network>,
    /// The address of the latest refresh, once it differs from `ip` (not in the first layout's
    /// records).
    #[serde(skip)]
    pub last: Option<LastAddress>,
}

impl StoredSession {
    /// Serialized record value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        out.extend(postcard::to_allocvec(self).expect("a session always serializes"));
        out
    }

    /// Parses a record value.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((&RECORD_VERSION, rest)) => postcard::from_bytes(rest)
                .map_err(|e| SessionError::Storage(format!("corrupt session record: {e}"))),
            _ => Err(SessionError::Storage(
                "unknown session record version".into(),
            )),
        }
    }

    /// When the session stops being valid.
    pub fn effective_expiry_ms(&self) -> i64 {
        self.idle_expires_ms.min(self.expires_ms)
    }

    /// True while neither expiry has passed.
    pub fn is_valid_at(&self, now_ms: i64) -> bool {
        now_ms < self.effective_expiry_ms()
    }

    /// The time a listing in `sort` order is keyed on.
    pub fn sort_time(&self, sort: SortKey) -> i64 {
        match sort {
            SortKey::Created => self.created_ms,
            SortKey::LastAccess => self.last_access_ms,
            SortKey::Expires => self.effective_expiry_ms(),
        }
    }

    /// The public view of the session.
    pub fn to_session(&self, realm: &str) -> Session {
        Session {
            sid: sid_to_string(&self.sid),
            realm: realm.to_owned(),
            subject_id: self.subject_id.clone(),
            display_name: self.display_name.clone(),
            created_at: from_ms(self.created_ms),
            last_access_at: from_ms(self.last_access_ms),
            idle_expires_at: from_ms(self.idle_expires_ms),
            expires_at: from_ms(self.expires_ms),
            client_ids: self.client_ids.clone(),
            properties: self.properties.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            device: crate::device::Device::of(self.user_agent.as_deref()),
            last_ip: self
                .last
                .as_ref()
                .map(|l| l.ip.clone())
                .or_else(|| self.ip.clone()),
            network: self.network.clone(),
            last_network: match &self.last {
                Some(l) => l.network.clone(),
                None => self.network.clone(),
            },
        }
    }

    /// Whether `last` is news: an address other than the session's latest.
    pub fn moved_to(&self, last: &LastAddress) -> bool {
        let latest = self
            .last
            .as_ref()
            .map(|l| l.ip.as_str())
            .or(self.ip.as_deref());
        latest != Some(last.ip.as_str())
    }

    /// The networks a country or autonomous system filter tests: the sign-in's and the last
    /// address's.
    pub fn networks(&self) -> impl Iterator<Item = &Network> {
        crate::network::networks(self.network.as_ref(), self.last.as_ref())
    }
}

/// Case-folded words of a display name or search string.
pub fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The canonical text form of a session id.
pub fn sid_to_string(sid: &Sid) -> String {
    uuid::Uuid::from_bytes(*sid).hyphenated().to_string()
}

/// Length of a session id's canonical text form: 32 hex digits in groups of 8-4-4-4-12.
const SID_TEXT_LEN: usize = 36;

/// Parses a session id in its canonical hyphenated form (`0b7c3f1e-…`, 36 characters), hex digits
/// in either case; `None` for anything else, braced, `urn:uuid:` and 32-digit forms and padding
/// included. Session ids are compared as the parsed bytes, so `ABC…` and `abc…` name the same
/// session.
pub fn parse_sid(s: &str) -> Option<Sid> {
    if s.len() != SID_TEXT_LEN {
        return None;
    }
    uuid::Uuid::try_parse(s).ok().map(|u| *u.as_bytes())
}

/// Milliseconds since the epoch as a UTC time.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredSession {
        StoredSession {
            sid: [1; 16],
            subject_id: "alice".into(),
            display_name: Some("Alice  Smith-Jones".into()),
            created_ms: 10,
            last_access_ms: 20,
            idle_expires_ms: 30,
            expires_ms: 40,
            client_ids: vec!["portal".into(), "mail".into()],
            properties: BTreeMap::from([("k".into(), "v".into())]),
            ip: Some("127.0.0.1".into()),
            user_agent: None,
            token_hash: [9; 32],
            network: None,
            last: None,
        }
    }

    #[test]
    fn record_round_trips() {
        let s = sample();
        assert_eq!(StoredSession::decode(&s.encode()).unwrap(), s);
        assert!(StoredSession::decode(&[0, 1, 2]).is_err());
    }

    #[test]
    fn only_the_canonical_hyphenated_form_is_a_session_id() {
        let sid = [0xab; 16];
        let canonical = sid_to_string(&sid);
        assert_eq!(parse_sid(&canonical), Some(sid));
        assert_eq!(parse_sid(&canonical.to_uppercase()), Some(sid), "any case");
        let simple = canonical.replace('-', "");
        for other in [
            format!("{{{canonical}}}"),
            format!("urn:uuid:{canonical}"),
            simple.clone(),
            format!(" {canonical}"),
            format!("{canonical} "),
            format!("{canonical}\t"),
            // 36 characters with the hyphens in the wrong places.
            format!(
                "{}-{}-{}-{}-{}",
                &simple[..4],
                &simple[4..12],
                &simple[12..16],
                &simple[16..20],
                &simple[20..]
            ),
            canonical.replace('a', "g"),
            String::new(),
        ] {
            assert_eq!(parse_sid(&other), None, "{other:?}");
        }
    }

    #[test]
    fn expiry_is_the_earlier_of_idle_and_absolute() {
        let s = sample();
        assert_eq!(s.effective_expiry_ms(), 30);
        assert!(s.is_valid_at(29));
        assert!(!s.is_valid_at(30));
    }
}
