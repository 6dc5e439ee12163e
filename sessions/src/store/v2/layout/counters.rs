//! Keys of the exact counts: what a counter is ([`CounterKey`], the key of the counters in memory
//! and in journal entries), where it is stored (`N`), the journal (`J`) and the chunked checkpoint
//! (`K`), all in realm 0.

use crate::delivery::DeliveryStatus;
use crate::stats::{EndReason, Metric, Span};

use super::outbox::{status_code, status_from_code};
use super::RealmId;
use super::{fixed, growable, prefix, time_bytes, Fields, Tag, GLOBAL, HEAD_LEN};

/// The byte after a counter key's realm id that says what it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Total = 0,
    Subject = 1,
    Client = 2,
    NamePrefix = 3,
    Deliveries = 4,
    Stats = 5,
    Ended = 6,
    Device = 7,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Total,
        Kind::Subject,
        Kind::Client,
        Kind::NamePrefix,
        Kind::Deliveries,
        Kind::Stats,
        Kind::Ended,
        Kind::Device,
    ];

    fn from_byte(b: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u8 == b)
    }
}

/// The byte an end reason is stored as: its place in [`EndReason::ALL`].
pub fn end_code(how: EndReason) -> u8 {
    EndReason::ALL.iter().position(|r| *r == how).unwrap_or(0) as u8
}

/// Inverse of [`end_code`].
pub fn end_from_code(code: u8) -> Option<EndReason> {
    EndReason::ALL.get(usize::from(code)).copied()
}

/// What a counter counts, in a realm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter<'a> {
    /// The realm's sessions.
    Total,
    /// A subject's sessions.
    Subject(&'a str),
    /// The sessions that name a client.
    Client(&'a str),
    /// The sessions with a display-name word starting with this case-folded prefix (of up to
    /// `MAX_PREFIX_CHARS` characters).
    NamePrefix(&'a str),
    /// The deliveries in a status.
    Deliveries(DeliveryStatus),
    /// The history entries of sessions that ended this way.
    Ended(EndReason),
    /// The sessions whose device has this [`crate::Device::counted_code`].
    Device(u32),
    /// An activity counter: events of `metric` in the bucket of `span` starting at `bucket` (Unix
    /// seconds).
    Stats {
        span: Span,
        bucket: i64,
        metric: Metric,
    },
}

impl Counter<'_> {
    /// This counter's key in `realm`.
    pub fn key(self, realm: RealmId) -> Vec<u8> {
        CounterKey {
            realm,
            counter: self,
        }
        .encode()
    }
}

/// A counter's key: realm, kind (one byte), and the value it counts by: nothing
/// ([`Counter::Total`]), the string's bytes, a status byte, or span code + bucket start
/// (big-endian, sign bit flipped, so byte order is time order) + metric code. The counters are
/// held in memory by these keys, journal entries name them, and each is stored under a
/// [`StoredCounterKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CounterKey<'a> {
    pub realm: RealmId,
    pub counter: Counter<'a>,
}

