//! What the service counts, through the `metrics` facade; the HTTP layer installs the recorder
//! and renders it.

/// Records sessions removed by the expiry reaper.
pub fn record_reaped(n: usize) {
    metrics::counter!("sessions_reaped_total").increment(n as u64);
}

/// Counts back-channel logout delivery attempts by outcome.
pub fn record_delivery(result: &sessions::AttemptResult) {
    let outcome = match result {
        sessions::AttemptResult::Delivered => "delivered",
        sessions::AttemptResult::Retry { .. } => "retry",
        sessions::AttemptResult::GiveUp { .. } => "failed",
    };
    metrics::counter!("backchannel_delivery_attempts_total", "outcome" => outcome).increment(1);
}
