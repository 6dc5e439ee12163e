//! Ended-session history on the v2 layout: an entry per ended session under its end time and
//! sid (`H`), indexed by subject (`V`) and by sid (`D`), written in the batch that ends the
//! session, counted per way of ending, pruned oldest first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::super::keys::{RealmId, Sid};
use super::super::outbox;
use super::super::record::{from_ms, sid_to_string, StoredSession};
use super::super::shared::{notice, EndedBy, EndedFilter};
use super::commit::Batch;
use super::counters::Deltas;
use super::layout::{
    end_code, end_from_code, Counter, DeliveryKey, EndedKey, EndedSidKey, EndedSubjectKey,
};
use super::realms::RealmEntry;
use super::SledStoreV2;
use crate::device::Device;
use crate::ended::{ClientNotice, EndedCursor, EndedPage, EndedQuery, EndedSession};
use crate::error::{Result, SessionError};
use crate::network::Network;
use crate::stats::EndReason;

/// Entries of the first version hold no networks nor last address; the second appends
/// [`Places`].
const RECORD_VERSION: u8 = 2;
const RECORD_VERSION_1: u8 = 1;

/// Where an ended session was: its sign-in's network, and its last address with its network
/// when a refresh came from elsewhere.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Places {
    pub network: Option<NetworkParts>,
    pub last: Option<(String, Option<NetworkParts>)>,
}

/// A network as an entry holds it: country, city, autonomous system number and organisation
/// (a tuple: the entry's encoding writes every field, which `Network`'s JSON form skips).
pub(super) type NetworkParts = (Option<String>, Option<String>, Option<u32>, Option<String>);

fn parts(n: &Network) -> NetworkParts {
    (n.country.clone(), n.city.clone(), n.asn, n.asn_org.clone())
}

fn network((country, city, asn, asn_org): NetworkParts) -> Network {
    Network {
        country,
        city,
        asn,
        asn_org,
    }
}

/// What stays of a session once it ended (its key holds the end time and sid).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(super) struct EndedRecord {
    pub subject_id: String,
    pub display_name: Option<String>,
    pub created_ms: i64,
    pub last_access_ms: i64,
    pub ip: Option<String>,
    /// [`Device::code`].
    pub device: Option<u32>,
    /// [`end_code`].
    pub how: u8,
    pub actor: Option<String>,
    pub reason: Option<String>,
    /// Each client, with the delivery of its logout notification when one was queued.
    pub clients: Vec<(String, Option<u64>)>,
    /// Written after the fields above (absent from first-version entries).
    #[serde(skip)]
    pub places: Places,
}

impl EndedRecord {
    /// The entry of session `s` ending `how`, with the deliveries queued for its clients.
    pub fn of(
        s: &StoredSession,
        how: EndReason,
        by: Option<&EndedBy>,
        delivered_by: &[(String, u64)],
    ) -> Self {
        EndedRecord {
            subject_id: s.subject_id.clone(),
            display_name: s.display_name.clone(),
            created_ms: s.created_ms,
            last_access_ms: s.last_access_ms,
            ip: s.ip.clone(),
            device: Device::of(s.user_agent.as_deref()).map(Device::code),
            how: end_code(how),
            actor: by.map(|b| b.actor.clone()),
            reason: by.and_then(|b| b.reason.clone()),
            clients: s
                .client_ids
                .iter()
                .map(|c| {
                    let id = delivered_by.iter().find(|(d, _)| d == c).map(|(_, id)| *id);
                    (c.clone(), id)
                })
                .collect(),
            places: Places {
                network: s.network.as_ref().map(parts),
                last: s
                    .last
                    .as_ref()
                    .map(|l| (l.ip.clone(), l.network.as_ref().map(parts))),
            },
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        out.extend(postcard::to_allocvec(self).expect("a record always serializes"));
        out.extend(postcard::to_allocvec(&self.places).expect("places always serialize"));
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt =
            |e: postcard::Error| SessionError::Storage(format!("corrupt ended-session entry: {e}"));
        let (version, rest) = bytes
            .split_first()
            .ok_or_else(|| SessionError::Storage("empty ended-session entry".into()))?;
        let (mut rec, rest): (EndedRecord, &[u8]) =
            postcard::take_from_bytes(rest).map_err(corrupt)?;
        match *version {
            RECORD_VERSION_1 if rest.is_empty() => {}
            RECORD_VERSION => rec.places = postcard::from_bytes(rest).map_err(corrupt)?,
            _ => {
                return Err(SessionError::Storage(
                    "unknown ended-session entry version".into(),
                ))
            }
        }
        Ok(rec)
    }

    pub fn how(&self) -> Result<EndReason> {
        end_from_code(self.how).ok_or_else(|| SessionError::Storage("unknown way of ending".into()))
    }
}

/// The index entries of a history entry (key, value).
pub(super) fn ended_entries(key: &EndedKey, rec: &EndedRecord) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (
            EndedSubjectKey {
                realm: key.realm,
                subject: &rec.subject_id,
                ended_ms: key.ended_ms,
                sid: key.sid,
            }
            .encode(),
            Vec::new(),
        ),
        (
            EndedSidKey {
                realm: key.realm,
                sid: key.sid,
            }
            .encode()
            .to_vec(),
            EndedSidKey::value(key.ended_ms).to_vec(),
        ),
    ]
}