impl<'a> CounterKey<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let start = |kind: Kind, more: usize| {
            let mut k = Vec::with_capacity(HEAD_LEN + more);
            k.extend_from_slice(&self.realm.to_be_bytes());
            k.push(kind as u8);
            k
        };
        let text = |kind: Kind, s: &str| {
            let mut k = start(kind, s.len());
            k.extend_from_slice(s.as_bytes());
            k
        };
        match self.counter {
            Counter::Total => start(Kind::Total, 0),
            Counter::Subject(s) => text(Kind::Subject, s),
            Counter::Client(c) => text(Kind::Client, c),
            Counter::NamePrefix(p) => text(Kind::NamePrefix, p),
            Counter::Deliveries(status) => {
                let mut k = start(Kind::Deliveries, 1);
                k.push(status_code(status));
                k
            }
            Counter::Ended(how) => {
                let mut k = start(Kind::Ended, 1);
                k.push(end_code(how));
                k
            }
            Counter::Device(code) => {
                let mut k = start(Kind::Device, 4);
                k.extend_from_slice(&code.to_be_bytes());
                k
            }
            Counter::Stats {
                span,
                bucket,
                metric,
            } => {
                let mut k = Self::stats_from(self.realm, span, bucket);
                k.push(metric.code());
                k
            }
        }
    }

    pub fn decode(key: &'a [u8]) -> Option<Self> {
        let (realm, rest) = key.split_first_chunk::<4>()?;
        let (&kind, rest) = rest.split_first()?;
        let mut f = Fields(rest);
        let counter = match Kind::from_byte(kind)? {
            Kind::Total => {
                f.end()?;
                Counter::Total
            }
            Kind::Subject => Counter::Subject(f.rest_str()?),
            Kind::Client => Counter::Client(f.rest_str()?),
            Kind::NamePrefix => Counter::NamePrefix(f.rest_str()?),
            Kind::Deliveries => {
                let status = status_from_code(f.byte()?)?;
                f.end()?;
                Counter::Deliveries(status)
            }
            Kind::Ended => {
                let how = end_from_code(f.byte()?)?;
                f.end()?;
                Counter::Ended(how)
            }
            Kind::Device => {
                let code = f.u32()?;
                f.end()?;
                Counter::Device(code)
            }
            Kind::Stats => {
                let span = Span::from_code(f.byte()?)?;
                let bucket = f.time()?;
                let metric = Metric::from_code(f.byte()?)?;
                f.end()?;
                Counter::Stats {
                    span,
                    bucket,
                    metric,
                }
            }
        };
        Some(CounterKey {
            realm: RealmId::from_be_bytes(*realm),
            counter,
        })
    }

    /// Whether a counter key is an activity counter's ([`Counter::Stats`]).
    pub fn is_stats(key: &[u8]) -> bool {
        key.get(4) == Some(&(Kind::Stats as u8))
    }

    /// The start of a realm's activity counters of `span` from the bucket starting at `bucket`
    /// on: a bound of a range of buckets.
    pub fn stats_from(realm: RealmId, span: Span, bucket: i64) -> Vec<u8> {
        let mut k = Vec::with_capacity(HEAD_LEN + 10);
        k.extend_from_slice(&realm.to_be_bytes());
        k.push(Kind::Stats as u8);
        k.push(span.code());
        k.extend_from_slice(&time_bytes(bucket));
        k
    }
}

/// A stored counter's key: realm 0, `N`, the counter's key ([`CounterKey`], as bytes). Its value
/// is the count (a zigzag varint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StoredCounterKey<'a> {
    pub counter: &'a [u8],
}

impl<'a> StoredCounterKey<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut k = growable(GLOBAL, Tag::Counter, self.counter.len());
        k.extend_from_slice(self.counter);
        k
    }

    pub fn decode(key: &'a [u8]) -> Option<Self> {
        let counter = Fields::global(key, Tag::Counter)?.rest();
        Some(StoredCounterKey { counter })
    }

    /// Prefix of every stored counter.
    pub fn prefix() -> [u8; HEAD_LEN] {
        prefix(GLOBAL, Tag::Counter)
    }
}

/// A journal entry's key: realm 0, `J`, its sequence number (8). The journal is in sequence
/// order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JournalKey {
    pub seq: u64,
}

impl JournalKey {
    pub const LEN: usize = HEAD_LEN + 8;

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[&prefix(GLOBAL, Tag::Journal), &self.seq.to_be_bytes()])
    }

    pub fn decode(key: &[u8]) -> Option<Self> {
        let mut f = Fields::global(key, Tag::Journal)?;
        let seq = f.u64()?;
        f.end()?;
        Some(JournalKey { seq })
    }

    /// Prefix of every journal entry.
    pub fn prefix() -> [u8; HEAD_LEN] {
        prefix(GLOBAL, Tag::Journal)
    }
}

/// A key of a checkpoint in the chunked format (every counter, in chunks, converted when the
/// store opens): realm 0, `K`, the chunk's number (4); [`CheckpointKey::HEADER`] holds the
/// [`CheckpointHeader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckpointKey {
    pub chunk: u32,
}

impl CheckpointKey {
    pub const LEN: usize = HEAD_LEN + 4;
    /// The key of the header.
    pub const HEADER: CheckpointKey = CheckpointKey { chunk: u32::MAX };

    pub fn encode(&self) -> [u8; Self::LEN] {
        fixed(&[&prefix(GLOBAL, Tag::Checkpoint), &self.chunk.to_be_bytes()])
    }

    /// (The store only reads chunks it names; this is for the round-trip test.)
    #[cfg(test)]
    pub fn decode(key: &[u8]) -> Option<Self> {
        let mut f = Fields::global(key, Tag::Checkpoint)?;
        let chunk = f.u32()?;
        f.end()?;
        Some(CheckpointKey { chunk })
    }

    /// Prefix of every chunk and the header.
    pub fn prefix() -> [u8; HEAD_LEN] {
        prefix(GLOBAL, Tag::Checkpoint)
    }
}

/// The header of a checkpoint in the chunked format: the first journal entry it does not cover
/// (8), the number of chunks (4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckpointHeader {
    pub from: u64,
    pub chunks: u32,
}

