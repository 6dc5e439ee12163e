//! The logout-token signing keys: the public JWKS, and rotation (scope `sessions:admin`).

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::blocking;
use crate::auth::Admin;
use crate::error::{ApiResult, ErrorBody};
use crate::ApiState;

/// The signing keys after a rotation.
#[derive(Serialize, ToSchema)]
pub struct RotatedKeys {
    /// The key that signs from now on.
    pub current_kid: String,
    /// Every key published at `/.well-known/jwks.json`, the retired one included until the tokens
    /// it signed have expired.
    pub published_kids: Vec<String>,
}

/// The public keys that verify logout tokens (JWKS, RFC 7517).
pub async fn jwks(State(state): State<ApiState>) -> Json<jsonwebtoken::jwk::JwkSet> {
    Json(state.backchannel.keys.jwks(Utc::now()))
}

/// Make a new logout-token signing key current; the old one stays published until its tokens
/// expire.
#[utoipa::path(post, path = "/api/v1/signing-keys/rotate", tag = "back-channel logout",
    responses((status = 200, body = RotatedKeys), (status = "4XX", body = ErrorBody)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn rotate(_caller: Admin, State(state): State<ApiState>) -> ApiResult<Json<RotatedKeys>> {
    let keys = state.backchannel.keys.clone();
    let current_kid = blocking(move || keys.rotate(Utc::now())).await?;
    let published_kids = state
        .backchannel
        .keys
        .jwks(Utc::now())
        .keys
        .into_iter()
        .filter_map(|k| k.common.key_id)
        .collect();
    Ok(Json(RotatedKeys {
        current_kid,
        published_kids,
    }))
}
