//! The single writer of a deadpool store: put, delete, batch and purge go through
//! [`sqlite_common::writer`] (group commit, its failure rule and the checkpoint
//! schedule of [`sqlite_common::wal`]); this file is deadpool's side of it. A group
//! runs in one closure on the lent connection's blocking thread ([`group`]);
//! background checkpoints run on another pool connection when one is free, and the
//! writer's own on its connection. The writer turns SQLite's automatic checkpoint
//! off on the connections it applies groups on and leaves it off; read-write
//! transactions and `with_connection` get SQLite's default back first
//! ([`Autocheckpoint`]), so transactions, which keep it, do not count towards the
//! schedule.

use std::sync::Arc;
use std::time::Duration;

use sqlite_common::queue::Lender;
use sqlite_common::round::{Round, Settled};
use sqlite_common::wal::Checkpoint;
use sqlite_common::writer::{self, GroupWriter, Writer};
use storage_api::backend::{Lifecycle, PoolInstruments};
use storage_api::{Condition, PutOptions, Result, Version, WriteOp, WriteResult};

use crate::connection::Autocheckpoint;
use crate::errors::DbError;
use crate::group;
use crate::lease::Lease;
use crate::ops::Ctx;
use crate::pool::ConnPool;

/// The writer of one store, with what it needs to borrow connections and apply groups.
#[derive(Debug)]
pub(crate) struct Writes {
    pool: Arc<ConnPool>,
    ctx: Arc<Ctx>,
    lifecycle: Arc<Lifecycle>,
    acquire_timeout: Duration,
    writer: Writer,
}

impl Writes {
    /// A writer taking its connection from `pool` within `acquire_timeout`;
    /// `manual_checkpoints` when the database is in WAL mode.
    pub(crate) fn new(
        pool: Arc<ConnPool>,
        ctx: Arc<Ctx>,
        lifecycle: Arc<Lifecycle>,
        acquire_timeout: Duration,
        manual_checkpoints: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            ctx,
            lifecycle,
            acquire_timeout,
            writer: Writer::new(manual_checkpoints),
        })
    }

    /// Writes queued and not yet taken into a group: callers waiting for the writer's
    /// connection.
    pub(crate) fn queued(&self) -> usize {
        self.writer.queued()
    }
}

impl Lender for Writes {
    type Conn = Lease;

    async fn acquire(&self, _operation: &'static str) -> Result<Lease> {
        let work = self.lifecycle.enter()?;
        self.pool.acquire(self.acquire_timeout, work).await
    }

    fn release(&self, conn: Lease) {
        drop(conn);
    }

    fn instruments(&self) -> &PoolInstruments {
        self.pool.instruments()
    }

    fn is_closing(&self) -> bool {
        self.lifecycle.is_closed()
    }
}

impl GroupWriter for Writes {
    type Store = Self;

    fn writer(store: &Self) -> &Writer {
        &store.writer
    }

    /// rusqlite blocks: groups run on the connection's blocking thread, one round
    /// per hand-off to it.
    const ON_OWN_THREAD: bool = true;

    async fn apply(store: &Arc<Self>, lease: &mut Lease, round: Round<Self>) -> Settled {
        let (ctx, pool) = (Arc::clone(&store.ctx), Arc::clone(&store.pool));
        // In WAL mode the writer follows the checkpoint schedule, SQLite's automatic
        // checkpoint off.
        let autocheckpoint = if store.writer.checkpoints_manually() {
            Autocheckpoint::Off
        } else {
            Autocheckpoint::AsIs
        };
        let ran = lease
            .run(autocheckpoint, move |conn| {
                Ok(group::apply_round(conn, &ctx, &pool, round))
            })
            .await;
        ran.unwrap_or_else(|e| {
            // The closure panicked or never ran; the callers of its groups hear that
            // the writer stopped.
            tracing::debug!(backend = "deadpool", error = %store.pool.fail("write", e),
                "the writer's connection failed");
            Settled::failed()
        })
    }

    async fn checkpoint_beside(store: &Arc<Self>, kind: Checkpoint) -> Option<i64> {
        // No free connection, or closing: the next round tries again.
        let work = store.lifecycle.enter().ok()?;
        let mut lease = store.pool.try_acquire(work).await?;
        match lease
            .run(Autocheckpoint::AsIs, move |conn| checkpoint(conn, kind))
            .await
        {
            Ok(log) => Some(log),
            Err(e) => {
                tracing::debug!(
                    backend = "deadpool",
                    error = %crate::errors::map_error("checkpoint", e),
                    "a background WAL checkpoint failed"
                );
                None
            }
        }
    }
}

/// Runs a checkpoint of `kind` on `conn`: the frames in the log.
fn checkpoint(
    conn: &mut rusqlite::Connection,
    kind: Checkpoint,
) -> std::result::Result<i64, DbError> {
    Ok(conn.query_row(kind.pragma(), [], |row| row.get(1))?)
}

/// Puts through the writer; see [`writer::submit`].
pub(crate) async fn put(
    writes: &Arc<Writes>,
    key: &[u8],
    value: &[u8],
    options: PutOptions,
) -> Result<Version> {
    let _work = writes.lifecycle.enter()?;
    writer::put::<Writes>(writes, writes.ctx.now(), key, value, options).await
}

/// Deletes through the writer; see [`writer::submit`].
pub(crate) async fn delete(writes: &Arc<Writes>, key: &[u8], condition: Condition) -> Result<bool> {
    let _work = writes.lifecycle.enter()?;
    writer::delete::<Writes>(writes, writes.ctx.now(), key, condition).await
}

/// Applies a batch through the writer; see [`writer::submit`].
pub(crate) async fn batch(writes: &Arc<Writes>, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
    let _work = writes.lifecycle.enter()?;
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    writer::batch::<Writes>(writes, writes.ctx.now(), ops).await
}

/// Purges expired entries through the writer; see [`writer::submit`].
pub(crate) async fn purge_expired(writes: &Arc<Writes>) -> Result<u64> {
    let _work = writes.lifecycle.enter()?;
    writer::purge_expired::<Writes>(writes, writes.ctx.now()).await
}
