//! The request being served, as the HTTP guard records it: its id (which every log line and
//! every generic 500 carries) and the client's address (for sign-in throttling and the audit
//! log). Plain task-local data, so the service reads it without knowing about HTTP.

use std::net::IpAddr;

/// `Retry-After` of every 503 (the JSON API's and the dashboard's): seconds to wait before
/// trying again.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// Who made the request and under which id it is logged.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// Random id, sent back as `X-Request-Id` and carried by every log line of the request.
    pub id: String,
    /// The client's address, as the server's trusted-proxy rule decides.
    pub client: Option<IpAddr>,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// Runs `f` as the request `context`.
pub async fn scope<F: std::future::Future>(context: RequestContext, f: F) -> F::Output {
    CONTEXT.scope(context, f).await
}

/// The request being served by the current task, if any.
pub fn current() -> Option<RequestContext> {
    CONTEXT.try_with(Clone::clone).ok()
}

/// The id of the request being served, or `-` outside one.
pub fn request_id() -> String {
    current().map_or_else(|| "-".to_owned(), |c| c.id)
}

/// The message of every failure on the server's side: no details, only where the log has them.
pub fn internal_error_message() -> String {
    internal_error_message_for(&request_id())
}

/// [`internal_error_message`] naming the request `id`: for code that knows the id but runs
/// outside the request's task (the guard, once the handler has answered).
pub fn internal_error_message_for(id: &str) -> String {
    format!("internal error; the server's log has the details under request id {id}")
}
