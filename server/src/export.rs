//! The dashboard's export download: the API's export (`api::export`) for a signed-in
//! administrator, who has a cookie rather than an API key.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use api::error::ApiQuery;
use api::export::{ended_export_response, export_response, EndedExportParams, ExportParams};

use crate::live::{not_signed_in, LiveState};

/// `GET /export/realms/{realm}/sessions?format=csv|jsonl&<filters>`: every session the filters
/// match, as a download; audited under the administrator's name.
pub async fn download(
    State(live): State<LiveState>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> Response {
    let Some(actor) = live.admin(&headers).await else {
        return not_signed_in();
    };
    match export_response(&live.service, &realm, &params, &actor).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// `GET /export/realms/{realm}/ended?format=csv|jsonl&<filters>`: every ended session the
/// filters match, as a download; audited under the administrator's name.
pub async fn download_ended(
    State(live): State<LiveState>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<EndedExportParams>,
) -> Response {
    let Some(actor) = live.admin(&headers).await else {
        return not_signed_in();
    };
    match ended_export_response(&live.service, &realm, &params, &actor).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}
