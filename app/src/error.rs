//! The one error type of the dashboard's server functions, with the HTTP status it is answered
//! with. Pages show it through one error boundary ([`crate::components::loaded::Loaded`]); forms
//! show its message next to themselves.

use leptos::server_fn::error::{FromServerFnError, ServerFnError, ServerFnErrorErr};
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::{Deserialize, Serialize};

/// Why a server function failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AppError {
    /// Nobody is signed in, or the dashboard session ended (401).
    #[error("You are not signed in.")]
    NotSignedIn,
    /// The request was refused (a 4xx, or 503 when the server is busy): wrong password,
    /// throttled, no such realm or session, invalid input, the administrator's own session...
    #[error("{message}")]
    Refused {
        status: u16,
        /// A stable machine-readable reason, such as `realm_not_found`.
        code: String,
        message: String,
    },
    /// A failure on the server's side (500): the message names only the request id under which
    /// the server's log has the details.
    #[error("{message}")]
    Internal { message: String },
    /// The call itself failed: the server was unreachable, or the arguments or the answer could
    /// not be decoded.
    #[error("{0}")]
    Call(ServerFnErrorErr),
}

impl AppError {
    /// The HTTP status the server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::NotSignedIn => 401,
            AppError::Refused { status, .. } => *status,
            AppError::Internal { .. } => 500,
            AppError::Call(
                ServerFnErrorErr::Args(_)
                | ServerFnErrorErr::MissingArg(_)
                | ServerFnErrorErr::Deserialization(_),
            ) => 400,
            AppError::Call(_) => 500,
        }
    }
}

impl From<ServerFnErrorErr> for AppError {
    fn from(e: ServerFnErrorErr) -> Self {
        AppError::Call(e)
    }
}

impl FromServerFnError for AppError {
    type Encoder = AppErrorEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Call(value)
    }
}

/// The wire form of [`AppError`]: the framework's own `Kind|detail` text, with the dashboard's
/// errors as `WrappedServerFn|<json>`. Whatever reads server-function errors generically (the
/// server's middleware that answers undecodable arguments with 400) keeps reading them.
pub struct AppErrorEncoding;

/// The framework's kind for an application's own error.
const APP_KIND: &str = "WrappedServerFn|";

impl ContentType for AppErrorEncoding {
    const CONTENT_TYPE: &'static str = "text/plain";
}

impl FormatType for AppErrorEncoding {
    const FORMAT_TYPE: Format = Format::Text;
}

impl Encodes<AppError> for AppErrorEncoding {
    type Error = serde_json::Error;

    fn encode(output: &AppError) -> Result<Bytes, Self::Error> {
        Ok(match output {
            AppError::Call(e) => <ServerFnError>::from_server_fn_error(e.clone()).ser(),
            e => Bytes::from(format!("{APP_KIND}{}", serde_json::to_string(e)?)),
        })
    }
}

impl Decodes<AppError> for AppErrorEncoding {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<AppError, Self::Error> {
        if let Some(json) = bytes.strip_prefix(APP_KIND.as_bytes()) {
            return serde_json::from_slice(json);
        }
        Ok(AppError::Call(match <ServerFnError>::de(bytes) {
            ServerFnError::Registration(m) => ServerFnErrorErr::Registration(m),
            ServerFnError::Request(m) => ServerFnErrorErr::Request(m),
            ServerFnError::Response(m) => ServerFnErrorErr::Response(m),
            ServerFnError::MiddlewareError(m) => ServerFnErrorErr::MiddlewareError(m),
            ServerFnError::Deserialization(m) => ServerFnErrorErr::Deserialization(m),
            ServerFnError::Serialization(m) => ServerFnErrorErr::Serialization(m),
            ServerFnError::Args(m) => ServerFnErrorErr::Args(m),
            ServerFnError::MissingArg(m) => ServerFnErrorErr::MissingArg(m),
            #[allow(deprecated)]
            ServerFnError::ServerError(m) => ServerFnErrorErr::ServerError(m),
            #[allow(deprecated)]
            ServerFnError::WrappedServerError(_) => {
                ServerFnErrorErr::ServerError("unreadable error".into())
            }
        }))
    }
}

