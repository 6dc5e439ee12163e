//! What server functions get from the server through context.

use std::sync::Arc;

use api::admins::sign_in::SignIns;
use api::{ApiKeys, Backchannel};
use sessions::store::SessionStore;

use crate::server_fns::auth::ssr::CookiePolicy;

/// The handles server functions need; provided by the server with `provide_context`.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn SessionStore>,
    /// Administrator accounts and the way in.
    pub sign_ins: Arc<SignIns>,
    /// API keys, managed from the dashboard.
    pub keys: Arc<ApiKeys>,
    /// Woken when the dashboard queues a delivery retry.
    pub backchannel: Arc<Backchannel>,
    /// How the dashboard session cookie is sent.
    pub cookie: CookiePolicy,
}
