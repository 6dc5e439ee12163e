//! One subject at a glance: their sessions, grants and logout deliveries.

use sessions::store::MAX_LISTED_DELIVERIES;
use sessions::{Delivery, Result};

use crate::SessionService;

/// How many of a realm's newest deliveries are looked through for one subject's (deliveries have
/// no index by subject).
pub const SUBJECT_DELIVERY_SCAN: usize = 5_000;

/// A subject's deliveries among the realm's newest, newest first.
#[derive(Clone, Debug, Default)]
pub struct SubjectDeliveries {
    pub deliveries: Vec<Delivery>,
    /// Whether every delivery of the realm was looked through (else only the newest
    /// [`SUBJECT_DELIVERY_SCAN`]).
    pub complete: bool,
}

impl SessionService {
    /// The subject's back-channel logout deliveries among the realm's newest
    /// [`SUBJECT_DELIVERY_SCAN`], newest first.
    pub async fn subject_deliveries(
        &self,
        realm: &str,
        subject_id: &str,
    ) -> Result<SubjectDeliveries> {
        let mut out = SubjectDeliveries::default();
        let mut before = None;
        let mut scanned = 0;
        while scanned < SUBJECT_DELIVERY_SCAN {
            let page = self
                .list_deliveries(realm, None, before, MAX_LISTED_DELIVERIES)
                .await?;
            scanned += page.deliveries.len();
            out.deliveries.extend(
                page.deliveries
                    .into_iter()
                    .filter(|d| d.subject_id == subject_id),
            );
            match page.next_before {
                Some(b) => before = Some(b),
                None => {
                    out.complete = true;
                    break;
                }
            }
        }
        Ok(out)
    }
}
