//! Group commit: callers that need their writes on disk share one flush instead of each paying
//! for their own.

use std::sync::{Condvar, Mutex};

use crate::error::{Result, SessionError};

#[derive(Default)]
struct State {
    /// Tickets handed out; a ticket is taken after the caller's writes are done.
    issued: u64,
    /// Every ticket up to this one is on disk.
    durable: u64,
    /// A flush is running.
    flushing: bool,
    /// Flushes run so far, for metrics.
    flushes: u64,
}

/// Coordinates flushes among concurrent writers.
#[derive(Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    flushed: Condvar,
}

impl GroupCommit {
    /// Returns once every write made before the call is on disk. `flush` writes everything
    /// pending to disk; while one runs, later callers queue behind it and share the next one.
    pub fn wait_durable(&self, flush: impl Fn() -> Result<()>) -> Result<()> {
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
    pub fn flush_count(&self) -> u64 {
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
        let gc = Arc::new(GroupCommit::default());
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
        let gc = GroupCommit::default();
        let err = gc
            .wait_durable(|| Err(SessionError::Storage("disk full".into())))
            .unwrap_err();
        assert_eq!(err, SessionError::Storage("disk full".into()));
        gc.wait_durable(|| Ok(())).unwrap();
    }
}
