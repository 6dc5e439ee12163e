//! Anomalies seen only across a subject's sessions: a spread over countries, a device new to the
//! subject. A listing with one reads the realm's sessions (and, for a new device, its history)
//! once, before planning, and tests each row against what it found.

use std::collections::{HashMap, HashSet};

use super::super::keys::{RealmId, Sid};
use super::super::query::Filters;
use super::super::record::StoredSession;
use super::ended::EndedRecord;
use super::layout::{Attr, EndedKey, EndedSubjectKey, Timeline};
use super::SledStoreV2;
use crate::anomaly::{Anomaly, NEW_DEVICE_LOOKBACK_MS};
use crate::device::Device;
use crate::error::{Result, SessionError};

impl SledStoreV2 {
    /// Finds the sessions with the filter's anomaly, when the session alone does not show it.
    pub(super) fn find_anomalous(&self, realm: RealmId, filters: &mut Filters) -> Result<()> {
        let Some(a) = filters.anomaly.as_mut() else {
            return Ok(());
        };
        // Anomalies are a subject's: with a subject filter, only its sessions are read.
        let subject = filters.subject.as_deref();
        a.found = match a.anomaly {
            Anomaly::CountryChanged => return Ok(()),
            Anomaly::CountrySpread => Some(self.country_spread(realm, subject, a.since_ms)?),
            Anomaly::NewDevice => Some(self.new_devices(realm, subject)?),
        };
        Ok(())
    }

    /// Every live session of the realm (or of one subject), in creation order.
    fn each_session(
        &self,
        realm: RealmId,
        subject: Option<&str>,
        mut f: impl FnMut(StoredSession),
    ) -> Result<()> {
        let bad = || SessionError::Storage("bad session key".into());
        if let Some(subject) = subject {
            let entries = Timeline::attr(realm, Attr::Subject, subject);
            for k in self.tree.range(entries.all()).keys() {
                let (created, sid) = entries.position(&k?).ok_or_else(bad)?;
                if let Some(s) = self.load_at(realm, created, &sid)? {
                    f(s);
                }
            }
            return Ok(());
        }
        let records = Timeline::records(realm);
        for item in self.tree.range(records.all()) {
            let (k, v) = item?;
            let (created, sid) = records.position(&k).ok_or_else(bad)?;
            f(self.decode(created, &sid, &v)?);
        }
        Ok(())
    }

    /// Every history entry of the realm (or of one subject).
    fn each_ended(
        &self,
        realm: RealmId,
        subject: Option<&str>,
        mut f: impl FnMut(EndedRecord),
    ) -> Result<()> {
        let Some(subject) = subject else {
            for item in self.tree.scan_prefix(EndedKey::prefix(realm)) {
                f(EndedRecord::decode(&item?.1)?);
            }
            return Ok(());
        };
        for k in self
            .tree
            .scan_prefix(EndedSubjectKey::prefix(realm, subject))
            .keys()
        {
            let k = k?;
            let entry = EndedSubjectKey::decode(&k)
                .ok_or_else(|| SessionError::Storage("bad ended subject key".into()))?;
            let key = EndedKey {
                realm,
                ended_ms: entry.ended_ms,
                sid: entry.sid,
            };
            if let Some(rec) = self.ended_record(&key)? {
                f(rec);
            }
        }
        Ok(())
    }

    /// The sessions used since `since_ms` of each subject whose sessions used since then are in
    /// two or more countries.
    fn country_spread(
        &self,
        realm: RealmId,
        subject: Option<&str>,
        since_ms: i64,
    ) -> Result<HashSet<Sid>> {
        let mut subjects: HashMap<String, (HashSet<String>, Vec<Sid>)> = HashMap::new();
        self.each_session(realm, subject, |s| {
            if s.last_access_ms < since_ms {
                return;
            }
            let countries: Vec<String> = s.networks().filter_map(|n| n.country.clone()).collect();
            if countries.is_empty() {
                return;
            }
            let (seen, sids) = subjects.entry(s.subject_id).or_default();
            seen.extend(countries);
            sids.push(s.sid);
        })?;
        Ok(subjects
            .into_values()
            .filter(|(countries, _)| countries.len() >= 2)
            .flat_map(|(_, sids)| sids)
            .collect())
    }

    /// The live sessions whose browser and OS none of the subject's other sessions (live or
    /// ended) that started in the 30 days before them used, when there were any.
    fn new_devices(&self, realm: RealmId, subject: Option<&str>) -> Result<HashSet<Sid>> {
        // Per subject: (created, browser and OS, the sid of a live session).
        let mut subjects: HashMap<String, Vec<(i64, u32, Option<Sid>)>> = HashMap::new();
        self.each_session(realm, subject, |s| {
            if let Some(d) = Device::of(s.user_agent.as_deref()) {
                subjects.entry(s.subject_id).or_default().push((
                    s.created_ms,
                    d.browser_and_os(),
                    Some(s.sid),
                ));
            }
        })?;
        self.each_ended(realm, subject, |rec| {
            if let (Some(code), Some(seen)) = (rec.device, subjects.get_mut(&rec.subject_id)) {
                seen.push((
                    rec.created_ms,
                    Device::from_code(code).browser_and_os(),
                    None,
                ));
            }
        })?;
        let mut found = HashSet::new();
        for mut seen in subjects.into_values() {
            seen.sort_unstable_by_key(|e| e.0);
            for (i, &(created, device, sid)) in seen.iter().enumerate() {
                let Some(sid) = sid else { continue };
                let prior = seen[..i]
                    .iter()
                    .rev()
                    .skip_while(|e| e.0 == created)
                    .take_while(|e| e.0 >= created - NEW_DEVICE_LOOKBACK_MS);
                let mut any = false;
                let mut same = false;
                for e in prior {
                    any = true;
                    same |= e.1 == device;
                }
                if any && !same {
                    found.insert(sid);
                }
            }
        }
        Ok(found)
    }
}