/// Writes the history entry of session `s` ending at `now`, with its index entries and count.
pub(super) fn put_ended(
    batch: &mut Batch,
    deltas: &mut Deltas,
    realm: RealmId,
    s: &StoredSession,
    rec: &EndedRecord,
    now: DateTime<Utc>,
) -> Result<()> {
    let key = EndedKey {
        realm,
        ended_ms: now.timestamp_millis(),
        sid: s.sid,
    };
    batch.insert(&key.encode(), rec.encode());
    for (k, v) in ended_entries(&key, rec) {
        batch.insert(k, v);
    }
    deltas.counter(Counter::Ended(rec.how()?).key(realm), 1);
    Ok(())
}

impl SledStoreV2 {
    pub(super) fn ended_sessions_impl(&self, realm: &str, q: &EndedQuery) -> Result<EndedPage> {
        let realm = self.realm(realm)?;
        let f = EndedFilter::from_query(q)?;
        let mut found: Vec<(EndedKey, EndedRecord)> = Vec::new();
        let mut total = 0u64;
        let mut take = |key: EndedKey, rec: EndedRecord, found: &mut Vec<_>| -> Result<()> {
            if f.matches(&rec.subject_id, &key.sid, rec.how()?) {
                total += 1;
                let at = EndedCursor {
                    ended_ms: key.ended_ms,
                    sid: key.sid,
                };
                if f.beyond(at) && found.len() <= f.count {
                    found.push((key, rec));
                }
            }
            Ok(())
        };
        if let Some(sid) = f.sid {
            if let Some(found_at) = self.ended_by_sid(realm.id, &sid)? {
                take(found_at.0, found_at.1, &mut found)?;
            }
        } else if let Some(subject) = &f.subject {
            // One subject's history is small: walked whole, so it is counted exactly.
            let prefix = EndedSubjectKey::prefix(realm.id, subject);
            for k in self.tree.scan_prefix(&prefix).keys().rev() {
                let k = k?;
                let e = EndedSubjectKey::decode(&k)
                    .ok_or_else(|| SessionError::Storage("bad ended-subject key".into()))?;
                let key = EndedKey {
                    realm: realm.id,
                    ended_ms: e.ended_ms,
                    sid: e.sid,
                };
                if let Some(rec) = self.ended_record(&key)? {
                    take(key, rec, &mut found)?;
                }
            }
        } else {
            // Counted from the counters; the page walked from its start, newest first.
            let ways: Vec<EndReason> = match f.how {
                Some(h) => vec![h],
                None => EndReason::ALL.to_vec(),
            };
            let counted: i64 = ways
                .iter()
                .map(|h| self.counter(&Counter::Ended(*h).key(realm.id)) as i64)
                .sum();
            let prefix = EndedKey::prefix(realm.id);
            let upper = match f.after {
                Some(a) => std::ops::Bound::Excluded(
                    EndedKey {
                        realm: realm.id,
                        ended_ms: a.ended_ms,
                        sid: a.sid,
                    }
                    .encode()
                    .to_vec(),
                ),
                None => std::ops::Bound::Excluded(prefix_end(&prefix)),
            };
            let lower = std::ops::Bound::Included(prefix.to_vec());
            for item in self.tree.range::<Vec<u8>, _>((lower, upper)).rev() {
                if found.len() > f.count {
                    break;
                }
                let (k, v) = item?;
                let key = EndedKey::decode(&k)
                    .ok_or_else(|| SessionError::Storage("bad ended key".into()))?;
                let rec = EndedRecord::decode(&v)?;
                if f.matches(&rec.subject_id, &key.sid, rec.how()?) {
                    found.push((key, rec));
                }
            }
            total = counted.max(0) as u64;
        }
        let next = (found.len() > f.count).then(|| {
            found.truncate(f.count);
            let (last, _) = found.last().expect("a full page");
            EndedCursor {
                ended_ms: last.ended_ms,
                sid: last.sid,
            }
            .encode()
        });
        let results = found
            .into_iter()
            .map(|(key, rec)| self.ended_session(&realm, &key, rec))
            .collect::<Result<_>>()?;
        Ok(EndedPage {
            results,
            total_count: total,
            next,
        })
    }

    /// The history entry of a sid, if it has one.
    fn ended_by_sid(&self, realm: RealmId, sid: &Sid) -> Result<Option<(EndedKey, EndedRecord)>> {
        let Some(v) = self.tree.get(EndedSidKey { realm, sid: *sid }.encode())? else {
            return Ok(None);
        };
        let ended_ms = EndedSidKey::ended_of(&v)
            .ok_or_else(|| SessionError::Storage("bad ended-sid entry".into()))?;
        let key = EndedKey {
            realm,
            ended_ms,
            sid: *sid,
        };
        Ok(self.ended_record(&key)?.map(|rec| (key, rec)))
    }

