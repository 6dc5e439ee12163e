//! Back-channel logout deliveries (scope `sessions:admin`): what was sent to which client, what
//! failed and why, and "retry now".

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use sessions::store::MAX_LISTED_DELIVERIES;
use sessions::{Delivery, DeliveryPage, DeliveryStatus};
use utoipa::IntoParams;

use super::blocking;
use crate::auth::Admin;
use crate::error::{ApiError, ApiPath, ApiQuery, ApiResult, ErrorBody, RealmPath};
use crate::ApiState;

/// Which deliveries to list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    /// `pending`, `delivered` or `failed`; all when absent.
    pub status: Option<String>,
    /// Only deliveries older than this id (the `next_before` of the previous page).
    pub before: Option<u64>,
    /// Page size, 1 to 500, default 50.
    pub count: Option<usize>,
}

/// The path of a route naming one delivery.
#[derive(Deserialize)]
pub struct DeliveryPath {
    pub id: u64,
}

/// A page of the realm's back-channel logout deliveries, newest first, with counts per status.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/backchannel-deliveries", tag = "back-channel logout",
    params(("realm" = String, Path), DeliveryFilter),
    responses((status = 200, body = DeliveryPage), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn list_deliveries(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiQuery(filter): ApiQuery<DeliveryFilter>,
) -> ApiResult<Json<DeliveryPage>> {
    let status = match filter.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("status must be pending, delivered or failed, not '{s}'"),
            )
        })?),
    };
    let count = filter.count.unwrap_or(50);
    if !(1..=MAX_LISTED_DELIVERIES).contains(&count) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("count must be 1 to {MAX_LISTED_DELIVERIES}"),
        ));
    }
    let page = blocking(move || {
        state
            .store
            .list_deliveries(&realm, status, filter.before, count)
    })
    .await?;
    Ok(Json(page))
}

/// Attempt a pending or failed delivery now, with a fresh retry window.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/backchannel-deliveries/{id}/retry", tag = "back-channel logout",
    params(("realm" = String, Path), ("id" = u64, Path)),
    responses((status = 200, body = Delivery), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn retry_delivery(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiPath(path): ApiPath<DeliveryPath>,
) -> ApiResult<Json<Delivery>> {
    let store = state.store.clone();
    let delivery =
        blocking(move || store.retry_delivery(&realm, path.id, &caller.actor, Utc::now())).await?;
    state.backchannel.wake.notify_one();
    Ok(Json(delivery))
}
