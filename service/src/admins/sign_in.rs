//! The way into the dashboard: failed attempts throttled per user name and per client address
//! with growing delays, a bound on password hashes running at once, and every sign-in, failure
//! and sign-out in the audit log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use sessions::store::SessionStore;
use sessions::{AuditEntry, CreatedSession, NewSession, SessionError};
use tokio::sync::Semaphore;

use super::{AdminAccounts, Verified, ADMIN_REALM};

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
/// Most names and addresses remembered; beyond it, the oldest unblocked ones are forgotten.
const MAX_TRACKED: usize = 100_000;
/// Password hashes running at once (each takes a core for tens of milliseconds).
const CONCURRENT_HASHES: usize = 2;
/// How long an attempt waits for a free hashing slot before it is turned away.
const HASH_WAIT: Duration = Duration::from_secs(10);

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

/// Failed attempts per user name and per client address.
#[derive(Default)]
struct Throttle {
    entries: HashMap<String, Failures>,
}

impl Throttle {
    /// How long `key` must still wait, if it must.
    fn wait(&self, key: &str, now: Instant) -> Option<Duration> {
        let f = self.entries.get(key)?;
        (f.blocked_until > now).then(|| f.blocked_until - now)
    }

    /// Records a failure: past `free` failures, the key waits a delay that doubles each time.
    fn fail(&mut self, key: String, free: u32, now: Instant) {
        if self.entries.len() >= MAX_TRACKED {
            self.entries
                .retain(|_, f| f.blocked_until > now || now - f.last < FORGET_AFTER / 4);
        }
        let f = self.entries.entry(key).or_insert(Failures {
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

    fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

fn user_key(username: &str) -> String {
    format!("user:{username}")
}

fn address_key(ip: IpAddr) -> String {
    format!("addr:{ip}")
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
        let now = Instant::now();
        let wait = {
            let t = self.throttle();
            let by_user = t.wait(&user_key(username), now);
            let by_address = client.and_then(|ip| t.wait(&address_key(ip), now));
            by_user.max(by_address)
        };
        if let Some(retry_after) = wait {
            tracing::warn!(username, client = ?client, "sign-in refused: throttled");
            return Err(SignInError::Throttled { retry_after });
        }
        let verified = {
            let _slot = tokio::time::timeout(HASH_WAIT, self.hashing.acquire())
                .await
                .map_err(|_| SignInError::Busy)?
                .map_err(|_| SignInError::Busy)?;
            let (accounts, user, pass) = (
                self.accounts.clone(),
                username.to_owned(),
                password.to_owned(),
            );
            tokio::task::spawn_blocking(move || accounts.verify(&user, &pass))
                .await
                .map_err(|e| SessionError::Storage(format!("password check failed: {e}")))??
        };
        let from = client.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
        match verified {
            Verified::Yes => {}
            Verified::Wrong | Verified::Disabled => {
                {
                    let mut t = self.throttle();
                    t.fail(user_key(username), FREE_FAILURES_PER_USER, now);
                    if let Some(ip) = client {
                        t.fail(address_key(ip), FREE_FAILURES_PER_ADDRESS, now);
                    }
                }
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
        self.throttle().forget(&user_key(username));
        let new = NewSession {
            subject_id: username.to_owned(),
            display_name: Some(format!("Administrator {username}")),
            ip: client.map(|ip| ip.to_string()),
            user_agent,
            ..Default::default()
        };
        let store = self.store.clone();
        let created = tokio::task::spawn_blocking(move || {
            store.create_session(ADMIN_REALM, &new, Utc::now())
        })
        .await
        .map_err(|e| SessionError::Storage(format!("starting the session failed: {e}")))??;
        self.audit(
            "sign_in",
            username,
            &format!("admin:{username}"),
            &format!("ok, from {from}, session {}", created.session.sid),
        )
        .await?;
        Ok(created)
    }

    /// Ends the dashboard session `token` belongs to, if it is live; audited.
    pub async fn sign_out(&self, username: &str, token: String) -> Result<(), SessionError> {
        let store = self.store.clone();
        let ended =
            tokio::task::spawn_blocking(move || store.logout(ADMIN_REALM, &token, Utc::now()))
                .await
                .map_err(|e| SessionError::Storage(format!("signing out failed: {e}")))??;
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
        let store = self.store.clone();
        let entry = AuditEntry {
            at: Utc::now(),
            actor: actor.to_owned(),
            realm: Some(ADMIN_REALM.to_owned()),
            action: action.to_owned(),
            target: username.to_owned(),
            reason: None,
            outcome: outcome.to_owned(),
        };
        tokio::task::spawn_blocking(move || store.record_audit(&entry))
            .await
            .map_err(|e| SessionError::Storage(format!("auditing failed: {e}")))?
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
            t.fail("user:a".into(), FREE_FAILURES_PER_USER, start);
            assert_eq!(t.wait("user:a", start), None);
        }
        let mut expected = FIRST_DELAY;
        for _ in 0..15 {
            t.fail("user:a".into(), FREE_FAILURES_PER_USER, start);
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
            t.fail("user:a".into(), FREE_FAILURES_PER_USER, start);
        }
        assert!(t.wait("user:a", start).is_some());
        let later = start + FORGET_AFTER + Duration::from_secs(1);
        t.fail("user:a".into(), FREE_FAILURES_PER_USER, later);
        assert_eq!(t.wait("user:a", later), None, "the count started afresh");
    }
}