    pub(super) fn ended_record(&self, key: &EndedKey) -> Result<Option<EndedRecord>> {
        self.tree
            .get(key.encode())?
            .map(|v| EndedRecord::decode(&v))
            .transpose()
    }

    /// An entry as the API shows it, each client's notice worked out from its delivery.
    fn ended_session(
        &self,
        realm: &RealmEntry,
        key: &EndedKey,
        rec: EndedRecord,
    ) -> Result<EndedSession> {
        let mut clients = Vec::with_capacity(rec.clients.len());
        for (client_id, delivery_id) in rec.clients {
            let status = match delivery_id {
                Some(id) => Some(
                    self.tree
                        .get(
                            DeliveryKey {
                                realm: realm.id,
                                id,
                            }
                            .encode(),
                        )?
                        .map(|v| outbox::decode(&v).map(|d| d.status))
                        .transpose()?,
                ),
                None => None,
            };
            clients.push(ClientNotice {
                client_id,
                notice: notice(status),
                delivery_id,
            });
        }
        Ok(EndedSession {
            sid: sid_to_string(&key.sid),
            realm: realm.name.clone(),
            how: end_from_code(rec.how)
                .ok_or_else(|| SessionError::Storage("unknown way of ending".into()))?,
            subject_id: rec.subject_id,
            display_name: rec.display_name,
            last_ip: match &rec.places.last {
                Some((ip, _)) => Some(ip.clone()),
                None => rec.ip.clone(),
            },
            last_network: match &rec.places.last {
                Some((_, n)) => n.clone().map(network),
                None => rec.places.network.clone().map(network),
            },
            network: rec.places.network.map(network),
            ip: rec.ip,
            device: rec.device.map(Device::from_code),
            created_at: from_ms(rec.created_ms),
            last_access_at: from_ms(rec.last_access_ms),
            ended_at: from_ms(key.ended_ms),
            actor: rec.actor,
            reason: rec.reason,
            clients,
        })
    }

    /// How many history entries the store holds and their bytes as written (keys and values of
    /// the entries and their index entries, before sled's own framing): for the benchmarks.
    pub fn ended_history_bytes(&self) -> Result<(u64, u64)> {
        let (mut entries, mut bytes) = (0, 0);
        for realm in self.realm_names().into_keys() {
            for item in self.tree.scan_prefix(EndedKey::prefix(realm)) {
                let (k, v) = item?;
                let key = EndedKey::decode(&k)
                    .ok_or_else(|| SessionError::Storage("bad ended key".into()))?;
                entries += 1;
                bytes += (k.len() + v.len()) as u64;
                for (k, v) in ended_entries(&key, &EndedRecord::decode(&v)?) {
                    bytes += (k.len() + v.len()) as u64;
                }
            }
        }
        Ok((entries, bytes))
    }

    /// Deletes up to `limit` history entries that ended before `cutoff`, oldest first in each
    /// realm.
    pub(super) fn prune_ended_impl(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<usize> {
        let mut pruned = 0;
        for realm in self.realm_names().into_keys() {
            if pruned >= limit {
                break;
            }
            let lower = EndedKey::prefix(realm).to_vec();
            let upper = EndedKey {
                realm,
                ended_ms: cutoff.timestamp_millis(),
                sid: [0; 16],
            }
            .encode()
            .to_vec();
            let mut batch = Batch::default();
            let mut deltas = Deltas::default();
            for item in self.tree.range(lower..upper).take(limit - pruned) {
                let (k, v) = item?;
                let key = EndedKey::decode(&k)
                    .ok_or_else(|| SessionError::Storage("bad ended key".into()))?;
                let rec = EndedRecord::decode(&v)?;
                batch.remove(k);
                for (k, _) in ended_entries(&key, &rec) {
                    batch.remove(k);
                }
                deltas.counter(Counter::Ended(rec.how()?).key(realm), -1);
                pruned += 1;
            }
            self.write(batch, &deltas)?;
        }
        Ok(pruned)
    }
}

/// The first key after every key starting with `prefix` (which does not end in 0xff).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> EndedRecord {
        EndedRecord {
            subject_id: "alice".into(),
            display_name: None,
            created_ms: 1,
            last_access_ms: 2,
            ip: Some("203.0.113.1".into()),
            device: Some(7),
            how: 0,
            actor: Some("ops".into()),
            reason: None,
            clients: vec![("portal".into(), Some(9))],
            places: Places::default(),
        }
    }

    #[test]
    fn entries_round_trip_and_first_version_entries_read_without_places() {
        let mut e = entry();
        e.places = Places {
            network: Some((Some("DE".into()), None, Some(3320), None)),
            last: Some(("198.51.100.1".into(), None)),
        };
        assert_eq!(EndedRecord::decode(&e.encode()).unwrap(), e);
        let plain = entry();
        let mut first = vec![RECORD_VERSION_1];
        first.extend(postcard::to_allocvec(&plain).unwrap());
        assert_eq!(EndedRecord::decode(&first).unwrap(), plain);
        first.push(0);
        assert!(EndedRecord::decode(&first).is_err(), "trailing bytes");
        assert!(EndedRecord::decode(&[3]).is_err());
    }
}
