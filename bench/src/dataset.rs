//! The generated data set both stores are loaded with: reproducible (every session is a pure
//! function of its index and a fixed seed), one realm, subjects with a skewed number of sessions,
//! realistic display names, several clients and a spread of ages; and the grants of the subjects
//! the removal workloads end.

use std::collections::BTreeSet;

use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use sessions::sample::{CLIENT_IDS, FAMILY_NAMES, FIRST_NAMES, USER_AGENTS};
use sessions::GrantKind;

use crate::incumbent::ticket::{self, TICKET_BYTES};

/// The realm every session of the data set belongs to.
pub const REALM: &str = "bench";
/// The realm of the sessions the expiry sweep removes (already expired when loaded).
pub const SWEEP_REALM: &str = "sweep";
/// The applications sessions join, the first ones more often.
pub const CLIENTS: &[&str] = CLIENT_IDS;
/// Subjects each removal workload ends, [`REMOVAL_SESSIONS`] sessions each.
pub const REMOVAL_SUBJECTS: usize = 3;
/// Removal workloads, each with subjects of its own (a subject is gone once removed).
pub const REMOVAL_WORKLOADS: usize = 2;
/// Sessions of each removal subject.
pub const REMOVAL_SESSIONS: usize = 1000;
/// The smallest size the data set makes sense at (the removal subjects take 6,000 sessions).
pub const MIN_SIZE: usize = 10_000;
/// Sessions last this long without use (our realm's idle timeout, Duende's sliding expiry).
pub const IDLE_TIMEOUT: TimeDelta = TimeDelta::days(7);
/// Our realm's absolute lifetime.
pub const ABSOLUTE_LIFETIME: TimeDelta = TimeDelta::days(30);
/// Sessions are up to this old (younger than the idle timeout: every one is valid).
const MAX_AGE_SECS: u64 = 6 * 24 * 3600;
/// Bytes of a grant as Duende's persisted grant store serializes it (its `Data` column, here
/// base64 of random bytes).
const GRANT_DATA_BYTES: usize = 600;
/// How long the removal subjects' grants last from their creation.
const GRANT_LIFETIME: TimeDelta = TimeDelta::days(14);
/// The scopes of the removal subjects' grants.
pub const GRANT_SCOPES: &[&str] = &["openid", "profile", "offline_access"];
/// At most this many sessions are sampled for the validation workloads.
const VALIDATION_SAMPLE: usize = 100_000;

/// Display-name fragments an administrator types (a prefix for us, a substring for Duende).
pub const NAME_SEARCHES: &[&str] = &["smi", "gar", "ros", "kim", "nak", "sch", "pet", "nov"];
/// One generated session, with what each store needs of it.
#[derive(Clone, Debug)]
pub struct SeedSession {
    pub subject_id: String,
    pub display_name: String,
    pub client_ids: Vec<String>,
    pub created: DateTime<Utc>,
    pub ip: String,
    pub user_agent: &'static str,
    /// Duende's cookie key (`Key`, 32 random bytes in hex), the incumbent's token.
    pub key: String,
    /// Duende's `SessionId` (16 random bytes in hex).
    pub session_id: String,
    /// Duende's protected ticket (`Data`), which names the session's clients.
    pub ticket: String,
}

/// A grant of a removal subject, the same in both stores: a refresh token issued under one of its
/// sessions to one of that session's clients, or its consent to a client (under no session).
#[derive(Clone, Debug)]
pub struct SeedGrant {
    pub kind: GrantKind,
    pub subject_id: String,
    pub client_id: String,
    /// Duende's `SessionId` of the session a refresh token was issued under; `None` for a consent.
    pub session_id: Option<String>,
    /// The refresh token (ours stores its hash); `None` for a consent.
    pub token: Option<String>,
    /// Duende's `Key` (the hashed handle, base64 of 32 bytes).
    pub key: String,
    /// Duende's serialized grant (`Data`).
    pub data: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// A data set of `size` sessions, generated relative to `now`.
#[derive(Clone, Copy, Debug)]
pub struct Dataset {
    pub size: usize,
    pub now: DateTime<Utc>,
}

impl Dataset {
    pub fn new(size: usize, now: DateTime<Utc>) -> Dataset {
        Dataset { size, now }
    }

