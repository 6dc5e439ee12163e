//! The overview (scope `sessions:read` or `sessions:admin`): a realm's activity at a glance, from time-bucketed
//! counters.

use axum::extract::State;
use axum::Json;
use sessions::anomaly::AnomalyCount;
use sessions::stats::Overview;

use crate::auth::Admin;
use crate::error::{ApiResult, RealmPath};
use crate::ApiState;

/// A realm's activity: its sessions now; the last 24 hours hour by hour and the last 30 days
/// (UTC) day by day, each bucket with its sign-ins, sessions ended by reason (`logout`,
/// `expired`, `revoked` by an administrator, `realm_sign_out`, `evicted` by the per-subject
/// quota), back-channel delivery attempts by outcome (`delivered`, `failed` and retried,
/// `gave_up`) and the sessions at its end; and the sessions of each registered client. Buckets
/// are oldest first; the last one is the current hour or day and ends at `generated_at`.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/overview", tag = "realms",
    params(RealmPath),
    responses((status = 200, body = Overview)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn get_overview(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
) -> ApiResult<Json<Overview>> {
    Ok(Json(state.service.overview(&realm).await?))
}

/// How many of the realm's sessions have each anomaly (`country_spread` over 24 hours,
/// `new_device`, `country_changed`; see the listing's `anomaly` filter). Reads the realm's
/// sessions: slower than the overview at millions of sessions.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/sessions/anomalies", tag = "sessions",
    params(RealmPath),
    responses((status = 200, body = Vec<AnomalyCount>)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn get_anomaly_counts(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
) -> ApiResult<Json<Vec<AnomalyCount>>> {
    Ok(Json(state.service.anomaly_counts(&realm).await?))
}
