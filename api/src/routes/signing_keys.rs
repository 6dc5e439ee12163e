//! The logout-token signing keys: the public JWKS, and rotation (scope `sessions:admin`).

use axum::extract::State;
use axum::Json;
use service::RotatedKeys;

use crate::auth::Admin;
use crate::error::ApiResult;
use crate::ApiState;

/// The public keys that verify logout tokens (JWKS, RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "back-channel logout",
    responses((status = 200, content_type = "application/json", body = Object,
        description = "The JSON Web Key Set (its schema is `JwkSet`)")))]
pub async fn jwks(State(state): State<ApiState>) -> Json<jsonwebtoken::jwk::JwkSet> {
    Json(state.service.jwks())
}

/// Make a new logout-token signing key current; the old one stays published until its tokens
/// expire.
#[utoipa::path(post, path = "/api/v1/signing-keys/rotate", tag = "back-channel logout",
    responses((status = 200, body = RotatedKeys)),
    security(("api_key" = ["sessions:admin"])))]
pub async fn rotate(caller: Admin, State(state): State<ApiState>) -> ApiResult<Json<RotatedKeys>> {
    Ok(Json(
        state.service.rotate_signing_key(&caller.actor()).await?,
    ))
}
