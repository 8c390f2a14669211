//! Closing a SQLite store: drain, close the pool's connections, checkpoint on the
//! keeper connection and close it last, report.

use std::time::Duration;

use sqlite_common::wal::Checkpoint;
use sqlx::Connection;
use storage_api::CloseReport;

use super::shared::Shared;
use crate::common::close::{CONNECTION_CLOSE_BOUND, close_pool};

/// The longest `close` waits for the checkpoint to finish.
const CHECKPOINT_BOUND: Duration = Duration::from_secs(5);

impl Shared {
    /// Refuses new work at once, waits up to `close_grace` for in-flight work, closes
    /// the pool's connections, checkpoints the WAL on the keeper connection, closes
    /// the keeper last, removes a private database and reports. Idempotent.
    pub(crate) async fn close(&self) -> CloseReport {
        let after_pool = |drained| async move {
            self.close_keeper(drained).await;
            if let Some(scratch) = &self.scratch {
                scratch.remove();
            }
        };
        let (gate, pool, stash) = (&self.gate, &self.pool, &self.stash);
        close_pool(
            gate,
            pool,
            stash,
            &self.accounting,
            &self.options,
            after_pool,
        )
        .await
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
        if self.persistent && self.options.sqlite.enable_wal {
            let statement = if drained {
                Checkpoint::Truncate
            } else {
                Checkpoint::Passive
            };
            let checkpoint =
                sqlx::query_as::<_, (i64, i64, i64)>(statement.pragma()).fetch_one(&mut keeper);
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
}
