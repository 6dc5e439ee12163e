//! Push delivery (RFC 8935) of a stream's queued events, for the delivery worker: each attempt
//! signs the delivery's SET (the same `jti` every time) and POSTs it to the stream's endpoint as
//! configured at that moment, held to the same target rules as back-channel logout URIs.

use chrono::Utc;
use sessions::signal::{StreamDelivery, StreamStatus, STREAM_UPDATED_REASON};
use sessions::Delivery;

use super::set::{self, MEDIA_TYPE, TOKEN_TYPE};
use crate::backchannel::failure::{AttemptFailure, Category};
use crate::backchannel::Backchannel;

/// Sends a stream's delivery; answers the SET's `jti` and how it went. A deleted stream, or a
/// disabled one (but for the event that tells it so), gives the delivery up.
pub async fn send(
    backchannel: &Backchannel,
    http: &reqwest::Client,
    d: &Delivery,
    stream_id: &str,
) -> (String, Result<(), AttemptFailure>) {
    let jti = set::jti_of(d);
    let gone = |why: &str| Err(AttemptFailure::new(Category::StreamGone, why));
    let Some(stream) = backchannel.streams.get(stream_id) else {
        return (jti, gone("the stream was deleted"));
    };
    if stream.status == StreamStatus::Disabled && d.reason != STREAM_UPDATED_REASON {
        return (jti, gone("the stream is disabled"));
    }
    if !stream.covers(&d.realm) {
        return (jti, gone("the stream no longer covers the realm"));
    }
    let StreamDelivery::Push {
        endpoint_url,
        authorization_header,
    } = &stream.delivery
    else {
        // Polled since it was queued: the receiver fetches it.
        let polled = AttemptFailure::new(Category::InvalidUri, "the stream is polled now");
        return (jti, Err(polled));
    };
    let url = match reqwest::Url::parse(endpoint_url) {
        Ok(url) => url,
        Err(e) => {
            let detail = format!("{endpoint_url}: {e}");
            return (jti, Err(AttemptFailure::new(Category::InvalidUri, detail)));
        }
    };
    if let Err(refusal) = backchannel.allow_hosts.check(&url, false) {
        return (jti, Err(refusal.into()));
    }
    let claims = set::for_delivery(
        &backchannel.transmitter,
        &backchannel.issuer,
        &stream,
        d,
        Utc::now(),
    );
    let token = match backchannel.keys.sign_typed(TOKEN_TYPE, &claims) {
        Ok(token) => token,
        Err(e) => {
            let failed = AttemptFailure::new(Category::SigningFailed, e.to_string());
            return (jti, Err(failed));
        }
    };
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE)
        .header(reqwest::header::ACCEPT, "application/json")
        .body(token);
    if let Some(authorization) = authorization_header {
        request = request.header(reqwest::header::AUTHORIZATION, authorization);
    }
    let sent = match request.send().await {
        Err(e) => Err(AttemptFailure::of_request(&e)),
        // RFC 8935 §2.2: 202 Accepted; any other success is taken as delivered too.
        Ok(response) if response.status().is_success() => Ok(()),
        // The body is not read: a receiver could make it as long as it likes.
        Ok(response) => {
            let status = response.status().as_u16();
            let detail = format!("the receiver answered HTTP {status}");
            Err(AttemptFailure::new(Category::Status(status), detail))
        }
    };
    (jti, sent)
}
