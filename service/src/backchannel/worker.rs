//! The delivery worker: POSTs a freshly signed logout token for every due delivery (or, for a
//! Shared Signals stream's, its SET: [`crate::signals::push`]), records how each attempt went, and retries failures with exponential backoff and jitter until the retry
//! window closes. Each attempt goes to the client's back-channel URI as registered at that
//! moment, checked against the target rules ([`super::target`]). Deliveries run concurrently,
//! with a cap per client, so one slow client does not hold up the others.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sessions::signal::stream_of_client;
use sessions::store::{DueCursor, SessionStore};
use sessions::{AttemptResult, Delivery, SessionError};

use super::failure::{AttemptFailure, Category};
use super::resolve::GuardedResolver;
use super::{Backchannel, LogoutClaims};

/// How deliveries are attempted and retried.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Time allowed for one POST.
    pub timeout: Duration,
    /// Delay after the first failure; it doubles with each further one.
    pub first_backoff: Duration,
    /// Longest delay between attempts.
    pub max_backoff: Duration,
    /// How long after queueing (or "retry now") a failing delivery is retried before it is marked
    /// failed.
    pub retry_for: Duration,
    /// How often the outbox is checked when nothing wakes the worker.
    pub poll_every: Duration,
    /// Most attempts in flight at once.
    pub max_in_flight: usize,
    /// Most attempts in flight to one client at once.
    pub max_in_flight_per_client: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            retry_for: Duration::from_secs(24 * 3600),
            poll_every: Duration::from_millis(500),
            max_in_flight: 64,
            max_in_flight_per_client: 4,
        }
    }
}

/// Deliveries being attempted right now, by id and by client.
#[derive(Default)]
struct InFlight {
    ids: HashSet<u64>,
    per_client: HashMap<(String, String), usize>,
}

