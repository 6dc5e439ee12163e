//! Exports as a streamed download: of a realm's sessions (the API's
//! `GET /api/v1/realms/{realm}/sessions/export` and the dashboard's cookie-authenticated route
//! answer with [`export_response`]) and of its ended sessions ([`ended_export_response`]). Rows
//! are written a page at a time as the client reads them.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{stream, StreamExt};
use serde::Deserialize;
use service::{Actor, ExportFormat, ExportPages, SessionService};
use sessions::{EndedQuery, SessionFilters, SessionQuery, SortKey};

use crate::error::ApiError;

/// An export's query string: the format and the listing's filters and sort (no page size or
/// position: an export is every match).
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    pub format: ExportFormat,
    #[serde(flatten)]
    pub filters: SessionFilters,
    #[serde(default)]
    pub sort: SortKey,
}

impl ExportParams {
    /// The listing query these parameters describe.
    pub fn query(&self) -> SessionQuery {
        SessionQuery {
            filters: self.filters.clone(),
            sort: self.sort,
            ..Default::default()
        }
    }
}

/// Starts the export (a bad filter or an unknown realm is an error answer before any row) and
/// answers with its rows as a download. A failure part way ends the body early (the download is
/// incomplete, the error in the server's log).
pub async fn export_response(
    service: &SessionService,
    realm: &str,
    params: &ExportParams,
    actor: &Actor,
) -> Result<Response, ApiError> {
    let export = service
        .export(realm, params.query(), params.format, actor)
        .await?;
    download(params.format, "sessions", realm, export)
}

/// An export of ended sessions: its format and the history's filters (as the history listing
/// reads them).
#[derive(Deserialize, Clone, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EndedExportParams {
    /// `csv` (a header row, then one row per ended session: sid, subject_id, display_name, ip, browser, os, device_type, created_at, last_access_at, ended_at, how, actor, reason, client_ids and their notices, each separated by spaces) or `jsonl` (one ended-session object per line)
    pub format: ExportFormat,
    /// Exact subject id (empty: no filter)
    #[serde(default)]
    #[param(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub subject_id: Option<String>,
    /// Exact session id, the 36-character form of a UUID (empty: no filter)
    #[serde(default)]
    #[param(
        pattern = r"^$|^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
    )]
    pub sid: Option<String>,
    /// How the sessions ended: logout, expired, revoked, realm_sign_out or evicted (empty: no filter)
    #[serde(default)]
    #[param(pattern = r"^(|logout|expired|revoked|realm_sign_out|evicted)$")]
    pub how: Option<String>,
}

/// As [`export_response`], for the ended sessions the filters match, newest end first.
pub async fn ended_export_response(
    service: &SessionService,
    realm: &str,
    params: &EndedExportParams,
    actor: &Actor,
) -> Result<Response, ApiError> {
    let query = EndedQuery {
        subject_id: params.subject_id.clone(),
        sid: params.sid.clone(),
        how: params.how.clone(),
        ..Default::default()
    };
    let export = service
        .export_ended(realm, query, params.format, actor)
        .await?;
    download(params.format, "ended-sessions", realm, export)
}

/// The rows of an export under way as a download named `{what}-{realm}.{format}`.
fn download<P: ExportPages>(
    format: ExportFormat,
    what: &str,
    realm: &str,
    export: P,
) -> Result<Response, ApiError> {
    let header = stream::iter(
        Some(Ok(Bytes::from(format.header::<P::Row>())))
            .filter(|h| !matches!(h, Ok(b) if b.is_empty())),
    );
    let rows = stream::unfold(Some(export), move |state| async move {
        let mut export = state?;
        match export.next_page().await {
            Ok(Some(page)) => Some((Ok(Bytes::from(format.encode(&page))), Some(export))),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "an export stopped part way");
                Some((Err(std::io::Error::other(e.to_string())), None))
            }
        }
    });
    let disposition = format!("attachment; filename=\"{}\"", format.file_name(what, realm));
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::try_from(disposition).map_err(|_| {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", "bad realm name")
                })?,
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from_stream(header.chain(rows)),
    )
        .into_response())
}
