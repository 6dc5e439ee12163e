//! What server functions get from the server through context.

use service::SessionService;

use crate::server_fns::auth::ssr::CookiePolicy;

/// The handles server functions need; provided by the server with `provide_context`.
#[derive(Clone)]
pub struct AppState {
    /// The one application layer.
    pub service: SessionService,
    /// How the dashboard session cookie is sent.
    pub cookie: CookiePolicy,
}
