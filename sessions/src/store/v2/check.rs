//! The consistency check of the v2 layout.

use super::super::keys::RealmId;
use super::counts::{self, Deltas};
use super::{layout, SledStoreV2};
use crate::error::Result;

/// Every counter, recounted from the records (sessions and deliveries) of the known realms.
pub(super) fn recount(store: &SledStoreV2) -> Result<Vec<(Vec<u8>, i64)>> {
    let realms: Vec<RealmId> = store.realm_names().into_keys().collect();
    let counters = counts::Counters::default();
    for realm in realms {
        let mut deltas = Deltas::default();
        for item in store
            .tree
            .scan_prefix(layout::prefix(realm, layout::RECORD))
        {
            let (k, v) = item?;
            let (created, sid) = layout::split_time_sid(&k);
            if let Ok(s) = store.decode(created, &sid, &v) {
                deltas.session(realm, &s, true);
            }
        }
        for v in store
            .tree
            .scan_prefix(layout::prefix(realm, layout::DELIVERY))
            .values()
        {
            if let Ok(d) = super::super::outbox::decode(&v?) {
                deltas.counter(counts::deliveries_key(realm, d.status), 1);
            }
        }
        counters.apply(&deltas);
    }
    Ok(counters.snapshot())
}
