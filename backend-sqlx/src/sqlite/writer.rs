//! The single writer of a SQLite store: put, delete, batch and purge go through
//! [`sqlite_common::writer`] (group commit, its failure rule and the checkpoint
//! schedule of [`sqlite_common::wal`]); this file is sqlx's side of it. A group is
//! applied by [`group`](super::group); the background checkpoints run on the store's
//! keeper connection, outside the pool, and the writer's own on its connection. Every
//! connection of the store has SQLite's automatic checkpoint off in WAL mode, so
//! write transactions report their commits too ([`committed`]).

use std::sync::Arc;

use sqlite_common::round::{Round, Settled, Step};
use sqlite_common::wal::{Checkpoint, WriterCheckpoint};
use sqlite_common::writer::{self, GroupWriter, Writer};
use sqlx::{Sqlite, SqliteConnection};
use storage_api::{Condition, PutOptions, Result, Version, WriteOp, WriteResult};

use super::group::run_group;
use super::shared::Shared;
use crate::common::stash::Lent;

/// sqlx's [`GroupWriter`]: applies groups on a lent pool connection.
#[derive(Debug)]
pub(crate) struct Writes;

impl GroupWriter for Writes {
    type Store = Shared;

    fn writer(shared: &Shared) -> &Writer {
        &shared.writer
    }

    /// Statements run on the connection's worker thread, but the group is driven
    /// from the async task that holds the connection.
    const ON_OWN_THREAD: bool = false;

    async fn apply(
        shared: &Arc<Shared>,
        conn: &mut Lent<Sqlite>,
        mut round: Round<Shared>,
    ) -> Settled {
        while let Some(step) = round.next_step() {
            match step {
                Step::Checkpoint => {
                    let ran = checkpoint(conn, Checkpoint::Passive).await;
                    round.checkpointed(match ran {
                        Ok((0, _)) => WriterCheckpoint::Done,
                        Ok(_) => WriterCheckpoint::Busy,
                        Err(error) => {
                            tracing::debug!(backend = "sqlx", %error, "the writer's WAL checkpoint failed");
                            WriterCheckpoint::Failed
                        }
                    });
                }
                Step::Apply(group) => {
                    let outcome = run_group(shared, conn, group.requests()).await;
                    round.settle(group, outcome);
                }
            }
        }
        round.finish()
    }

    async fn checkpoint_beside(shared: &Arc<Shared>, kind: Checkpoint) -> Option<i64> {
        // Busy only while `close` has it (and checkpoints itself): the next count
        // tries again.
        let mut keeper = shared.keeper.try_lock().ok()?;
        match checkpoint(keeper.as_mut()?, kind).await {
            Ok((_, log)) => Some(log),
            Err(error) => {
                tracing::debug!(backend = "sqlx", %error, "a background WAL checkpoint failed");
                None
            }
        }
    }
}

/// Runs a checkpoint of `kind` on `conn`: whether it was kept from running (1 when
/// another checkpoint held the log), and the frames in the log.
async fn checkpoint(conn: &mut SqliteConnection, kind: Checkpoint) -> sqlx::Result<(i64, i64)> {
    let (busy, log, _done): (i64, i64, i64) = sqlx::query_as(kind.pragma()).fetch_one(conn).await?;
    Ok((busy, log))
}

/// Counts `ops` operations a write transaction committed towards the checkpoint
/// schedule.
pub(crate) fn committed(shared: &Arc<Shared>, ops: usize) {
    writer::committed::<Writes>(shared, ops);
}

/// Puts through the writer; see [`writer::submit`].
pub(crate) async fn put(
    shared: &Arc<Shared>,
    key: &[u8],
    value: &[u8],
    options: PutOptions,
) -> Result<Version> {
    writer::put::<Writes>(shared, shared.now(), key, value, options).await
}

/// Deletes through the writer; see [`writer::submit`].
pub(crate) async fn delete(shared: &Arc<Shared>, key: &[u8], condition: Condition) -> Result<bool> {
    writer::delete::<Writes>(shared, shared.now(), key, condition).await
}

/// Applies a batch through the writer; see [`writer::submit`].
pub(crate) async fn batch(shared: &Arc<Shared>, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
    writer::batch::<Writes>(shared, shared.now(), ops).await
}

/// Purges expired entries through the writer; see [`writer::submit`].
pub(crate) async fn purge_expired(shared: &Arc<Shared>) -> Result<u64> {
    writer::purge_expired::<Writes>(shared, shared.now()).await
}