/// What the dashboard says when the store cannot answer for now.
pub const UNAVAILABLE: &str =
    "The store cannot answer for now (it is busy, or its database is restarting or failing over). \
     Try again in a moment.";

#[cfg(feature = "ssr")]
mod ssr {
    use super::AppError;
    use service::admins::sign_in::SignInError;
    use sessions::SessionError;

    impl From<SessionError> for AppError {
        fn from(e: SessionError) -> Self {
            if let SessionError::Unavailable(_) = e {
                // Worth trying again: the store is busy, or its database restarting or failing over.
                tracing::warn!(error = %e, request_id = %service::request::request_id(), "store unavailable");
                return AppError::Refused {
                    status: 503,
                    code: e.code().to_owned(),
                    message: super::UNAVAILABLE.to_owned(),
                };
            }
            if e.status() >= 500 {
                tracing::error!(error = %e, request_id = %service::request::request_id(), "server function failed");
                return AppError::Internal {
                    message: service::request::internal_error_message(),
                };
            }
            AppError::Refused {
                status: e.status(),
                code: e.code().to_owned(),
                message: e.to_string(),
            }
        }
    }

    impl From<SignInError> for AppError {
        fn from(e: SignInError) -> Self {
            let code = match &e {
                SignInError::Store(_) => "",
                SignInError::Wrong => "wrong_credentials",
                SignInError::Disabled => "admin_disabled",
                SignInError::Throttled { .. } => "throttled",
                SignInError::Busy => "busy",
                SignInError::UsernameTooLong => "invalid_username",
            };
            match e {
                SignInError::Store(e) => e.into(),
                e => AppError::Refused {
                    status: e.status(),
                    code: code.to_owned(),
                    message: e.to_string(),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_survive_the_wire() {
        for e in [
            AppError::NotSignedIn,
            AppError::Refused {
                status: 404,
                code: "session_not_found".into(),
                message: "no session 'x' in this realm | really".into(),
            },
            AppError::Internal {
                message: "internal error; request id 7".into(),
            },
            AppError::Call(ServerFnErrorErr::MissingArg("password".into())),
        ] {
            assert_eq!(AppError::de(e.ser()), e);
        }
    }

    #[test]
    fn generic_readers_tell_argument_errors_from_the_rest() {
        let args = AppError::Call(ServerFnErrorErr::Args("bad".into())).ser();
        assert!(matches!(<ServerFnError>::de(args), ServerFnError::Args(_)));
        let internal = AppError::Internal {
            message: "boom".into(),
        }
        .ser();
        // What the server's middleware turns into a 400: not this one.
        assert!(!matches!(
            <ServerFnError>::de(internal),
            ServerFnError::Args(_)
                | ServerFnError::MissingArg(_)
                | ServerFnError::Deserialization(_)
        ));
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn an_unavailable_store_is_a_503_worth_trying_again() {
        let e = AppError::from(sessions::SessionError::Unavailable(
            "PostgreSQL: connection closed".into(),
        ));
        assert_eq!(e.status(), 503);
        assert!(matches!(&e, AppError::Refused { code, message, .. }
            if code == "store_unavailable" && message == UNAVAILABLE));
        // A failure of the store itself stays an internal error, its details in the log.
        let e = AppError::from(sessions::SessionError::Storage("disk full".into()));
        assert_eq!(e.status(), 500);
    }

    #[test]
    fn statuses() {
        assert_eq!(AppError::NotSignedIn.status(), 401);
        assert_eq!(
            AppError::Call(ServerFnErrorErr::MissingArg("x".into())).status(),
            400
        );
    }
}
