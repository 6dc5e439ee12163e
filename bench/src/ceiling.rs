//! The ceiling: an axum handler that does nothing, built with the same release profile and
//! allocator as everything else, so its rate is what HTTP alone costs on this machine.

use axum::routing::get;
use axum::Router;

/// The path of the do-nothing handler (`GET` and `POST`).
pub const PATH: &str = "/nothing";

/// `GET`/`POST /nothing` answering an empty `200`; the body of a `POST` is not read.
pub fn router() -> Router {
    Router::new().route(PATH, get(nothing).post(nothing))
}

async fn nothing() {}

/// Serves the ceiling on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}
