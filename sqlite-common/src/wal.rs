//! When the write-ahead log is checkpointed: the one policy of both SQLite backends,
//! followed by their group-commit [`writer`](crate::writer).
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, so
//! every write queued behind that commit waits while it copies pages and syncs. So in
//! WAL mode the writer's connection never checkpoints by itself (automatic checkpoint
//! off, [`AUTOCHECKPOINT_OFF`]) and the store follows this schedule instead:
//!
//! - Every commit made with the automatic checkpoint off counts its write operations
//!   ([`CheckpointSchedule::committed`]): the writer's groups, and the write
//!   transactions of a backend whose other connections have it off too.
//! - Every [`CHECKPOINT_EVERY_OPS`] committed operations, a checkpoint runs *beside*
//!   the writer, on another connection, in a task of its own: `PASSIVE` (it never
//!   waits for a lock), or `RESTART` when the last one left more than
//!   [`RESTART_FRAMES`] frames in the log (the log then outgrows what passive
//!   checkpoints keep up with; `RESTART` waits for readers and the writer to finish).
//!   If no connection is free, the next commit tries again.
//! - A checkpoint copies pages back but does not shorten the log: SQLite rewinds it
//!   only when a write transaction starts while every frame is checkpointed, which the
//!   writes committed during a background checkpoint prevent. So after every
//!   [`REWIND_EVERY_CHECKPOINTS`]th background checkpoint, and after any that found
//!   more than [`REWIND_FRAMES`] frames in the log (writes fast enough that no
//!   background checkpoint ever catches up), the writer checkpoints the little
//!   committed since on its own connection before its next group, and that group
//!   rewinds the log. Rewinding costs a sync of the database file in the write path,
//!   hence not after every checkpoint. A writer's checkpoint that finds a background
//!   one still running ([`WriterCheckpoint::Busy`]) is tried again before the next
//!   group.
//! - Should the background checkpoints fall [`OVERDUE_FACTOR`] rounds behind (no
//!   connection free, or each one failing), the writer checkpoints on its own
//!   connection before its next group, so the log stays bounded.
//! - `close` folds the log into the database file and truncates it
//!   ([`Checkpoint::Truncate`]), so a closed store leaves one self-contained file; a
//!   backend that cannot stop forced work first (it may still hold the lock) runs a
//!   `PASSIVE` one instead.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};

/// Committed write operations between two background checkpoints.
pub const CHECKPOINT_EVERY_OPS: usize = 512;

/// Background checkpoints between two rewinds of the log by the writer.
pub const REWIND_EVERY_CHECKPOINTS: u32 = 4;

/// Log frames past which the next background checkpoint is a `RESTART` one.
pub const RESTART_FRAMES: i64 = 8_192;

/// Log frames past which the writer rewinds the log after a background checkpoint,
/// whatever [`REWIND_EVERY_CHECKPOINTS`] says.
pub const REWIND_FRAMES: i64 = 2_048;

/// How the writer's own checkpoint went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterCheckpoint {
    /// It ran.
    Done,
    /// Another checkpoint (a background one) held the log: it did not run, and is
    /// tried again before the next group.
    Busy,
    /// It failed; it is given up until the next one is due.
    Failed,
}

/// Rounds of [`CHECKPOINT_EVERY_OPS`] without a background checkpoint after which the
/// writer checkpoints on its own connection.
pub const OVERDUE_FACTOR: usize = 8;

/// The `PRAGMA` (name, value) that turns SQLite's automatic checkpoint off.
pub const AUTOCHECKPOINT_OFF: (&str, &str) = ("wal_autocheckpoint", "0");

/// SQLite's default `wal_autocheckpoint` (pages), for connections handed back to code
/// that expects SQLite's defaults.
pub const AUTOCHECKPOINT_DEFAULT: (&str, &str) = ("wal_autocheckpoint", "1000");

/// A kind of WAL checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// Copies what it can without waiting for any lock.
    Passive,
    /// Waits for the writer and readers, copies everything and rewinds the log.
    Restart,
    /// Like `Restart`, and truncates the log file to nothing.
    Truncate,
}

impl Checkpoint {
    /// The statement that runs it; its one row is (busy, log frames, checkpointed
    /// frames).
    pub fn pragma(self) -> &'static str {
        match self {
            Checkpoint::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
            Checkpoint::Restart => "PRAGMA wal_checkpoint(RESTART)",
            Checkpoint::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
        }
    }
}

/// The checkpoint schedule of one store; see the [module](self) documentation.
#[derive(Debug, Default)]
pub struct CheckpointSchedule {
    since: AtomicUsize,
    running: AtomicBool,
    done: AtomicU32,
    rewind_due: AtomicBool,
    restart_due: AtomicBool,
}

impl CheckpointSchedule {
    /// Counts `ops` committed write operations. `Some(kind)` when a background
    /// checkpoint of that kind should start now (the caller must then call
    /// [`finished`](Self::finished)).
    pub fn committed(&self, ops: usize) -> Option<Checkpoint> {
        let since = self.since.fetch_add(ops, SeqCst) + ops;
        if since < CHECKPOINT_EVERY_OPS || self.running.swap(true, SeqCst) {
            return None;
        }
        Some(if self.restart_due.swap(false, SeqCst) {
            Checkpoint::Restart
        } else {
            Checkpoint::Passive
        })
    }

