//! What server functions get from the server through context.

use std::sync::Arc;

use api::{AdminAccounts, Backchannel};
use sessions::store::SessionStore;

/// The handles server functions need; provided by the server with `provide_context`.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn SessionStore>,
    pub admins: Arc<AdminAccounts>,
    /// Woken when the dashboard queues a delivery retry.
    pub backchannel: Arc<Backchannel>,
}