impl CheckpointHeader {
    /// (The store only reads this format, converting it; this is for tests of the conversion.)
    #[cfg(test)]
    pub fn encode(&self) -> [u8; 12] {
        fixed(&[&self.from.to_be_bytes(), &self.chunks.to_be_bytes()])
    }

    pub fn decode(v: &[u8]) -> Option<Self> {
        let mut f = Fields::value(v);
        let from = f.u64()?;
        let chunks = f.u32()?;
        f.end()?;
        Some(CheckpointHeader { from, chunks })
    }
}

#[cfg(test)]
mod tests {
    use super::super::strategy::{ident, realm, time};
    use super::*;
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = DeliveryStatus> {
        prop_oneof![
            Just(DeliveryStatus::Pending),
            Just(DeliveryStatus::Delivered),
            Just(DeliveryStatus::Failed)
        ]
    }

    fn span() -> impl Strategy<Value = Span> {
        prop::sample::select(Span::ALL.to_vec())
    }

    fn metric() -> impl Strategy<Value = Metric> {
        prop::sample::select(Metric::all().collect::<Vec<_>>())
    }

    #[test]
    fn counter_keys_are_realm_kind_and_value() {
        assert_eq!(Counter::Total.key(3), [0, 0, 0, 3, 0]);
        assert_eq!(Counter::Subject("ab").key(3), [0, 0, 0, 3, 1, b'a', b'b']);
        assert_eq!(
            Counter::Deliveries(DeliveryStatus::Failed).key(3),
            [0, 0, 0, 3, 4, 3]
        );
        assert_eq!(CounterKey::decode(&[0, 0, 0, 3, 9]), None);
    }

    proptest! {
        #[test]
        fn counter_keys_round_trip(
            r in realm(), kind in 0..Kind::ALL.len(), text in ident(), status in status(),
            span in span(), bucket in time(), metric in metric(),
        ) {
            let c = match Kind::ALL[kind] {
                Kind::Total => Counter::Total,
                Kind::Subject => Counter::Subject(&text),
                Kind::Client => Counter::Client(&text),
                Kind::NamePrefix => Counter::NamePrefix(&text),
                Kind::Deliveries => Counter::Deliveries(status),
                Kind::Stats => Counter::Stats { span, bucket, metric },
                Kind::Ended => Counter::Ended(EndReason::ALL[status_code(status) as usize % 5]),
                Kind::Device => Counter::Device(bucket as u32),
            };
            let k = CounterKey { realm: r, counter: c };
            let bytes = k.encode();
            prop_assert_eq!(CounterKey::decode(&bytes), Some(k));
            prop_assert_eq!(CounterKey::is_stats(&bytes), matches!(c, Counter::Stats { .. }));
            let stored = StoredCounterKey { counter: &bytes };
            let stored_bytes = stored.encode();
            prop_assert_eq!(StoredCounterKey::decode(&stored_bytes), Some(stored));
            prop_assert!(stored.encode().starts_with(&StoredCounterKey::prefix()));
        }

        #[test]
        fn activity_counters_are_in_bucket_order(
            r in realm(), span in span(), b1 in time(), b2 in time(), m1 in metric(),
            m2 in metric(),
        ) {
            let at = |bucket, metric| Counter::Stats { span, bucket, metric }.key(r);
            prop_assert_eq!(at(b1, m1).cmp(&at(b2, m2)), (b1, m1.code()).cmp(&(b2, m2.code())));
            let from = CounterKey::stats_from(r, span, b1);
            prop_assert!(at(b1, m1).starts_with(&from));
            prop_assert_eq!(from <= at(b2, m2), b1 <= b2);
        }

        #[test]
        fn journal_keys_round_trip_in_sequence_order(a in any::<u64>(), b in any::<u64>()) {
            let (x, y) = (JournalKey { seq: a }, JournalKey { seq: b });
            prop_assert_eq!(JournalKey::decode(&x.encode()), Some(x));
            prop_assert!(x.encode().starts_with(&JournalKey::prefix()));
            prop_assert_eq!(x.encode().cmp(&y.encode()), a.cmp(&b));
        }

        #[test]
        fn checkpoint_keys_and_header_round_trip(chunk in any::<u32>(), from in any::<u64>()) {
            let k = CheckpointKey { chunk };
            prop_assert_eq!(CheckpointKey::decode(&k.encode()), Some(k));
            prop_assert!(k.encode().starts_with(&CheckpointKey::prefix()));
            let h = CheckpointHeader { from, chunks: chunk };
            prop_assert_eq!(CheckpointHeader::decode(&h.encode()), Some(h));
        }
    }
}
