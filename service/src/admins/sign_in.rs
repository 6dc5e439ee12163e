//! The way into the dashboard: failed attempts throttled per user name and per client address
//! with growing delays, a bound on password hashes running at once, and every sign-in, failure
//! and sign-out in the audit log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use sessions::store::SessionStore;
use sessions::{CreatedSession, NewSession, SessionError};
use tokio::sync::Semaphore;

use super::{admin_audit_entry, AdminAccounts, Verified, ADMIN_REALM};

/// Failures of one user name allowed before delays start.
const FREE_FAILURES_PER_USER: u32 = 3;
/// Failures from one client address allowed before delays start (offices share addresses).
const FREE_FAILURES_PER_ADDRESS: u32 = 20;
/// The first delay; each further failure doubles it.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// A name or address without failures for this long starts afresh.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Most names and addresses remembered (at most [`MAX_USERNAME_BYTES`] each, so a few tens of
/// MiB at worst); beyond it, the longest-quiet ones are forgotten first.
const MAX_TRACKED: usize = 100_000;
/// Password hashes running at once (each takes a core for tens of milliseconds).
const CONCURRENT_HASHES: usize = 2;
/// How long an attempt waits for a free hashing slot before it is turned away.
const HASH_WAIT: Duration = Duration::from_secs(10);
/// The longest user name checked. A longer one is refused before it is hashed, audited, logged
/// or remembered by the throttle.
pub const MAX_USERNAME_BYTES: usize = 256;

/// Why a sign-in did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("Wrong username or password.")]
    Wrong,
    #[error("This administrator account is disabled.")]
    Disabled,
    #[error("Too many failed sign-ins; try again in {} s.", .retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    #[error("The server is busy checking other sign-ins; try again in a moment.")]
    Busy,
    #[error("User names are at most {MAX_USERNAME_BYTES} bytes long.")]
    UsernameTooLong,
    #[error(transparent)]
    Store(#[from] SessionError),
}

impl SignInError {
    /// The HTTP status that fits.
    pub fn status(&self) -> u16 {
        match self {
            SignInError::Wrong => 401,
            SignInError::Disabled => 403,
            SignInError::Throttled { .. } => 429,
            SignInError::Busy => 503,
            SignInError::UsernameTooLong => 400,
            SignInError::Store(e) => e.status(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

/// Failed attempts per user name and per client address, at most `capacity` keys.
///
/// An attempt counts as a failure from the moment it starts ([`Throttle::begin`]), before it
/// waits for a hashing slot, and is given back if it succeeds: attempts sent at once see each
/// other, so a burst gets no more guesses than a sequence.
struct Throttle {
    entries: HashMap<String, Failures>,
    capacity: usize,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::with_capacity(MAX_TRACKED)
    }
}

impl Throttle {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// How long `key` must still wait, if it must.
    fn wait(&self, key: &str, now: Instant) -> Option<Duration> {
        let f = self.entries.get(key)?;
        (f.blocked_until > now).then(|| f.blocked_until - now)
    }

    /// Starts an attempt under every key of `keys` (each with its free failures): refused with
    /// the longest wait while any key waits out a delay; else counted as a failure of each.
    fn begin(&mut self, keys: &[(&str, u32)], now: Instant) -> Result<(), Duration> {
        if let Some(wait) = keys.iter().filter_map(|(k, _)| self.wait(k, now)).max() {
            return Err(wait);
        }
        for (key, free) in keys {
            self.fail(key, *free, now);
        }
        Ok(())
    }

    /// Records a failure: past `free` failures, the key waits a delay that doubles each time.
    fn fail(&mut self, key: &str, free: u32, now: Instant) {
        if !self.entries.contains_key(key) && self.entries.len() >= self.capacity {
            self.make_room(now);
        }
        let f = self.entries.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: now,
        });
        if now - f.last > FORGET_AFTER {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count > free {
            let doublings = (f.count - free - 1).min(20);
            f.blocked_until = now + FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY);
        }
    }

    /// Takes back the failure [`Throttle::begin`] counted for an attempt that did not fail.
    fn give_back(&mut self, key: &str) {
        if let Some(f) = self.entries.get_mut(key) {
            f.count = f.count.saturating_sub(1);
        }
    }

    fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Forgets what has been quiet for long and is not waiting; if that frees less than a tenth
    /// of the capacity, the longest-quiet keys too, until it does.
    fn make_room(&mut self, now: Instant) {
        self.entries
            .retain(|_, f| f.blocked_until > now || now - f.last < FORGET_AFTER);
        let keep = self.capacity - self.capacity.div_ceil(10);
        if self.entries.len() > keep {
            let mut by_age: Vec<(Instant, String)> = self
                .entries
                .iter()
                .map(|(k, f)| (f.last, k.clone()))
                .collect();
            let evict = by_age.len() - keep;
            by_age.select_nth_unstable_by_key(evict - 1, |(last, _)| *last);
            for (_, key) in &by_age[..evict] {
                self.entries.remove(key);
            }
        }
    }
}

fn user_key(username: &str) -> String {
    format!("user:{username}")
}

/// The throttle's key of a client: its address, or for IPv6 its /64 (one host's share).
fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("addr:{v4}"),
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & !((1u128 << 64) - 1);
            format!("addr:{}/64", std::net::Ipv6Addr::from(net))
        }
    }
}

