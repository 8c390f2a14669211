//! WAL checkpoints off the write path, on the schedule of [`sqlite_common::wal`]: with
//! WAL on, the store turns SQLite's automatic checkpoint off on its connections, runs
//! `PASSIVE` checkpoints on its keeper connection in tasks of their own, and has the
//! writer rewind the log now and then. Should the log still pass [`RESTART_FRAMES`]
//! (writes through transactions only, say), the background checkpoint is a `RESTART`
//! one, which waits for writers and readers. `close` checkpoints and truncates the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use sqlite_common::wal::CheckpointSchedule;
use sqlx::SqliteConnection;

use super::shared::Shared;

/// Log frames past which the background checkpoint rewinds the log itself.
pub(crate) const RESTART_FRAMES: i64 = 8_192;

/// The `PRAGMA` that turns SQLite's own checkpoint off, for every connection.
pub(crate) const AUTOCHECKPOINT_OFF: (&str, &str) = ("wal_autocheckpoint", "0");

/// When the next checkpoint is due.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    /// Whether the store checkpoints itself (WAL on, automatic checkpoints off).
    manual: bool,
    schedule: CheckpointSchedule,
    /// The next background checkpoint should be a `RESTART` one.
    restart_due: AtomicBool,
}

impl Checkpoints {
    /// Bookkeeping for a store whose connections have automatic checkpoints off
    /// (`manual`) or on.
    pub(crate) fn new(manual: bool) -> Self {
        Self {
            manual,
            schedule: CheckpointSchedule::default(),
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
        if !c.manual || !c.schedule.committed(ops) {
            return;
        }
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            let c = &shared.checkpoints;
            let mut ran = false;
            // Busy only while `close` has it (and checkpoints itself): the next count
            // tries again.
            if let Ok(mut keeper) = shared.keeper.try_lock()
                && let Some(conn) = keeper.as_mut()
            {
                let restart = c.restart_due.swap(false, SeqCst);
                match checkpoint(conn, restart).await {
                    Ok(log) => {
                        ran = true;
                        c.restart_due.store(log > RESTART_FRAMES, SeqCst);
                    }
                    Err(error) => {
                        tracing::debug!(backend = "sqlx", %error, "a background WAL checkpoint failed");
                    }
                }
            }
            c.schedule.finished(ran);
        });
    }

    /// Called by the writer before a group: when the schedule says so, checkpoints
    /// what was committed since the last background checkpoint on `conn`, so the
    /// group's transaction rewinds the log.
    pub(crate) async fn finish_checkpoint(&self, conn: &mut SqliteConnection) {
        if !self.checkpoints.schedule.take_rewind() {
            return;
        }
        if let Err(error) = checkpoint(conn, false).await {
            tracing::debug!(backend = "sqlx", %error, "the writer's WAL checkpoint failed");
        }
    }
}
