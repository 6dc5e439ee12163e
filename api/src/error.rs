//! The API's one error shape, `{"error": {"code": "...", "message": "..."}}`, and extractors that
//! turn every kind of bad input into it.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sessions::SessionError;

/// An error answer: status, stable code, and a message that says what to fix.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The JSON body of every error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_results_token`.
    pub code: String,
    /// What to fix.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send an API key as 'Authorization: Bearer <key>'",
        )
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// A failure on the server's side: the answer says only that, with the request id the log
    /// carries the details under.
    pub fn internal() -> Self {
        Self::internal_for(&service::request::request_id())
    }

    /// [`Self::internal`] naming the request `id`, where the request's task-local context is
    /// not set (see [`service::request::internal_error_message_for`]).
    pub fn internal_for(id: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            service::request::internal_error_message_for(id),
        )
    }

    /// A body over [`crate::MAX_BODY_BYTES`].
    pub fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the request body is larger than {} bytes",
                crate::MAX_BODY_BYTES
            ),
        )
    }

    /// A request that ran past its time limit.
    pub fn timed_out(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timed_out",
            format!(
                "the request did not finish within {} s; a change it started still runs to the \
                 end, and its outcome appears in the audit log",
                limit.as_secs()
            ),
        )
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %e, request_id = %crate::guard::request_id(), "store unavailable");
            return Self::new(
                status,
                e.code(),
                "the store is unavailable for now (busy, or its database restarting or failing \
                 over); try again in a moment (a change cut off while it was being written may \
                 or may not have been made)",
            );
        }
        if status.is_server_error() {
            tracing::error!(error = %e, request_id = %crate::guard::request_id(), "request failed");
            return Self::internal();
        }
        Self {
            status,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3 (and RFC 8936 §3 for the Shared Signals poll endpoint).
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 of this API is worth trying again soon.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(service::request::RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                e.body_text(),
            ),
            JsonRejection::JsonSyntaxError(e) => {
                Self::new(StatusCode::BAD_REQUEST, "malformed_json", e.body_text())
            }
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "missing_content_type",
                "send the body as JSON with 'Content-Type: application/json'",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::body_too_large(),
            other => Self::new(other.status(), "invalid_body", other.body_text()),
        }
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Every body of this API is a JSON object. serde would also read a struct from an
        // array of its fields in order (`[null, null]`), which the document does not allow.
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, crate::MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::body_too_large())?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(Self::Rejection::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "the body must be a JSON object, not an array",
            ));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// A body sent as a form (`application/x-www-form-urlencoded`, as OAuth clients send RFC 7662
/// and RFC 7009 requests) or as JSON.
pub struct ApiFormOrJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiFormOrJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form {
            axum::Form::<T>::from_request(req, state)
                .await
                .map(|f| ApiFormOrJson(f.0))
                .map_err(|r| {
                    Self::Rejection::new(StatusCode::BAD_REQUEST, "invalid_body", r.body_text())
                })
        } else {
            ApiJson::<T>::from_request(req, state)
                .await
                .map(|j| ApiFormOrJson(j.0))
        }
    }
}

/// `axum::extract::Query` whose rejections are [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r: QueryRejection| {
                Self::Rejection::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
            })
    }
}

/// `axum::extract::Path` whose rejections are [`ApiError`]s (a delivery id that is not a
/// number, a client id that is not valid UTF-8).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(invalid_path)
    }
}

fn invalid_path(r: PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text())
}

/// A realm name taken from the path and checked, so a bad name is a 400 that says why.
pub struct RealmPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RealmPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text()))?;
        let realm = params
            .iter()
            .find(|(k, _)| *k == "realm")
            .map(|(_, v)| v)
            .ok_or_else(|| ApiError::not_found("no realm in the path"))?;
        sessions::validate::realm_name(realm)?;
        // A URL cannot address these: clients resolve them as "this" and "the parent" segment.
        if realm == "." || realm == ".." {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "a realm named '.' or '..' cannot be addressed in a URL",
            ));
        }
        if sessions::validate::is_reserved_realm(realm) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "reserved_realm",
                "realm names starting with '_' are reserved for the server",
            ));
        }
        Ok(RealmPath(realm.to_owned()))
    }
}

impl utoipa::IntoParams for RealmPath {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(sessions::MAX_REALM_LEN))
            .pattern(Some(crate::openapi::REALM_PATTERN));
        vec![ParameterBuilder::new()
            .name("realm")
            .parameter_in(ParameterIn::Path)
            .required(utoipa::openapi::Required::True)
            .description(Some(
                "The realm: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', not starting \
                 with '_' (reserved for the server), and neither '.' nor '..'.",
            ))
            .schema(Some(schema))
            .build()]
    }
}

/// The path of a route naming one session.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// The session id (a session's `sid`); an id that names no session is a 404.
    #[param(min_length = 1)]
    pub sid: String,
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_failure_answers_only_internal_error_with_the_request_id() {
        let e = ApiError::from(SessionError::Storage(
            "sled io error: Permission denied at /var/lib/sessions/db".into(),
        ));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.code, "internal_error");
        assert!(e.message.starts_with("internal error"), "{}", e.message);
        assert!(
            !e.message.contains("sled") && !e.message.contains("/var/lib"),
            "{}",
            e.message
        );
    }
}
