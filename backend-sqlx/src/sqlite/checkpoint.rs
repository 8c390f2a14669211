//! WAL checkpoints off the write path. SQLite's automatic checkpoint runs inside the
//! commit that crosses its threshold, so every write queued behind that commit waits
//! while it copies pages back into the database file and syncs. With WAL on, the
//! store turns the automatic checkpoint off on its connections and instead, every
//! [`EVERY_OPS`] committed writes, runs a `PASSIVE` checkpoint on its keeper connection
//! in a task of its own, beside the writers (a passive checkpoint never waits for a
//! lock). `close` still checkpoints and truncates the log.
//!
//! A checkpoint copies pages back but does not shorten the log: SQLite rewinds it
//! when a write transaction starts while every frame is checkpointed, which writes
//! committed during a background checkpoint prevent. So once a background checkpoint
//! is done, the single writer checkpoints again on its own connection before its next
//! group (little is left to copy by then), and that group rewinds the log. Should the
//! log still pass [`RESTART_FRAMES`] (writes through transactions only, say), the
//! background checkpoint is a `RESTART` one, which waits for writers and readers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use sqlx::SqliteConnection;

use super::shared::Shared;

/// Committed write operations between two checkpoints.
pub(crate) const EVERY_OPS: usize = 512;

/// Log frames past which the background checkpoint rewinds the log itself.
pub(crate) const RESTART_FRAMES: i64 = 16_384;

/// The `PRAGMA` that turns SQLite's own checkpoint off, for every connection.
pub(crate) const AUTOCHECKPOINT_OFF: (&str, &str) = ("wal_autocheckpoint", "0");

/// When the next checkpoint is due, and whether one is running.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    /// Whether the store checkpoints itself (WAL on, automatic checkpoints off).
    manual: bool,
    since: AtomicUsize,
    running: AtomicBool,
    /// A background checkpoint finished: the writer should finish the job.
    rewind_due: AtomicBool,
    /// The next background checkpoint should be a `RESTART` one.
    restart_due: AtomicBool,
}

impl Checkpoints {
    /// Bookkeeping for a store whose connections have automatic checkpoints off
    /// (`manual`) or on.
    pub(crate) fn new(manual: bool) -> Self {
        Self {
            manual,
            since: AtomicUsize::new(0),
            running: AtomicBool::new(false),
            rewind_due: AtomicBool::new(false),
            restart_due: AtomicBool::new(false),
        }
    }
}

/// Runs a `PASSIVE` (or `RESTART`) checkpoint on `conn`: the frames in the log.
async fn checkpoint(conn: &mut SqliteConnection, restart: bool) -> sqlx::Result<i64> {
    let sql = if restart {
        "PRAGMA wal_checkpoint(RESTART)"
    } else {
        "PRAGMA wal_checkpoint(PASSIVE)"
    };
    let (_busy, log, _done): (i64, i64, i64) = sqlx::query_as(sql).fetch_one(conn).await?;
    Ok(log)
}

impl Shared {
    /// Counts `ops` committed write operations and starts a checkpoint when enough
    /// have been and none is running.
    pub(crate) fn committed(self: &Arc<Self>, ops: usize) {
        let c = &self.checkpoints;
        if !c.manual {
            return;
        }
        let since = c.since.fetch_add(ops, SeqCst) + ops;
        if since < EVERY_OPS || c.running.swap(true, SeqCst) {
            return;
        }
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            let c = &shared.checkpoints;
            // Busy only while `close` has it (and checkpoints itself) or while the
            // previous checkpoint ends: the next count tries again.
            if let Ok(mut keeper) = shared.keeper.try_lock()
                && let Some(conn) = keeper.as_mut()
            {
                let restart = c.restart_due.swap(false, SeqCst);
                match checkpoint(conn, restart).await {
                    Ok(log) => {
                        c.since.store(0, SeqCst);
                        c.rewind_due.store(true, SeqCst);
                        c.restart_due.store(log > RESTART_FRAMES, SeqCst);
                    }
                    Err(error) => {
                        tracing::debug!(backend = "sqlx", %error, "a background WAL checkpoint failed");
                    }
                }
            }
            c.running.store(false, SeqCst);
        });
    }

    /// Called by the writer before a group: when a background checkpoint has
    /// finished, checkpoints what was committed since on `conn`, so the group's
    /// transaction rewinds the log.
    pub(crate) async fn finish_checkpoint(&self, conn: &mut SqliteConnection) {
        if !self.checkpoints.rewind_due.swap(false, SeqCst) {
            return;
        }
        if let Err(error) = checkpoint(conn, false).await {
            tracing::debug!(backend = "sqlx", %error, "the writer's WAL checkpoint failed");
        }
    }
}