    /// Session `index` (0-based, below `size`). The last [`REMOVAL_WORKLOADS`] ×
    /// [`REMOVAL_SUBJECTS`] × [`REMOVAL_SESSIONS`] belong to the removal subjects.
    pub fn session(&self, index: usize) -> SeedSession {
        let mut rng = Rng::for_index(index as u64);
        let removal_start = self.regular();
        let (subject_id, display_name) = if index >= removal_start {
            let k = (index - removal_start) / REMOVAL_SESSIONS;
            (removal_subject(k), format!("Removal Subject{k}"))
        } else {
            // Skewed: person p is drawn with density falling as 1/sqrt(p); the busiest subjects
            // hold hundreds of sessions, most hold one or two.
            let people = (removal_start / 3).max(1) as f64;
            let u = rng.unit();
            person((people * u * u) as u64)
        };
        let mut client_ids = vec![pick_client(&mut rng).to_owned()];
        for _ in 0..rng.below(3) {
            let client = pick_client(&mut rng);
            if !client_ids.iter().any(|c| c == client) {
                client_ids.push(client.to_owned());
            }
        }
        let age = TimeDelta::seconds(rng.below(MAX_AGE_SECS) as i64);
        let ip = format!("198.51.{}.{}", rng.below(256), rng.below(254) + 1);
        let user_agent = USER_AGENTS[rng.below(USER_AGENTS.len() as u64) as usize];
        let key = rng.hex(32);
        let session_id = rng.hex(16);
        let mut random = [0u8; TICKET_BYTES];
        rng.fill(&mut random);
        let ticket = ticket::encode(&client_ids, &random);
        SeedSession {
            subject_id,
            display_name,
            client_ids,
            created: self.now - age,
            ip,
            user_agent,
            key,
            session_id,
            ticket,
        }
    }

    /// The sessions before the removal subjects' (indexes `0..regular()`).
    pub fn regular(&self) -> usize {
        self.size - REMOVAL_WORKLOADS * REMOVAL_SUBJECTS * REMOVAL_SESSIONS
    }

    /// The refresh tokens issued under session `index`, one per client of the session; none but
    /// the removal subjects' sessions hold any.
    pub fn session_grants(&self, index: usize) -> Vec<SeedGrant> {
        if index < self.regular() {
            return Vec::new();
        }
        let session = self.session(index);
        let mut rng = Rng::for_index(index as u64 ^ GRANT_SALT);
        session
            .client_ids
            .iter()
            .map(|client| {
                let token = rng.hex(32);
                grant(
                    &mut rng,
                    GrantKind::RefreshToken,
                    &session,
                    client,
                    Some(token),
                )
            })
            .collect()
    }

    /// The consents of removal subject `k`: one per client its sessions joined.
    pub fn consents(&self, k: usize) -> Vec<SeedGrant> {
        let first = self.regular() + k * REMOVAL_SESSIONS;
        let clients: BTreeSet<String> = (first..first + REMOVAL_SESSIONS)
            .flat_map(|i| self.session(i).client_ids)
            .collect();
        let mut rng = Rng::for_index(k as u64 ^ CONSENT_SALT);
        let subject = self.session(first);
        clients
            .iter()
            .map(|client| grant(&mut rng, GrantKind::Consent, &subject, client, None))
            .collect()
    }

    /// Every grant of the data set: the removal subjects' refresh tokens and consents.
    pub fn grants(&self) -> impl Iterator<Item = SeedGrant> + '_ {
        let tokens = (self.regular()..self.size).flat_map(|i| self.session_grants(i));
        let consents = (0..REMOVAL_WORKLOADS * REMOVAL_SUBJECTS).flat_map(|k| self.consents(k));
        tokens.chain(consents)
    }

    /// Whether session `index` is in the validation sample (evenly spread, at most 100,000, none
    /// of the removal subjects': they are removed during the run).
    pub fn sampled(&self, index: usize) -> bool {
        index < self.regular() && index.is_multiple_of(self.size.div_ceil(VALIDATION_SAMPLE))
    }

    /// Session `draw` of a spread over the regular sessions (busy subjects come more often).
    pub fn draw(&self, draw: usize) -> SeedSession {
        self.session(draw * 7919 % self.regular())
    }
}

/// Seeds of the grants' random values, apart from the sessions'.
const GRANT_SALT: u64 = 0x6772_616e_7473;
const CONSENT_SALT: u64 = 0x636f_6e73_656e;

/// A grant of `kind` to `client` under `session` (consents: under no session, as of the session's
/// creation).
fn grant(
    rng: &mut Rng,
    kind: GrantKind,
    session: &SeedSession,
    client: &str,
    token: Option<String>,
) -> SeedGrant {
    let mut key = [0u8; 32];
    rng.fill(&mut key);
    let mut data = [0u8; GRANT_DATA_BYTES];
    rng.fill(&mut data);
    let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    SeedGrant {
        kind,
        subject_id: session.subject_id.clone(),
        client_id: client.to_owned(),
        session_id: (kind != GrantKind::Consent).then(|| session.session_id.clone()),
        token,
        key: encode(&key),
        data: encode(&data),
        created: session.created,
        expires: session.created + GRANT_LIFETIME,
    }
}

