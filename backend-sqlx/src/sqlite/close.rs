//! Closing a SQLite store: drain, close the pool's connections, checkpoint on the
//! keeper connection and close it last, report.

use std::time::Duration;

use sqlx::Connection;
use storage_api::{CloseReason, CloseReport};

use super::shared::Shared;

/// How long `close` waits for connections to come back once no work is in flight
/// (they return through spawned tasks, so this is normally a few milliseconds).
const RETURN_BOUND: Duration = Duration::from_secs(5);

/// How long `close` waits for connections still held by work it gave up on; those
/// close later, when the work drops them.
const FORCED_BOUND: Duration = Duration::from_millis(100);

/// The longest `close` waits for one idle connection to close.
const CONNECTION_CLOSE_BOUND: Duration = Duration::from_secs(1);

/// The longest `close` waits for the checkpoint to finish.
const CHECKPOINT_BOUND: Duration = Duration::from_secs(5);

impl Shared {
    /// Refuses new work at once, waits up to `close_grace` for in-flight work, closes
    /// the pool's connections, checkpoints the WAL on the keeper connection, closes
    /// the keeper last and reports. Idempotent.
    pub(crate) async fn close(&self) -> CloseReport {
        self.mark_closing();
        let drain = self.lifecycle.close(self.options.close_grace).await;
        if !drain.first {
            return CloseReport::new(true, drain.in_flight, drain.remaining, drain.waited, 0);
        }
        if drain.remaining > 0 {
            self.mark_forced();
            tracing::warn!(
                backend = "sqlx",
                remaining = drain.remaining,
                "close: in-flight work outlived the grace period"
            );
        }
        // Closes sqlx made before this point were its idle reaper's.
        self.accounting
            .reconcile(|| self.pool.size(), CloseReason::IdleTimeout);
        let size_before = self.pool.size();
        let bound = if drain.remaining == 0 {
            RETURN_BOUND
        } else {
            FORCED_BOUND
        };
        self.close_idle().await;
        // `Pool::close` refuses new acquires at once, then waits for every connection
        // to come back; bounded, so forced work cannot hang `close` (its connections
        // close when it drops them, the pool being closed).
        let _ = tokio::time::timeout(bound, self.pool.close()).await;
        self.close_keeper(drain.remaining == 0).await;
        if let Some(scratch) = &self.scratch {
            scratch.remove();
        }
        self.accounting
            .reconcile(|| self.pool.size(), CloseReason::Shutdown);
        let size_after = self.pool.size();
        CloseReport::new(
            false,
            drain.in_flight,
            drain.remaining,
            drain.waited,
            size_before.saturating_sub(size_after),
        )
    }

    /// Folds the WAL back into the database file and truncates it, so a closed store
    /// leaves one self-contained file, then closes the keeper connection: the pool's
    /// connections are closed by now (unless work was forced), so it is normally the
    /// last. Best effort. When work was forced (`drained` is false) a writer may still
    /// hold the lock, so the checkpoint is passive instead of waiting out the busy
    /// timeout.
    async fn close_keeper(&self, drained: bool) {
        let Some(mut keeper) = self.keeper.lock().await.take() else {
            return;
        };
        if self.persistent && self.options.enable_wal {
            let statement = if drained {
                "PRAGMA wal_checkpoint(TRUNCATE)"
            } else {
                "PRAGMA wal_checkpoint(PASSIVE)"
            };
            let checkpoint = sqlx::query_as::<_, (i64, i64, i64)>(statement).fetch_one(&mut keeper);
            match tokio::time::timeout(CHECKPOINT_BOUND, checkpoint).await {
                Ok(Ok((0, _, _))) => {}
                Ok(Ok(_)) => tracing::debug!(backend = "sqlx", "close: checkpoint was blocked"),
                Ok(Err(error)) => {
                    tracing::debug!(backend = "sqlx", %error, "close: checkpoint failed")
                }
                Err(_) => tracing::debug!(backend = "sqlx", "close: checkpoint was slow"),
            }
        }
        // Dropped on timeout: its worker thread finishes closing it.
        if let Ok(Err(error)) = tokio::time::timeout(CONNECTION_CLOSE_BOUND, keeper.close()).await {
            tracing::debug!(backend = "sqlx", %error, "close: keeper connection");
        }
    }

    /// Closes the connections sitting idle. `Pool::close` only closes them after
    /// every connection in use has come back, which forced work may delay.
    async fn close_idle(&self) {
        while let Some(conn) = self.pool.try_acquire() {
            match tokio::time::timeout(CONNECTION_CLOSE_BOUND, conn.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::debug!(backend = "sqlx", %error, "close: idle connection")
                }
                // Dropped: the connection's worker finishes closing on its own.
                Err(_) => {
                    tracing::debug!(backend = "sqlx", "close: idle connection was slow to close")
                }
            }
        }
    }
}
