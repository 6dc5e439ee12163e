//! The overview: a realm's activity at a glance, from the store's time-bucketed counters (never
//! by scanning sessions).

use chrono::{TimeDelta, Utc};
use sessions::anomaly::{Anomaly, AnomalyCount};
use sessions::stats::{self, ClientSessions, Overview, Span, OVERVIEW_DAYS, OVERVIEW_HOURS};
use sessions::{Result, SessionFilters, SessionQuery};

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

    /// How many sessions have each anomaly (those about countries only when a GeoIP database
    /// places addresses). Unlike the overview's figures these read the realm's sessions (and,
    /// for new devices, its history): the dashboard loads them apart.
    pub async fn anomaly_counts(&self, realm: &str) -> Result<Vec<AnomalyCount>> {
        let mut out = Vec::with_capacity(Anomaly::ALL.len());
        let placed = self.places_addresses();
        for a in Anomaly::ALL {
            if a != Anomaly::NewDevice && !placed {
                continue;
            }
            let q = SessionQuery {
                count: Some(1),
                ..SessionQuery::from(SessionFilters {
                    anomaly: Some(a.as_str().into()),
                    ..Default::default()
                })
            };
            out.push(AnomalyCount {
                anomaly: a.as_str().into(),
                label: a.label().into(),
                session_count: self.store.query(realm, &q).await?.total_count,
            });
        }
        Ok(out)
    }
}