/// Where the expired sessions' indexes start, so their keys differ from the data set's.
const EXPIRED_BASE: usize = 1 << 40;

/// Expired session `index` for the expiry sweep: it expired an hour before `now`.
pub fn expired_session(index: usize, now: DateTime<Utc>) -> SeedSession {
    let mut s = Dataset::new(usize::MAX, now).session(EXPIRED_BASE + index);
    s.subject_id = format!("expired.{index}");
    s.created = now - IDLE_TIMEOUT - TimeDelta::hours(1);
    s
}

/// The subject id of removal subject `k`.
pub fn removal_subject(k: usize) -> String {
    format!("removal.subject{k}")
}

/// A person's subject id and display name.
fn person(p: u64) -> (String, String) {
    let mut rng = Rng::for_index(p ^ 0x5bd1_e995);
    let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
    let last = FAMILY_NAMES[rng.below(FAMILY_NAMES.len() as u64) as usize];
    let ascii = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase()
    };
    (
        format!("{}.{}{p}", ascii(first), ascii(last)),
        format!("{first} {last}"),
    )
}

fn pick_client(rng: &mut Rng) -> &'static str {
    // Earlier clients are more popular: index = floor(n * u^2).
    let u = rng.unit();
    CLIENTS[((CLIENTS.len() as f64) * u * u) as usize]
}

/// SplitMix64: small, fast and deterministic, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn for_index(index: u64) -> Rng {
        Rng(index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
    }

    fn hex(&mut self, bytes: usize) -> String {
        let mut raw = vec![0u8; bytes];
        self.fill(&mut raw);
        raw.iter().map(|b| format!("{b:02X}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_reproducible_and_removal_subjects_hold_their_share() {
        let now = Utc::now();
        let data = Dataset::new(MIN_SIZE, now);
        let a = data.session(42);
        let b = data.session(42);
        assert_eq!(a.subject_id, b.subject_id);
        assert_eq!(a.key, b.key);
        assert_eq!(a.key.len(), 64);
        let removal = (0..MIN_SIZE)
            .filter(|&i| data.session(i).subject_id == removal_subject(0))
            .count();
        assert_eq!(removal, REMOVAL_SESSIONS);
        let sampled = (0..MIN_SIZE).filter(|&i| data.sampled(i)).count();
        assert_eq!(sampled, data.regular());
    }

    #[test]
    fn removal_subjects_hold_refresh_tokens_and_consents() {
        let data = Dataset::new(MIN_SIZE, Utc::now());
        let first = data.regular();
        let s = data.session(first);
        let tokens = data.session_grants(first);
        assert_eq!(tokens.len(), s.client_ids.len());
        assert!(tokens.iter().all(|g| g.kind == GrantKind::RefreshToken
            && g.session_id.as_ref() == Some(&s.session_id)
            && g.token.is_some()));
        assert!(data.session_grants(0).is_empty());
        let consents = data.consents(0);
        assert!(!consents.is_empty());
        assert!(consents.iter().all(|g| g.kind == GrantKind::Consent
            && g.session_id.is_none()
            && g.token.is_none()
            && g.subject_id == removal_subject(0)));
        let all: Vec<SeedGrant> = data.grants().collect();
        let keys: BTreeSet<&str> = all.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys.len(), all.len(), "Duende's keys are unique");
    }

    #[test]
    fn subjects_are_skewed() {
        let data = Dataset::new(30_000, Utc::now());
        let mut counts = std::collections::HashMap::new();
        for i in 0..27_000 {
            *counts.entry(data.session(i).subject_id).or_insert(0) += 1;
        }
        let busiest = counts.values().max().copied().unwrap_or(0);
        assert!(busiest > 50, "busiest subject holds {busiest}");
        assert!(counts.len() > 3_000, "{} subjects", counts.len());
    }

    #[test]
    fn expired_sessions_are_past_the_idle_timeout_with_keys_of_their_own() {
        let now = Utc::now();
        let expired = expired_session(3, now);
        assert!(expired.created + IDLE_TIMEOUT < now);
        assert_ne!(expired.key, Dataset::new(MIN_SIZE, now).session(3).key);
    }
}
