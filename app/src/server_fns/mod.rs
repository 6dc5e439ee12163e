//! Server functions: the dashboard's only way to the session service. Every one of them but
//! sign-in requires a signed-in administrator.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod clients;
pub mod deliveries;
pub mod sessions;

/// The error text server functions answer when nobody is signed in.
pub const NOT_SIGNED_IN: &str = "You are not signed in.";

#[cfg(feature = "ssr")]
mod ssr {
    use leptos::prelude::*;
    use service::SessionService;

    use crate::state::AppState;

    /// The server's handles, from the context it provides.
    pub fn state() -> Result<AppState, ServerFnError> {
        use_context::<AppState>().ok_or_else(|| {
            tracing::error!("the server provided no state to server functions");
            internal()
        })
    }

    /// The service every server function calls.
    pub fn service() -> Result<SessionService, ServerFnError> {
        Ok(state()?.service)
    }

    /// An error answer with a fitting HTTP status (server functions answer 500 otherwise).
    pub fn fail(status: u16, message: impl std::fmt::Display) -> ServerFnError {
        if let (Some(response), Ok(status)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            axum::http::StatusCode::from_u16(status),
        ) {
            response.set_status(status);
        }
        ServerFnError::new(message.to_string())
    }

    /// A session-service error as the message the dashboard shows, with its status. A failure
    /// on the server's side shows only the request id; the details go to the log.
    pub fn shown(e: sessions::SessionError) -> ServerFnError {
        if e.status() >= 500 {
            tracing::error!(error = %e, request_id = %service::request::request_id(), "server function failed");
            return internal();
        }
        fail(e.status(), e)
    }

    /// The answer to a failure on the server's side.
    pub fn internal() -> ServerFnError {
        fail(500, service::request::internal_error_message())
    }

    /// The realms an administrator works with (not the server's reserved `_` realms), and the
    /// one asked for, else the first.
    pub fn user_realms(
        service: &SessionService,
        asked: Option<String>,
    ) -> Result<(Vec<sessions::Realm>, Option<String>), ServerFnError> {
        let realms = service.list_realms(false).map_err(shown)?;
        let realm = asked
            .filter(|r| !r.is_empty())
            .or_else(|| realms.first().map(|r| r.name.clone()));
        Ok((realms, realm))
    }
}
