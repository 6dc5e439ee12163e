//! The API's routes, one module per area.

mod admin;
mod api_keys;
mod audit;
mod clients;
mod data_plane;
mod deliveries;
mod grants;
pub mod ops;
mod overview;
mod realms;
mod signals;
pub mod signing_keys;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ApiState;

/// Adds every documented route (their time limits are the request guard's, see
/// [`crate::guard`]).
pub fn register(router: OpenApiRouter<ApiState>) -> OpenApiRouter<ApiState> {
    router
        .routes(routes!(admin::end_sessions))
        .routes(routes!(admin::end_all_sessions))
        .routes(routes!(admin::export_sessions))
        .routes(routes!(admin::list_ended_sessions))
        .routes(routes!(admin::export_ended_sessions))
        .routes(routes!(data_plane::create_session, admin::list_sessions))
        .routes(routes!(data_plane::validate_session))
        .routes(routes!(data_plane::logout_session))
        .routes(routes!(data_plane::add_client))
        .routes(routes!(
            data_plane::read_properties,
            data_plane::update_properties
        ))
        .routes(routes!(admin::get_session))
        .routes(routes!(realms::put_realm, realms::get_realm))
        .routes(routes!(realms::list_realms))
        .routes(routes!(overview::get_overview))
        .routes(routes!(overview::get_anomaly_counts))
        .routes(routes!(audit::list_audit))
        .routes(routes!(
            clients::put_client,
            clients::get_client,
            clients::delete_client
        ))
        .routes(routes!(clients::list_clients))
        .routes(routes!(grants::create_grant, grants::list_grants))
        .routes(routes!(grants::introspect))
        .routes(routes!(grants::revoke_token))
        .routes(routes!(grants::revoke_subject_grants))
        .routes(routes!(deliveries::list_deliveries))
        .routes(routes!(deliveries::retry_delivery))
        .routes(routes!(signing_keys::rotate))
        .routes(routes!(api_keys::list_api_keys, api_keys::create_api_key))
        .routes(routes!(api_keys::revoke_api_key))
        .routes(routes!(signals::metadata))
        .routes(routes!(
            signals::create_stream,
            signals::read_streams,
            signals::update_stream,
            signals::replace_stream,
            signals::delete_stream
        ))
        .routes(routes!(signals::stream_status, signals::set_stream_status))
        .routes(routes!(signals::verify_stream))
        .routes(routes!(signals::poll))
        .routes(routes!(signals::list_streams))
        .routes(routes!(signals::set_status_as_admin))
        .merge(deprecated(OpenApiRouter::new()))
}

/// The former names of calls, kept for clients written against them (marked deprecated in the
/// OpenAPI document).
#[allow(deprecated)]
fn deprecated(router: OpenApiRouter<ApiState>) -> OpenApiRouter<ApiState> {
    router
        .routes(routes!(admin::remove_sessions))
        .routes(routes!(admin::logout_all))
}
