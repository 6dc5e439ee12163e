//! The store's side of the exact counts ([`counters`] holds the counters in memory and their
//! encodings): every batch is applied through [`SledStoreV2::write`], which adds its counter
//! changes as a journal entry (realm 0, `J`, sequence number); a checkpoint stores the counters
//! changed since the last one (realm 0, `N`, one key each) and drops the journal before it;
//! opening loads the stored counters and replays the journal after them.

use std::sync::atomic::Ordering;

use super::commit::Batch;
use super::counters::{self, Deltas};
use super::layout::{CheckpointHeader, CheckpointKey, JournalKey, MetaKey, StoredCounterKey};
use super::{check, SledStoreV2};
use crate::error::{Result, SessionError};

/// A counter checkpoint is written after this many journal entries (`SESSIONS_CHECKPOINT_EVERY`
/// in the environment overrides it).
pub(super) const CHECKPOINT_EVERY: u64 = 20_000;
/// Counters by key, as stored.
type CounterValues = Vec<(Vec<u8>, i64)>;

impl SledStoreV2 {
    /// Writes a checkpoint of the counters now (also done every [`CHECKPOINT_EVERY`] journal
    /// entries and when the store is dropped): the counters changed since the last one.
    pub fn checkpoint(&self) -> Result<()> {
        let _one = self
            .checkpointing
            .lock()
            .map_err(|_| SessionError::Storage("checkpoint lock poisoned".into()))?;
        self.checkpoint_locked(false)
    }

    /// Writes every counter anew, deleting what was stored before (after a recount).
    pub(super) fn checkpoint_all(&self) -> Result<()> {
        let _one = self
            .checkpointing
            .lock()
            .map_err(|_| SessionError::Storage("checkpoint lock poisoned".into()))?;
        self.checkpoint_locked(true)
    }

