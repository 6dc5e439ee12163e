//! The overview: a realm's activity at a glance, from the store's time-bucketed counters (never
//! by scanning sessions).

use chrono::{TimeDelta, Utc};
use sessions::stats::{self, ClientSessions, Overview, Span, OVERVIEW_DAYS, OVERVIEW_HOURS};
use sessions::Result;

use crate::SessionService;

impl SessionService {
    /// The realm's sessions now, its last 24 hours hour by hour and last 30 days day by day
    /// (sign-ins, sessions ended by reason, delivery attempts by outcome, and the sessions at
    /// each bucket's end), and its clients' sessions. Times are as of one reading of the clock,
    /// which the answer carries (`generated_at`).
    pub async fn overview(&self, realm: &str) -> Result<Overview> {
        let now = Utc::now();
        let s = &self.store;
        {
            let session_count = s.get_realm(realm).await?.session_count;
            let hours = s
                .stats(
                    realm,
                    Span::Hour,
                    now - TimeDelta::hours(OVERVIEW_HOURS - 1),
                    now,
                )
                .await?;
            let days = s
                .stats(
                    realm,
                    Span::Day,
                    now - TimeDelta::days(OVERVIEW_DAYS - 1),
                    now,
                )
                .await?;
            let clients = s
                .list_clients(realm)
                .await?
                .into_iter()
                .map(|c| ClientSessions {
                    client_id: c.client_id,
                    name: c.name,
                    session_count: c.session_count,
                })
                .collect();
            Ok(Overview {
                realm: realm.to_owned(),
                generated_at: now,
                session_count,
                hourly: stats::overview_buckets(session_count, hours),
                daily: stats::overview_buckets(session_count, days),
                clients,
            })
        }
    }
}