/// Runs forever, delivering what the outbox holds.
pub async fn run(
    store: Arc<dyn SessionStore>,
    backchannel: Arc<Backchannel>,
    config: DeliveryConfig,
) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would connect on the worker's behalf, past the resolver's address checks.
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(
            backchannel.allow_hosts.clone(),
        )))
        .timeout(config.timeout)
        .user_agent(concat!("sessions-backchannel/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds");
    let in_flight = Arc::new(Mutex::new(InFlight::default()));
    let mut cursor = DueCursor::default();
    loop {
        let free = config.max_in_flight.saturating_sub(flight_len(&in_flight));
        // Pass over what is in flight and clients at their limit.
        // And the deliveries of streams that are polled or paused.
        let busy = |realm: &str, client: &str, id: u64| {
            is_busy(&in_flight, &config, realm, client, id)
                || backchannel.streams.holds(realm, client)
        };
        let per_client = config.max_in_flight_per_client;
        let due = store
            .due_deliveries(Utc::now(), free, per_client, &mut cursor, &busy)
            .await;
        match due {
            Ok(due) => {
                for d in due {
                    if !claim(&in_flight, &d, &config) {
                        continue;
                    }
                    let (store, bc, http, cfg, flight) = (
                        store.clone(),
                        backchannel.clone(),
                        http.clone(),
                        config.clone(),
                        in_flight.clone(),
                    );
                    tokio::spawn(async move {
                        attempt(&*store, &bc, &http, &cfg, &d).await;
                        release(&flight, &d);
                        // A finished attempt may free a slot for a waiting delivery.
                        bc.wake.notify_one();
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "reading the outbox failed"),
        }
        let _ = tokio::time::timeout(config.poll_every, backchannel.wake.notified()).await;
    }
}

fn flight_len(in_flight: &Mutex<InFlight>) -> usize {
    in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .ids
        .len()
}

/// Whether a delivery is in flight already or its client is at its cap.
fn is_busy(
    in_flight: &Mutex<InFlight>,
    config: &DeliveryConfig,
    realm: &str,
    client: &str,
    id: u64,
) -> bool {
    let f = in_flight.lock().unwrap_or_else(|e| e.into_inner());
    f.ids.contains(&id)
        || f.per_client
            .get(&capped(realm, client))
            .is_some_and(|n| *n >= config.max_in_flight_per_client)
}

/// What the per-client cap counts: a client of a realm, or a Shared Signals stream across every
/// realm it covers (one slow receiver holds at most the cap, however many realms it covers).
fn capped(realm: &str, client: &str) -> (String, String) {
    match stream_of_client(client) {
        Some(_) => (String::new(), client.to_owned()),
        None => (realm.to_owned(), client.to_owned()),
    }
}

/// Marks a delivery in flight unless it already is or its client (or the worker) is at its cap.
fn claim(in_flight: &Mutex<InFlight>, d: &Delivery, config: &DeliveryConfig) -> bool {
    let mut f = in_flight.lock().unwrap_or_else(|e| e.into_inner());
    let client = capped(&d.realm, &d.client_id);
    let busy = f.per_client.get(&client).copied().unwrap_or(0);
    if f.ids.contains(&d.id)
        || f.ids.len() >= config.max_in_flight
        || busy >= config.max_in_flight_per_client
    {
        return false;
    }
    f.ids.insert(d.id);
    f.per_client.insert(client, busy + 1);
    true
}

fn release(in_flight: &Mutex<InFlight>, d: &Delivery) {
    let mut f = in_flight.lock().unwrap_or_else(|e| e.into_inner());
    f.ids.remove(&d.id);
    let client = capped(&d.realm, &d.client_id);
    if let Some(n) = f.per_client.get_mut(&client) {
        *n -= 1;
        if *n == 0 {
            f.per_client.remove(&client);
        }
    }
}

/// One attempt: read the client's current registration, check its URI against the target rules,
/// sign, POST, and record the result.
async fn attempt(
    store: &dyn SessionStore,
    backchannel: &Backchannel,
    http: &reqwest::Client,
    config: &DeliveryConfig,
    d: &Delivery,
) {
    let (jti, sent) = match stream_of_client(&d.client_id) {
        Some(stream) => crate::signals::push::send(backchannel, http, d, stream).await,
        None => {
            let claims = LogoutClaims::for_delivery(&backchannel.issuer, d, Utc::now());
            (
                claims.jti.clone(),
                send(store, backchannel, http, d, &claims).await,
            )
        }
    };
    let now = Utc::now();
    let result = match &sent {
        Ok(()) => AttemptResult::Delivered,
        Err(f) if f.category.is_final() || retry_window_closed(d, config, now) => {
            AttemptResult::GiveUp {
                error: f.category.to_string(),
            }
        }
        Err(f) => AttemptResult::Retry {
            at: now + backoff(config, d.window_attempts + 1),
            error: f.category.to_string(),
        },
    };
    let (id, client) = (d.id, &d.client_id);
    match (&sent, &result) {
        (Ok(()), _) => tracing::info!(id, realm = %d.realm, %client, "delivered"),
        (Err(f), AttemptResult::GiveUp { .. }) => {
            let (error, detail) = (f.category, &f.detail);
            tracing::error!(id, %client, %error, %detail, "delivery failed for good")
        }
        (Err(f), _) => {
            let (error, detail) = (f.category, &f.detail);
            tracing::warn!(id, %client, %error, %detail, "delivery failed; will retry")
        }
    }
    crate::metrics::record_delivery(&result);
    let recorded = store.record_attempt(d, &jti, &result, now).await;
    if let Err(e) = recorded {
        tracing::error!(id = d.id, error = %e, "recording a delivery attempt failed");
    }
}

/// Sends the logout token to the client's back-channel URI as registered now, if the target rules
/// (with the realm's current `backchannel_allow_http`) allow it.
async fn send(
    store: &dyn SessionStore,
    backchannel: &Backchannel,
    http: &reqwest::Client,
    d: &Delivery,
    claims: &LogoutClaims,
) -> Result<(), AttemptFailure> {
    let (uri, realm_allows_http) = current_target(store, d).await?;
    let url = reqwest::Url::parse(&uri)
        .map_err(|e| AttemptFailure::new(Category::InvalidUri, format!("{uri}: {e}")))?;
    backchannel.allow_hosts.check(&url, realm_allows_http)?;
    let token = backchannel
        .keys
        .sign(claims)
        .map_err(|e| AttemptFailure::new(Category::SigningFailed, e.to_string()))?;
    post(http, url, &token).await
}

/// The client's current back-channel logout URI and whether its realm allows http now.
async fn current_target(
    store: &dyn SessionStore,
    d: &Delivery,
) -> Result<(String, bool), AttemptFailure> {
    let gone = |why: String| AttemptFailure::new(Category::ClientNotRegistered, why);
    let read = |e: SessionError| match e {
        SessionError::ClientNotFound(_) | SessionError::RealmNotFound(_) => gone(e.to_string()),
        e => AttemptFailure::new(Category::StoreFailed, e.to_string()),
    };
    let client = store
        .get_client(&d.realm, &d.client_id)
        .await
        .map_err(read)?;
    let uri = client
        .backchannel_logout_uri
        .ok_or_else(|| gone("the client no longer has a backchannel_logout_uri".into()))?;
    let realm = store.get_realm(&d.realm).await.map_err(read)?;
    Ok((uri, realm.settings.backchannel_allow_http))
}

/// POSTs the logout token form-encoded; 200 and 204 count as delivered.
async fn post(
    http: &reqwest::Client,
    url: reqwest::Url,
    token: &str,
) -> Result<(), AttemptFailure> {
    let response = http
        .post(url)
        .form(&[("logout_token", token)])
        .send()
        .await
        .map_err(|e| AttemptFailure::of_request(&e))?;
    match response.status().as_u16() {
        200 | 204 => Ok(()),
        status => Err(AttemptFailure::new(
            Category::Status(status),
            format!("the client answered HTTP {status}"),
        )),
    }
}

fn retry_window_closed(d: &Delivery, config: &DeliveryConfig, now: DateTime<Utc>) -> bool {
    let window = TimeDelta::from_std(config.retry_for).unwrap_or(TimeDelta::MAX);
    now >= d.retry_window_start + window
}

/// Delay before attempt `n + 1` after `n` failures: doubling from `first_backoff`, capped at
/// `max_backoff`, with jitter that spreads it over its upper half.
fn backoff(config: &DeliveryConfig, failures: u32) -> TimeDelta {
    let doubling = 2u32.saturating_pow(failures.saturating_sub(1).min(30));
    let full = config
        .first_backoff
        .saturating_mul(doubling)
        .min(config.max_backoff);
    let mut r = [0u8; 4];
    let jitter = match getrandom::getrandom(&mut r) {
        Ok(()) => f64::from(u32::from_be_bytes(r)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    TimeDelta::from_std(full.mul_f64(0.5 + jitter / 2.0)).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let config = DeliveryConfig {
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            ..Default::default()
        };
        for (failures, full) in [
            (1, 2_000),
            (2, 4_000),
            (3, 8_000),
            (10, 60_000),
            (40, 60_000),
        ] {
            let d = backoff(&config, failures).num_milliseconds();
            assert!(
                (full / 2..=full).contains(&d),
                "{failures} failures: {d} ms, expected within [{}, {full}]",
                full / 2
            );
        }
    }
}
