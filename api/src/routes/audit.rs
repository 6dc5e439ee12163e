//! The audit log (scope `sessions:admin`): every administrative action, newest first.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sessions::AuditEntry;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Admin;
use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::ApiState;

/// Which page of the audit log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Page size, 1 to 1000, default 25.
    #[param(minimum = 1, maximum = 1000)]
    pub count: Option<u32>,
    /// The `results_token` of the page last seen: the next (older) page.
    #[param(pattern = "^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$")]
    pub results_token: Option<String>,
}

/// One page of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub results: Vec<AuditEntry>,
    pub results_token: Option<String>,
    pub has_next: bool,
}

fn bad_token() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_results_token",
        "the results token is malformed; start again from the first page",
    )
}

/// Administrative actions, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "administration", params(AuditQuery),
    responses((status = 200, body = AuditPage)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn list_audit(
    _caller: Admin,
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let count = q.count.map_or(25, |n| n as usize);
    let before = match &q.results_token {
        None => None,
        Some(t) => {
            let bytes = URL_SAFE_NO_PAD.decode(t).map_err(|_| bad_token())?;
            Some(u64::from_be_bytes(
                bytes.try_into().map_err(|_| bad_token())?,
            ))
        }
    };
    let page = state.service.audit_log(before, count).await?;
    let results_token = page
        .entries
        .last()
        .map(|(id, _)| URL_SAFE_NO_PAD.encode(id.to_be_bytes()));
    Ok(Json(AuditPage {
        results: page.entries.into_iter().map(|(_, e)| e).collect(),
        results_token,
        has_next: page.has_next,
    }))
}
