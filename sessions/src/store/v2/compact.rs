//! Offline compaction: the store is rewritten into a fresh sled directory inside its own
//! (`compact.new`), which is then swapped in.
//!
//! Why: sled 0.34 appends every change to its log and reclaims space lazily, and it writes its
//! snapshot (the page table it would otherwise rebuild) only while it opens
//! (`pagecache::snapshot::read_snapshot_or_default`, from `PageCache::start`). A store written
//! by a long run therefore holds several versions of most pages, and the next open reads the
//! whole log written since the last open. A rewrite holds each live page once, and is opened
//! once before it is swapped in, so its snapshot covers everything: the next open reads the
//! snapshot and nothing else.
//!
//! Crash safety, by markers on disk (each written and its directory synced before the next
//! step):
//!
//! 1. the copy is built in `DIR/compact.new`, flushed, opened once (its snapshot), closed;
//! 2. `compact.new/COMPLETE` is written: from here the new copy wins;
//! 3. the old store's files (`db`, `conf`, `snap.*`, `blobs`) move into `DIR/compact.old`, then
//!    `compact.old/MOVED` is written;
//! 4. the new copy's files move up into `DIR`; then `compact.new` and `compact.old` are deleted.
//!
//! [`recover`] (run by every open before sled opens the directory) finishes what a crash
//! interrupted: with `MOVED`, step 4 again; with `COMPLETE` only, steps 3 and 4 (no new file is
//! in `DIR` yet, so every sled file there is old); with neither, the unfinished copy is
//! deleted and the old store is untouched.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sled::Batch;

use super::layout::MetaKey;
use super::{SledStoreV2, TREE};
use crate::error::{Result, SessionError};

const NEW: &str = "compact.new";
const OLD: &str = "compact.old";
const COMPLETE: &str = "COMPLETE";
const MOVED: &str = "MOVED";
/// Keys copied per batch.
const COPY_BATCH: usize = 10_000;

/// What a compaction did.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompactStats {
    /// Bytes on disk before (sled's files).
    pub bytes_before: u64,
    /// Bytes on disk after.
    pub bytes_after: u64,
    /// Keys copied, over every tree.
    pub keys: u64,
    /// The whole compaction.
    pub elapsed: Duration,
}

fn io_err(what: &str, path: &Path, e: io::Error) -> SessionError {
    SessionError::Storage(format!("compaction: {what} {}: {e}", path.display()))
}

/// Whether a directory entry is one of sled's files.
fn is_sled_file(name: &str) -> bool {
    matches!(name, "db" | "conf" | "blobs") || name.starts_with("snap.")
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err("syncing", dir, e))
}

fn write_marker(dir: &Path, name: &str) -> Result<()> {
    let path = dir.join(name);
    fs::File::create(&path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err("writing", &path, e))?;
    sync_dir(dir)
}

fn remove_all(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", path, e)),
    }
}

/// Moves every sled file of `from` into `to` (created if missing).
fn move_sled_files(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| io_err("creating", to, e))?;
    for entry in fs::read_dir(from).map_err(|e| io_err("listing", from, e))? {
        let entry = entry.map_err(|e| io_err("listing", from, e))?;
        let name = entry.file_name();
        if is_sled_file(&name.to_string_lossy()) {
            fs::rename(entry.path(), to.join(&name))
                .map_err(|e| io_err("moving", &entry.path(), e))?;
        }
    }
    sync_dir(from)?;
    sync_dir(to)
}

/// Finishes or undoes a compaction a crash interrupted (see the module's comment). Answers
/// whether there was one.
pub(super) fn recover(dir: &Path) -> Result<bool> {
    let new = dir.join(NEW);
    let old = dir.join(OLD);
    if old.join(MOVED).exists() {
        move_sled_files(&new, dir)?;
    } else if new.join(COMPLETE).exists() {
        move_sled_files(dir, &old)?;
        write_marker(&old, MOVED)?;
        move_sled_files(&new, dir)?;
    } else if new.exists() || old.exists() {
        // Either an unfinished copy (the old store is intact) or only the leftovers of a
        // finished swap.
        let unfinished = new.exists();
        remove_all(&new)?;
        remove_all(&old)?;
        sync_dir(dir)?;
        if unfinished {
            tracing::warn!("deleted an unfinished compaction of {}", dir.display());
        }
        return Ok(unfinished);
    } else {
        return Ok(false);
    }
    remove_all(&new)?;
    remove_all(&old)?;
    sync_dir(dir)?;
    tracing::info!(
        "finished a compaction of {} a crash interrupted",
        dir.display()
    );
    Ok(true)
}

/// Bytes of sled's files under `dir` (not its `compact.*` directories).
fn sled_bytes(dir: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => fs::read_dir(p)
                .map(|es| es.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    fs::read_dir(dir)
        .map(|es| {
            es.flatten()
                .filter(|e| is_sled_file(&e.file_name().to_string_lossy()))
                .map(|e| walk(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// Opens the sled directory `dir`, waiting while a store of this process that was just dropped
/// still holds its lock.
fn open_sled(dir: &Path, config: &sled::Config) -> Result<sled::Db> {
    super::dir_lock::open_when_free(dir, Duration::from_secs(30), || Ok(config.open()?))
}

/// Rewrites the store in `dir` into a fresh directory and swaps it in (offline: the store must
/// not be open elsewhere; sled's lock makes sure of it). The directory is first opened as a
/// store, so one of the previous layout is upgraded and the counters are checkpointed.
pub fn compact(dir: &Path) -> Result<CompactStats> {
    let started = Instant::now();
    let store = SledStoreV2::open(dir)?;
    let bytes_before = sled_bytes(dir);
    let keys = build_copy(&store, dir)?;
    let bytes_after = sled_bytes(&dir.join(NEW));
    // Swapped while the old store is still open, so its lock keeps another process out of it
    // until the new files are in place.
    recover(dir)?;
    drop(store);
    Ok(CompactStats {
        bytes_before,
        bytes_after,
        keys,
        elapsed: started.elapsed(),
    })
}

/// Steps 1 and 2: the copy of the open `store` of `dir` in `dir/compact.new`, opened once and
/// marked complete. Answers how many keys it copied.
pub(super) fn build_copy(store: &SledStoreV2, dir: &Path) -> Result<u64> {
    store.checkpoint()?;
    store.wait_durable()?;
    let new_dir: PathBuf = dir.join(NEW);
    remove_all(&new_dir)?;
    // Ids handed out by the new directory's generator continue after the old one's.
    let id_base = store.next_id()?;
    let mut keys = 0u64;
    {
        let new = open_sled(
            &new_dir,
            &sled::Config::new().path(&new_dir).cache_capacity(64 << 20),
        )?;
        for name in store.db.tree_names() {
            let from = store.db.open_tree(&name)?;
            let to = new.open_tree(&name)?;
            let mut batch = Batch::default();
            let mut n = 0;
            for item in from.iter() {
                let (k, v) = item?;
                batch.insert(k, v);
                n += 1;
                if n == COPY_BATCH {
                    to.apply_batch(std::mem::take(&mut batch))?;
                    keys += n as u64;
                    n = 0;
                }
            }
            to.apply_batch(batch)?;
            keys += n as u64;
        }
        new.open_tree(TREE)?
            .insert(MetaKey::IdBase.encode(), &id_base.to_be_bytes()[..])?;
        new.flush()?;
    }
    // Opened once more, so that its snapshot covers the whole copy.
    drop(open_sled(&new_dir, &sled::Config::new().path(&new_dir))?);
    write_marker(&new_dir, COMPLETE)?;
    Ok(keys)
}
