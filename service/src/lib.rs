//! The application layer of the session service: every rule once, over the storage trait.
//! The JSON API (`api`) and the dashboard's server functions (`app`) are thin adapters that
//! parse, call one [`SessionService`] method, and shape the answer.
//!
//! - [`SessionService`]: realms, clients, sessions, grants, deliveries, audit, keys and
//!   administrators, by concept in `ops/`;
//! - [`admins`]: administrator accounts and the throttled way in;
//! - [`api_keys`]: the keys API callers present;
//! - [`backchannel`]: logout-token signing keys, the target rules and the delivery worker;
//! - [`signals`]: the OpenID Shared Signals transmitter (streams, SETs, push and poll);
//! - [`request`]: who is being served right now (request id, client address);
//! - [`roles`]: who may do what, checked by every method that changes something;
//! - [`metrics`]: what the service counts.

pub mod admins;
pub mod api_keys;
pub mod backchannel;
pub mod metrics;
pub mod network;
mod ops;
mod reload;
pub mod request;
pub mod roles;
pub mod signals;

use std::sync::Arc;

use sessions::store::SessionStore;
use sessions::{Result, SessionError};

pub use ops::audit::AuditPage;
pub use ops::deliveries::parse_delivery_status;
pub use ops::export::{
    EndedExport, ExportFormat, ExportPages, ExportRow, SessionExport, CSV_COLUMNS,
    ENDED_CSV_COLUMNS,
};
pub use ops::keys::RotatedKeys;
pub use ops::users::{SubjectDeliveries, SUBJECT_DELIVERY_SCAN};
pub use reload::SHARED_RELOAD_EVERY;

use admins::sign_in::SignIns;
use api_keys::ApiKeys;
use backchannel::Backchannel;

/// Who acts: recorded in the audit log, and rules depend on it (what its role permits, see
/// [`roles`]; an administrator may not end the dashboard session they are using).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A caller of the JSON API: its key's name and the role its scopes grant (none for a key
    /// that only issues sessions).
    ApiKey {
        name: String,
        role: Option<roles::Role>,
    },
    /// A signed-in administrator, the dashboard session they act from, and their role.
    Admin {
        username: String,
        sid: String,
        role: roles::Role,
    },
    /// The server itself (start-up settings, the reaper).
    Server,
    /// An operator at the command line.
    Cli,
}

impl Actor {
    /// The caller of the JSON API presenting `key`.
    pub fn receiver(key: &api_keys::ApiKey) -> Actor {
        Actor::ApiKey {
            name: key.name.clone(),
            role: key.role(),
        }
    }

    /// How the audit log names the actor.
    pub fn audit_name(&self) -> String {
        match self {
            Actor::ApiKey { name, .. } => format!("api-key:{name}"),
            Actor::Admin { username, .. } => format!("admin:{username}"),
            Actor::Server => "server".into(),
            Actor::Cli => "cli".into(),
        }
    }
}

/// The one application layer over a store.
#[derive(Clone)]
pub struct SessionService {
    store: Arc<dyn SessionStore>,
    keys: Arc<ApiKeys>,
    sign_ins: Arc<SignIns>,
    backchannel: Arc<Backchannel>,
    geoip: Arc<network::GeoIp>,
}

impl SessionService {
    pub fn new(
        store: Arc<dyn SessionStore>,
        keys: Arc<ApiKeys>,
        admins: Arc<admins::AdminAccounts>,
        backchannel: Arc<Backchannel>,
    ) -> Self {
        let sign_ins = Arc::new(SignIns::new(admins, store.clone()));
        Self {
            store,
            keys,
            sign_ins,
            backchannel,
            geoip: Arc::default(),
        }
    }

    /// Places sessions' addresses with these GeoIP databases.
    pub fn with_geoip(mut self, geoip: network::GeoIp) -> Self {
        self.geoip = Arc::new(geoip);
        self
    }

    /// Whether sessions' addresses are placed (a GeoIP database is open).
    pub fn places_addresses(&self) -> bool {
        self.geoip.is_on()
    }

    /// The store, for the background reaper and delivery worker and for health checks.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The API keys, which authenticate API callers.
    pub fn api_keys(&self) -> &Arc<ApiKeys> {
        &self.keys
    }

    /// Administrators and the way into the dashboard.
    pub fn sign_ins(&self) -> &Arc<SignIns> {
        &self.sign_ins
    }

    /// Logout-token signing and delivery.
    pub fn backchannel(&self) -> &Arc<Backchannel> {
        &self.backchannel
    }

    /// Wakes the delivery worker: something was queued or retried.
    fn wake_deliveries(&self) {
        self.backchannel.wake.notify_one();
    }
}

/// Runs a change as a task of its own, so that once started it runs to its end even if the
/// request that asked for it is dropped (its time limit, a closed connection). Reads are awaited
/// in place: dropping one cancels it (on PostgreSQL, its statement too).
pub(crate) async fn to_the_end<T: Send + 'static>(
    change: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(change)
        .await
        .map_err(|e| SessionError::Storage(format!("a storage task failed: {e}")))?
}