/// Signs administrators in and out of the dashboard.
pub struct SignIns {
    accounts: Arc<AdminAccounts>,
    store: Arc<dyn SessionStore>,
    throttle: Mutex<Throttle>,
    hashing: Semaphore,
}

impl SignIns {
    pub fn new(accounts: Arc<AdminAccounts>, store: Arc<dyn SessionStore>) -> Self {
        Self {
            accounts,
            store,
            throttle: Mutex::new(Throttle::default()),
            hashing: Semaphore::new(CONCURRENT_HASHES),
        }
    }

    /// The administrator accounts.
    pub fn accounts(&self) -> &Arc<AdminAccounts> {
        &self.accounts
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the password and starts a dashboard session. Refused at once, without hashing,
    /// while the user name or the client address is waiting out a delay.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
        user_agent: Option<String>,
    ) -> Result<CreatedSession, SignInError> {
        if username.len() > MAX_USERNAME_BYTES {
            return Err(SignInError::UsernameTooLong);
        }
        let now = Instant::now();
        let user = user_key(username);
        let address = client.map(address_key);
        let mut keys = vec![(user.as_str(), FREE_FAILURES_PER_USER)];
        keys.extend(address.as_deref().map(|a| (a, FREE_FAILURES_PER_ADDRESS)));
        if let Err(retry_after) = self.throttle().begin(&keys, now) {
            tracing::warn!(username, client = ?client, "sign-in refused: throttled");
            return Err(SignInError::Throttled { retry_after });
        }
        let give_back = || {
            let mut t = self.throttle();
            for (key, _) in &keys {
                t.give_back(key);
            }
        };
        let verified = match self.verify(username, password).await {
            Ok(verified) => verified,
            Err(e) => {
                give_back();
                return Err(e);
            }
        };
        let from = client.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
        match verified {
            Verified::Yes => {}
            Verified::Wrong | Verified::Disabled => {
                let (error, why) = if verified == Verified::Wrong {
                    (SignInError::Wrong, "wrong username or password")
                } else {
                    (SignInError::Disabled, "account disabled")
                };
                self.audit(
                    "sign_in_failed",
                    username,
                    "anonymous",
                    &format!("{why}, from {from}"),
                )
                .await?;
                return Err(error);
            }
        }
        give_back();
        self.throttle().forget(&user);
        let new = NewSession {
            subject_id: username.to_owned(),
            display_name: Some(format!("Administrator {username}")),
            ip: client.map(|ip| ip.to_string()),
            user_agent,
            ..Default::default()
        };
        let created = self
            .store
            .create_session(ADMIN_REALM, &new, Utc::now())
            .await?;
        self.audit(
            "sign_in",
            username,
            &format!("admin:{username}"),
            &format!("ok, from {from}, session {}", created.session.sid),
        )
        .await?;
        Ok(created)
    }

    /// Checks the password once a hashing slot is free.
    async fn verify(&self, username: &str, password: &str) -> Result<Verified, SignInError> {
        let _slot = tokio::time::timeout(HASH_WAIT, self.hashing.acquire())
            .await
            .map_err(|_| SignInError::Busy)?
            .map_err(|_| SignInError::Busy)?;
        Ok(self.accounts.verify(username, password).await?)
    }

