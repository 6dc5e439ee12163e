//! How writes reach the tree and then the disk, each stage shared by concurrent callers:
//!
//! - [`ApplyGroup`] applies the [`Batch`]es of concurrent operations as one `apply_batch`
//!   (atomic application: one pair of sled log-buffer rolls for the group);
//! - [`FlushGroup`] lets callers that must have their writes on disk share one flush (durability:
//!   one `fsync` for everyone waiting).
//!
//! Every write goes through the first; only operations that answer "durable" wait for the
//! second.

use std::sync::{Arc, Condvar, Mutex, OnceLock};

use sled::{IVec, Tree};

use crate::error::{Result, SessionError};

/// The writes of one operation: applied atomically, possibly in one sled batch with those of
/// concurrent operations. Later writes to a key win, as in `sled::Batch`.
#[derive(Default)]
pub(super) struct Batch {
    writes: Vec<(IVec, Option<IVec>)>,
}

impl Batch {
    pub(super) fn insert(&mut self, k: impl Into<IVec>, v: impl Into<IVec>) {
        self.writes.push((k.into(), Some(v.into())));
    }

    pub(super) fn remove(&mut self, k: impl Into<IVec>) {
        self.writes.push((k.into(), None));
    }
}

/// Applies the batches of concurrent operations as one `apply_batch` (the atomic step of group
/// commit; durability is [`FlushGroup`]'s). sled 0.34 rolls its log's IO buffer twice for every
/// `apply_batch` (`PageCache::pin_log`: a write and a `sync_file_range` each), whatever the
/// batch's size, and applies one batch at a time under its global write lock. So concurrent
/// operations queue their batches, and whoever holds the commit lock applies every batch queued,
/// in queue order, as one `apply_batch`: one pair of buffer rolls for the group. Each operation
/// still sees its own writes applied (all or none) when it returns; a failure fails every
/// operation of the group.
#[derive(Default)]
pub(super) struct ApplyGroup {
    queue: Mutex<Vec<(Batch, Arc<Applied>)>>,
    commit: Mutex<()>,
}

/// Set by the leader of a group once its batch is applied: the outcome.
type Applied = OnceLock<std::result::Result<(), String>>;

impl ApplyGroup {
    /// Applies `batch`, with whatever batches other operations queued meanwhile; answers once it
    /// is applied (not yet flushed).
    pub(super) fn apply(&self, tree: &Tree, batch: Batch) -> Result<()> {
        let done = Arc::new(OnceLock::new());
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((batch, done.clone()));
        let _leader = self.commit.lock().unwrap_or_else(|e| e.into_inner());
        if done.get().is_none() {
            let group = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
            let mut writes = sled::Batch::default();
            let mut waiting = Vec::with_capacity(group.len());
            for (b, slot) in group {
                for (k, v) in b.writes {
                    match v {
                        Some(v) => writes.insert(k, v),
                        None => writes.remove(k),
                    }
                }
                waiting.push(slot);
            }
            let result = tree.apply_batch(writes).map_err(|e| e.to_string());
            for slot in waiting {
                let _ = slot.set(result.clone());
            }
        }
        match done.get() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(SessionError::Storage(e.clone())),
            None => Err(SessionError::Storage("a write was not applied".into())),
        }
    }
}

/// What [`FlushGroup`] knows of the flushes.
#[derive(Default)]
struct FlushState {
    /// Tickets handed out; a ticket is taken after the caller's writes are done.
    issued: u64,
    /// Every ticket up to this one is on disk.
    durable: u64,
    /// A flush is running.
    flushing: bool,
    /// Flushes run so far, for metrics.
    flushes: u64,
}

/// Shares one flush among the callers that need their writes on disk (the durable step of group
/// commit; applying the writes is [`ApplyGroup`]'s): while one flush runs, later callers queue
/// behind it and share the next one, so a burst of concurrent waiters costs about two flushes,
/// not one each.
#[derive(Default)]
pub(super) struct FlushGroup {
    state: Mutex<FlushState>,
    flushed: Condvar,
}

impl FlushGroup {
    /// Returns once every write made before the call is on disk. `flush` writes everything
    /// pending to disk; while one runs, later callers queue behind it and share the next one.
    pub(super) fn wait_durable(&self, flush: impl Fn() -> Result<()>) -> Result<()> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        s.issued += 1;
        let ticket = s.issued;
        loop {
            if s.durable >= ticket {
                return Ok(());
            }
            if !s.flushing {
                s.flushing = true;
                let covers = s.issued;
                drop(s);
                let outcome = flush();
                s = self.state.lock().map_err(|_| poisoned())?;
                s.flushing = false;
                s.flushes += 1;
                self.flushed.notify_all();
                outcome?;
                s.durable = s.durable.max(covers);
            } else {
                s = self.flushed.wait(s).map_err(|_| poisoned())?;
            }
        }
    }

    /// Number of flushes run since start.
    pub(super) fn flush_count(&self) -> u64 {
        self.state.lock().map(|s| s.flushes).unwrap_or(0)
    }
}

fn poisoned() -> SessionError {
    SessionError::Storage("group commit lock poisoned".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_writers_share_flushes() {
        let gc = Arc::new(FlushGroup::default());
        let flushes = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (gc, flushes) = (gc.clone(), flushes.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        gc.wait_durable(|| {
                            flushes.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(1));
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        assert!(n < 16 * 50, "every call flushed on its own: {n}");
        assert_eq!(gc.flush_count(), n);
    }

    #[test]
    fn a_failed_flush_is_reported() {
        let gc = FlushGroup::default();
        let err = gc
            .wait_durable(|| Err(SessionError::Storage("disk full".into())))
            .unwrap_err();
        assert_eq!(err, SessionError::Storage("disk full".into()));
        gc.wait_durable(|| Ok(())).unwrap();
    }
}