    /// Records the end of a background checkpoint: `Some(frames)` left in the log if
    /// it ran, `None` if it could not (the next commit then tries again).
    pub fn finished(&self, log_frames: Option<i64>) {
        if let Some(frames) = log_frames {
            self.since.store(0, SeqCst);
            let done = self.done.fetch_add(1, SeqCst) + 1;
            if done.is_multiple_of(REWIND_EVERY_CHECKPOINTS) || frames > REWIND_FRAMES {
                self.rewind_due.store(true, SeqCst);
            }
            self.restart_due.store(frames > RESTART_FRAMES, SeqCst);
        }
        self.running.store(false, SeqCst);
    }

    /// `true` when the writer should checkpoint on its own connection before its next
    /// group: a rewind is due, or the background checkpoints are overdue.
    pub fn writer_checkpoint_due(&self) -> bool {
        self.rewind_due.load(SeqCst)
            || self.since.load(SeqCst) >= CHECKPOINT_EVERY_OPS * OVERDUE_FACTOR
    }

    /// Records the writer's own checkpoint: once it ran, the rewind is done and an
    /// overdue count starts afresh; one that failed gives the rewind up until the
    /// next is due; one that was busy stays due.
    pub fn writer_checkpointed(&self, ran: WriterCheckpoint) {
        match ran {
            WriterCheckpoint::Busy => return,
            WriterCheckpoint::Failed => {}
            WriterCheckpoint::Done => {
                if self.since.load(SeqCst) >= CHECKPOINT_EVERY_OPS * OVERDUE_FACTOR {
                    self.since.store(0, SeqCst);
                }
            }
        }
        self.rewind_due.store(false, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_is_rewound_after_the_next_background_checkpoint() {
        let s = CheckpointSchedule::default();
        assert!(s.committed(CHECKPOINT_EVERY_OPS).is_some());
        s.finished(Some(REWIND_FRAMES));
        assert!(!s.writer_checkpoint_due());
        assert!(s.committed(CHECKPOINT_EVERY_OPS).is_some());
        s.finished(Some(REWIND_FRAMES + 1));
        assert!(s.writer_checkpoint_due());
        // A background checkpoint still held the log: the rewind stays due.
        s.writer_checkpointed(WriterCheckpoint::Busy);
        assert!(s.writer_checkpoint_due());
        s.writer_checkpointed(WriterCheckpoint::Done);
        assert!(!s.writer_checkpoint_due());
        // A failed one is given up until the next is due.
        assert!(s.committed(CHECKPOINT_EVERY_OPS).is_some());
        s.finished(Some(REWIND_FRAMES + 1));
        s.writer_checkpointed(WriterCheckpoint::Failed);
        assert!(!s.writer_checkpoint_due());
    }

    #[test]
    fn checkpoints_every_so_many_ops_and_rewinds_every_so_many_checkpoints() {
        let s = CheckpointSchedule::default();
        assert_eq!(s.committed(CHECKPOINT_EVERY_OPS - 1), None);
        assert_eq!(s.committed(1), Some(Checkpoint::Passive));
        // Running: no second one.
        assert_eq!(s.committed(CHECKPOINT_EVERY_OPS), None);
        let mut rewinds = 0;
        for _ in 0..REWIND_EVERY_CHECKPOINTS * 3 {
            s.finished(Some(10));
            if s.writer_checkpoint_due() {
                rewinds += 1;
                s.writer_checkpointed(WriterCheckpoint::Done);
            }
            assert!(!s.writer_checkpoint_due());
            assert_eq!(s.committed(CHECKPOINT_EVERY_OPS), Some(Checkpoint::Passive));
        }
        assert_eq!(rewinds, 3);
        // A checkpoint that could not run keeps the count, so the next commit tries again.
        s.finished(None);
        assert_eq!(s.committed(1), Some(Checkpoint::Passive));
        assert!(!s.writer_checkpoint_due());
    }

    #[test]
    fn a_log_left_long_makes_the_next_background_checkpoint_a_restart() {
        let s = CheckpointSchedule::default();
        assert_eq!(s.committed(CHECKPOINT_EVERY_OPS), Some(Checkpoint::Passive));
        s.finished(Some(RESTART_FRAMES + 1));
        assert_eq!(s.committed(CHECKPOINT_EVERY_OPS), Some(Checkpoint::Restart));
        s.finished(Some(RESTART_FRAMES));
        assert_eq!(s.committed(CHECKPOINT_EVERY_OPS), Some(Checkpoint::Passive));
        // A restart that could not run is asked for again.
        s.finished(Some(RESTART_FRAMES + 1));
        assert_eq!(s.committed(CHECKPOINT_EVERY_OPS), Some(Checkpoint::Restart));
        s.finished(None);
        assert_eq!(s.committed(1), Some(Checkpoint::Passive));
    }

    #[test]
    fn the_writer_checkpoints_itself_when_background_checkpoints_fall_behind() {
        let s = CheckpointSchedule::default();
        let overdue = CHECKPOINT_EVERY_OPS * OVERDUE_FACTOR;
        assert!(s.committed(overdue - 1).is_some());
        s.finished(None);
        assert!(!s.writer_checkpoint_due());
        assert!(s.committed(1).is_some());
        s.finished(None);
        // Due before every group until a checkpoint runs.
        assert!(s.writer_checkpoint_due());
        s.writer_checkpointed(WriterCheckpoint::Failed);
        assert!(s.writer_checkpoint_due());
        s.writer_checkpointed(WriterCheckpoint::Busy);
        assert!(s.writer_checkpoint_due());
        s.writer_checkpointed(WriterCheckpoint::Done);
        assert!(!s.writer_checkpoint_due());
        assert_eq!(s.committed(CHECKPOINT_EVERY_OPS - 1), None);
    }
}