    /// One batch stores the changed counters (or, with `all`, replaces every stored one), records
    /// the first journal entry they do not cover, and drops the journal before it.
    pub(super) fn checkpoint_locked(&self, all: bool) -> Result<()> {
        let (changed, upto) = {
            let _all = self.journal.write().unwrap_or_else(|e| e.into_inner());
            let changed = if all {
                self.counters.take_changed();
                self.counters.snapshot()
            } else {
                self.counters.take_changed()
            };
            (changed, self.next_seq.load(Ordering::SeqCst))
        };
        let written = (|| -> Result<u64> {
            let mut batch = sled::Batch::default();
            if all {
                for prefix in [StoredCounterKey::prefix(), CheckpointKey::prefix()] {
                    for k in self.tree.scan_prefix(prefix).keys() {
                        batch.remove(k?);
                    }
                }
            }
            store_counters(&mut batch, &changed, upto);
            let mut removed = 0;
            let covered = JournalKey { seq: 0 }.encode()..JournalKey { seq: upto }.encode();
            for k in self.tree.range(covered).keys() {
                batch.remove(k?);
                removed += 1;
            }
            self.tree.apply_batch(batch)?;
            Ok(removed)
        })();
        match written {
            Ok(removed) => {
                self.journal_len.fetch_sub(removed, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                // Still to be stored by the next checkpoint; the journal still covers them.
                self.counters
                    .mark_changed(changed.into_iter().map(|(k, _)| k));
                Err(e)
            }
        }
    }

    /// The first journal entry the stored counters do not cover; `None` if no counters are
    /// stored in the current format.
    fn counters_upto(&self) -> Result<Option<u64>> {
        Ok(match self.tree.get(MetaKey::CountersUpto.encode())? {
            Some(v) => Some(u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                SessionError::Storage("corrupt counter checkpoint header".into())
            })?)),
            None => None,
        })
    }

    /// Loads the stored counters and replays the journal after them; answers how many entries
    /// it replayed. Counters stored in the chunked format are converted; without any,
    /// recounts from the records.
    pub(super) fn load_counters(&self) -> Result<u64> {
        let from = match self.counters_upto()? {
            Some(from) => {
                let mut all = Vec::new();
                for item in self.tree.scan_prefix(StoredCounterKey::prefix()) {
                    let (k, v) = item?;
                    let stored = StoredCounterKey::decode(&k)
                        .ok_or_else(|| SessionError::Storage("bad counter key".into()))?;
                    all.push((stored.counter.to_vec(), counters::decode_value(&v)?));
                }
                self.counters.load(all);
                from
            }
            None => match self.chunked_checkpoint()? {
                Some((from, all)) => {
                    self.counters.load(all);
                    from
                }
                None => {
                    tracing::warn!("no counter checkpoint: recounting from the records");
                    let counted = check::recount(self)?;
                    self.counters.replace(counted);
                    let mut batch = sled::Batch::default();
                    for k in self.tree.scan_prefix(JournalKey::prefix()).keys() {
                        batch.remove(k?);
                    }
                    self.tree.apply_batch(batch)?;
                    self.checkpoint_all()?;
                    return Ok(0);
                }
            },
        };
        let mut next = from;
        let mut replayed = 0;
        let after = JournalKey { seq: from }.encode()..JournalKey { seq: u64::MAX }.encode();
        for item in self.tree.range(after) {
            let (k, v) = item?;
            let JournalKey { seq } = JournalKey::decode(&k)
                .ok_or_else(|| SessionError::Storage("bad journal key".into()))?;
            self.counters.apply(&Deltas::decode(&v)?);
            next = next.max(seq + 1);
            replayed += 1;
        }
        self.next_seq.store(next, Ordering::SeqCst);
        self.journal_len.store(replayed, Ordering::SeqCst);
        if self.counters_upto()?.is_none() {
            // Converted from the chunked format: store every counter in the current one.
            self.checkpoint_all()?;
        }
        Ok(replayed)
    }

    /// A checkpoint in the chunked format (every counter, in chunks): the first journal entry it
    /// does not cover and the counters.
    fn chunked_checkpoint(&self) -> Result<Option<(u64, CounterValues)>> {
        let CheckpointHeader { from, chunks } =
            match self.tree.get(CheckpointKey::HEADER.encode())? {
                Some(v) => CheckpointHeader::decode(&v)
                    .ok_or_else(|| SessionError::Storage("corrupt checkpoint header".into()))?,
                None => return Ok(None),
            };
        let mut all = Vec::new();
        for i in 0..chunks {
            let v = self
                .tree
                .get(CheckpointKey { chunk: i }.encode())?
                .ok_or_else(|| SessionError::Storage(format!("checkpoint chunk {i} missing")))?;
            counters::decode_checkpoint_chunk(&v, &mut all)?;
        }
        Ok(Some((from, all)))
    }

    /// Applies one batch, with its counter changes as a journal entry, and then updates the
    /// counters in memory. Batches of concurrent callers are applied together
    /// ([`ApplyGroup`](super::commit::ApplyGroup)).
    pub(super) fn write(&self, mut batch: Batch, deltas: &Deltas) -> Result<()> {
        if deltas.is_empty() {
            return self.apply_group.apply(&self.tree, batch);
        }
        let entry = deltas.encode();
        {
            let _shared = self.journal.read().unwrap_or_else(|e| e.into_inner());
            let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
            batch.insert(&JournalKey { seq }.encode(), entry);
            self.apply_group.apply(&self.tree, batch)?;
            self.counters.apply(deltas);
        }
        if self.journal_len.fetch_add(1, Ordering::SeqCst) + 1 >= self.checkpoint_every {
            if let Ok(_one) = self.checkpointing.try_lock() {
                if self.journal_len.load(Ordering::SeqCst) >= self.checkpoint_every {
                    self.checkpoint_locked(false)?;
                }
            }
        }
        Ok(())
    }

    /// A counter's current value.
    pub(crate) fn counter(&self, key: &[u8]) -> u64 {
        self.counters.get(key)
    }
}

/// Stores counters (deleting those at zero) and the first journal entry they do not cover.
pub(super) fn store_counters(batch: &mut sled::Batch, counters: &[(Vec<u8>, i64)], upto: u64) {
    for (k, v) in counters {
        let key = StoredCounterKey { counter: k }.encode();
        match v {
            0 => batch.remove(key),
            v => batch.insert(key, counters::encode_value(*v)),
        }
    }
    batch.insert(MetaKey::CountersUpto.encode(), &upto.to_be_bytes()[..]);
}
