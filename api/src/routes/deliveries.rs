//! Back-channel logout deliveries (scope `sessions:admin`): what was sent to which client, what
//! failed and why, and "retry now".

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use sessions::{Delivery, DeliveryPage};
use utoipa::IntoParams;

use crate::auth::Admin;
use crate::error::{ApiPath, ApiQuery, ApiResult, ErrorBody, RealmPath};
use crate::ApiState;

/// Which deliveries to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    /// `pending`, `delivered` or `failed`; every status when absent or empty.
    #[param(value_type = Option<String>, pattern = "^(pending|delivered|failed)?$")]
    pub status: Option<String>,
    /// Only deliveries older than this id (the `next_before` of the previous page).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    #[serde(default, deserialize_with = "delivery_id")]
    pub before: Option<u64>,
    /// Page size, 1 to 500, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub count: Option<usize>,
}

/// A delivery id as a query names it: 0 to 2^63 - 1, the range of the document's `int64` (ids
/// are counted from 1 and never come near it).
fn delivery_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        Some(id) if i64::try_from(id).is_err() => Err(serde::de::Error::custom(format!(
            "before must be at most {}",
            i64::MAX
        ))),
        other => Ok(other),
    }
}

/// The path of a route naming one delivery.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeliveryPath {
    /// The delivery's id.
    #[param(minimum = 0)]
    pub id: u64,
}

/// A page of the realm's back-channel logout deliveries, newest first, with counts per status.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/backchannel-deliveries", tag = "back-channel logout",
    params(RealmPath, DeliveryFilter),
    responses((status = 200, body = DeliveryPage)),
    security(("api_key" = ["sessions:read"]), ("api_key" = ["sessions:admin"])))]
pub async fn list_deliveries(
    _caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiQuery(filter): ApiQuery<DeliveryFilter>,
) -> ApiResult<Json<DeliveryPage>> {
    let count = filter.count.unwrap_or(50);
    let status = service::parse_delivery_status(filter.status.as_deref())?;
    let page = state
        .service
        .list_deliveries(&realm, status, filter.before, count)
        .await?;
    Ok(Json(page))
}

/// Attempt a pending or failed delivery now, with a fresh retry window.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/backchannel-deliveries/{id}/retry", tag = "back-channel logout",
    params(RealmPath, DeliveryPath),
    responses((status = 200, body = Delivery),
        (status = 409, body = ErrorBody, description = "The delivery was already delivered (`conflict`)")),
    security(("api_key" = ["sessions:admin"])))]
pub async fn retry_delivery(
    caller: Admin,
    State(state): State<ApiState>,
    RealmPath(realm): RealmPath,
    ApiPath(path): ApiPath<DeliveryPath>,
) -> ApiResult<Json<Delivery>> {
    let delivery = state
        .service
        .retry_delivery(&realm, path.id, &caller.actor())
        .await?;
    Ok(Json(delivery))
}
