//! Server functions: the dashboard's only way to the session service. Every one of them but
//! sign-in requires a signed-in administrator, and the service checks what their role permits.
//! They fail with [`crate::error::AppError`].

pub mod admins;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod clients;
pub mod deliveries;
pub mod ended;
pub mod overview;
pub mod sessions;
pub mod streams;
pub mod users;

#[cfg(feature = "ssr")]
mod ssr {
    use leptos::prelude::*;
    use service::SessionService;

    use crate::error::AppError;
    use crate::state::AppState;

    /// The server's handles, from the context it provides.
    pub fn state() -> Result<AppState, AppError> {
        use_context::<AppState>().ok_or_else(|| {
            tracing::error!("the server provided no state to server functions");
            failed(AppError::Internal {
                message: service::request::internal_error_message(),
            })
        })
    }

    /// The service every server function calls.
    pub fn service() -> Result<SessionService, AppError> {
        Ok(state()?.service)
    }

    /// The error as the server function's answer: the response gets the error's HTTP status
    /// (server functions answer 500 otherwise).
    pub fn failed(e: impl Into<AppError>) -> AppError {
        let e = e.into();
        if let (Some(response), Ok(status)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            axum::http::StatusCode::from_u16(e.status()),
        ) {
            response.set_status(status);
            if status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
                response.insert_header(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static(service::request::RETRY_AFTER_SECONDS),
                );
            }
        }
        e
    }

    /// The realms an administrator works with (not the server's reserved `_` realms), and the
    /// one asked for, else the first.
    pub async fn user_realms(
        service: &SessionService,
        asked: Option<String>,
    ) -> Result<(Vec<sessions::Realm>, Option<String>), AppError> {
        let realms = service.list_realms(false).await.map_err(failed)?;
        let realm = asked
            .filter(|r| !r.is_empty())
            .or_else(|| realms.first().map(|r| r.name.clone()));
        Ok((realms, realm))
    }
}
