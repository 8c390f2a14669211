//! When a SQLite backend checkpoints its write-ahead log itself, shared by the in-tree
//! SQLite backends.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, so
//! every write queued behind that commit waits while it copies pages and syncs. A
//! backend with a single writer turns it off and follows this schedule instead:
//!
//! - every [`CHECKPOINT_EVERY_OPS`] committed write operations, a `PASSIVE` checkpoint
//!   runs on another connection, beside the writer (it never waits for a lock);
//! - a checkpoint copies pages back but does not shorten the log: SQLite rewinds it
//!   only when a write transaction starts while every frame is checkpointed, which the
//!   writes committed during a background checkpoint prevent. So after every
//!   [`REWIND_EVERY_CHECKPOINTS`]th background checkpoint, the writer checkpoints the
//!   little committed since on its own connection before its next group, and that
//!   group rewinds the log. Rewinding costs a sync of the database file in the write
//!   path, hence not after every checkpoint.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};

/// Committed write operations between two background checkpoints.
pub const CHECKPOINT_EVERY_OPS: usize = 512;

/// Background checkpoints between two rewinds of the log by the writer.
pub const REWIND_EVERY_CHECKPOINTS: u32 = 4;

/// The checkpoint schedule of one store; see the [module](self) documentation.
#[derive(Debug, Default)]
pub struct CheckpointSchedule {
    since: AtomicUsize,
    running: AtomicBool,
    done: AtomicU32,
    rewind_due: AtomicBool,
}

impl CheckpointSchedule {
    /// Counts `ops` committed write operations. `true` when a background checkpoint
    /// should start now (the caller must then call [`finished`](Self::finished)).
    pub fn committed(&self, ops: usize) -> bool {
        let since = self.since.fetch_add(ops, SeqCst) + ops;
        since >= CHECKPOINT_EVERY_OPS && !self.running.swap(true, SeqCst)
    }

    /// Committed write operations since the last background checkpoint.
    pub fn since_checkpoint(&self) -> usize {
        self.since.load(SeqCst)
    }

    /// Records a checkpoint the writer ran itself (the background ones fell behind).
    pub fn checkpointed_inline(&self) {
        self.since.store(0, SeqCst);
    }

    /// Records the end of a background checkpoint (`ok`: it ran).
    pub fn finished(&self, ok: bool) {
        if ok {
            self.since.store(0, SeqCst);
            let done = self.done.fetch_add(1, SeqCst) + 1;
            if done.is_multiple_of(REWIND_EVERY_CHECKPOINTS) {
                self.rewind_due.store(true, SeqCst);
            }
        }
        self.running.store(false, SeqCst);
    }

    /// `true` (once) when the writer should checkpoint before its next group.
    pub fn take_rewind(&self) -> bool {
        self.rewind_due.swap(false, SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_every_so_many_ops_and_rewinds_every_so_many_checkpoints() {
        let s = CheckpointSchedule::default();
        assert!(!s.committed(CHECKPOINT_EVERY_OPS - 1));
        assert!(s.committed(1));
        // Running: no second one.
        assert!(!s.committed(CHECKPOINT_EVERY_OPS));
        let mut rewinds = 0;
        for _ in 0..REWIND_EVERY_CHECKPOINTS * 3 {
            s.finished(true);
            rewinds += u32::from(s.take_rewind());
            assert!(s.committed(CHECKPOINT_EVERY_OPS));
        }
        assert_eq!(rewinds, 3);
        // A failed checkpoint keeps the count, so the next commit tries again.
        s.finished(false);
        assert!(s.committed(1));
        assert!(!s.take_rewind());
    }
}
