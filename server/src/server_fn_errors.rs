//! Server functions answer every error with status 500 unless the function sets another; an
//! error in decoding the caller's arguments is the caller's, so it becomes a 400.

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use leptos::server_fn::error::{FromServerFnError, ServerFnError};

/// Largest server-function error body looked at.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// Middleware over the dashboard's routes: a server function's 500 for arguments it could not
/// decode (or that were missing) is answered as 400.
pub async fn caller_errors_are_4xx(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key("serverfnerror")
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BYTES).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let error: ServerFnError = FromServerFnError::de(bytes.clone());
    if matches!(
        error,
        ServerFnError::Args(_) | ServerFnError::MissingArg(_) | ServerFnError::Deserialization(_)
    ) {
        parts.status = StatusCode::BAD_REQUEST;
    }
    Response::from_parts(parts, Body::from(bytes))
}