    /// Ends the dashboard session `token` belongs to, if it is live; audited.
    pub async fn sign_out(&self, username: &str, token: String) -> Result<(), SessionError> {
        let ended = self.store.logout(ADMIN_REALM, &token, Utc::now()).await?;
        if ended {
            self.audit("sign_out", username, &format!("admin:{username}"), "ok")
                .await?;
        }
        Ok(())
    }

    async fn audit(
        &self,
        action: &str,
        username: &str,
        actor: &str,
        outcome: &str,
    ) -> Result<(), SessionError> {
        let entry = admin_audit_entry(action, username, actor, outcome, Utc::now());
        self.store.record_audit(&entry).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_after_the_free_failures_and_double_up_to_the_cap() {
        let mut t = Throttle::default();
        let start = Instant::now();
        for _ in 0..FREE_FAILURES_PER_USER {
            t.fail("user:a", FREE_FAILURES_PER_USER, start);
            assert_eq!(t.wait("user:a", start), None);
        }
        let mut expected = FIRST_DELAY;
        for _ in 0..15 {
            t.fail("user:a", FREE_FAILURES_PER_USER, start);
            assert_eq!(t.wait("user:a", start), Some(expected));
            expected = (expected * 2).min(MAX_DELAY);
        }
        assert_eq!(t.wait("user:a", start), Some(MAX_DELAY));
        assert_eq!(t.wait("user:a", start + MAX_DELAY), None);
        assert_eq!(t.wait("user:b", start), None, "other names are not held up");
        t.forget("user:a");
        assert_eq!(t.wait("user:a", start), None);
    }

    #[test]
    fn failures_long_ago_are_forgotten() {
        let mut t = Throttle::default();
        let start = Instant::now();
        for _ in 0..=FREE_FAILURES_PER_USER {
            t.fail("user:a", FREE_FAILURES_PER_USER, start);
        }
        assert!(t.wait("user:a", start).is_some());
        let later = start + FORGET_AFTER + Duration::from_secs(1);
        t.fail("user:a", FREE_FAILURES_PER_USER, later);
        assert_eq!(t.wait("user:a", later), None, "the count started afresh");
    }

    #[test]
    fn attempts_at_once_get_no_more_tries_than_attempts_in_a_row() {
        let start = Instant::now();
        let keys = [("user:a", FREE_FAILURES_PER_USER), ("addr:x", 20)];
        let mut burst = Throttle::default();
        let let_through = (0..60)
            .filter(|_| burst.begin(&keys, start).is_ok())
            .count();
        let mut in_a_row = Throttle::default();
        let mut sequence = 0;
        while in_a_row.begin(&keys, start).is_ok() {
            sequence += 1;
        }
        assert_eq!(let_through, sequence);
        assert_eq!(let_through, FREE_FAILURES_PER_USER as usize + 1);
    }

    #[test]
    fn a_success_gives_back_the_failure_its_attempt_counted() {
        let start = Instant::now();
        let mut t = Throttle::default();
        for _ in 0..100 {
            t.begin(&[("addr:x", FREE_FAILURES_PER_ADDRESS)], start)
                .unwrap();
            t.give_back("addr:x");
        }
        assert_eq!(t.wait("addr:x", start), None);
    }

    #[test]
    fn the_throttle_forgets_the_longest_quiet_keys_beyond_its_capacity() {
        let start = Instant::now();
        let mut t = Throttle::with_capacity(100);
        for i in 0..10_000u32 {
            let at = start + Duration::from_millis(u64::from(i));
            t.fail(&format!("user:{i}"), 0, at);
            assert!(t.entries.len() <= 100);
        }
        let now = start + Duration::from_millis(10_000);
        assert!(t.wait("user:9999", now).is_some(), "the newest is kept");
        assert!(!t.entries.contains_key("user:0"), "the oldest went");
    }

    #[test]
    fn ipv6_clients_are_one_key_per_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:192.0.2.1")), "addr:192.0.2.1");
        assert_ne!(address_key(ip("192.0.2.1")), address_key(ip("192.0.2.2")));
    }
}
