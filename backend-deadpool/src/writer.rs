//! The single writer of a deadpool store: put, delete, batch and purge go through
//! [`sqlite_common::writer`] (group commit, its failure rule and the checkpoint
//! schedule of [`sqlite_common::wal`]); this file is deadpool's side of it. A group
//! runs in one closure on the lent connection's blocking thread ([`group`]), but a lone
//! put or delete whose commit does not wait for the disk runs on the async thread that
//! asked ([`Writes::write_here`]); background checkpoints run on another pool
//! connection when one is free, and the writer's own on its connection. The writer
//! turns SQLite's automatic checkpoint off on the connections it applies groups on and
//! leaves it off; read-write transactions and `with_connection` get SQLite's default
//! back first ([`Autocheckpoint`]), so transactions, which keep it, do not count
//! towards the schedule.

use std::sync::Arc;
use std::time::Duration;

use sqlite_common::queue::Lender;
use sqlite_common::round::{Fault, Round, Settled, Step};
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
    /// The connections' busy timeout, restored after a write on the async thread.
    busy_timeout: Duration,
    /// A commit writes to the log without waiting for the disk, so a lone write may
    /// run on the async thread ([`Writes::write_here`]).
    commits_in_memory: bool,
    writer: Writer,
}

/// How a store's writer applies its groups.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterSettings {
    /// The store's acquire timeout, for the writer's connection.
    pub(crate) acquire_timeout: Duration,
    /// The connections' busy timeout.
    pub(crate) busy_timeout: Duration,
    /// The database is in WAL mode: the writer follows the checkpoint schedule.
    pub(crate) wal: bool,
    /// WAL mode with `synchronous` NORMAL or OFF: a commit does not wait for the disk.
    pub(crate) commits_in_memory: bool,
}

impl Writes {
    /// A writer taking its connections from `pool`.
    pub(crate) fn new(
        pool: Arc<ConnPool>,
        ctx: Arc<Ctx>,
        lifecycle: Arc<Lifecycle>,
        settings: WriterSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            ctx,
            lifecycle,
            acquire_timeout: settings.acquire_timeout,
            busy_timeout: settings.busy_timeout,
            commits_in_memory: settings.commits_in_memory,
            writer: Writer::new(settings.wal),
        })
    }

    /// Takes `round`'s first step on the calling (async) thread when it is a single
    /// put or delete that finds the write lock free at once: its commit does not wait
    /// for the disk, so it takes about as long as a short read, less than the
    /// hand-offs to a blocking thread and back. Whether steps are left for the
    /// connection's thread: the first (given back) when it was anything else or the
    /// lock was taken, or groups queued meanwhile.
    fn write_here(
        &self,
        lease: &mut Lease,
        round: &mut Round<Self>,
        autocheckpoint: Autocheckpoint,
    ) -> bool {
        let group = match round.next_step() {
            None => return false,
            Some(Step::Apply(group)) if group::is_single_write(&group) => group,
            Some(step) => {
                round.put_back(step);
                return true;
            }
        };
        let ran = lease.run_here(self.busy_timeout, autocheckpoint, |conn| {
            Ok(group::try_here(
                conn,
                &self.ctx,
                &self.pool,
                group.requests(),
            ))
        });
        match ran {
            Ok(Some(outcome)) => round.settle(group, outcome),
            // Another connection holds the write lock: the thread waits for it.
            Ok(None) => {
                round.put_back(Step::Apply(group));
                return true;
            }
            Err(e) => round.settle(group, Err(Fault::Transaction(self.pool.fail("write", e)))),
        }
        match round.next_step() {
            None => false,
            Some(step) => {
                round.put_back(step);
                true
            }
        }
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
    /// per hand-off to it (but for a lone write that can take the async thread's
    /// turn, [`Writes::write_here`]).
    const ON_OWN_THREAD: bool = true;

    async fn apply(store: &Arc<Self>, lease: &mut Lease, mut round: Round<Self>) -> Settled {
        // In WAL mode the writer follows the checkpoint schedule, SQLite's automatic
        // checkpoint off.
        let autocheckpoint = if store.writer.checkpoints_manually() {
            Autocheckpoint::Off
        } else {
            Autocheckpoint::AsIs
        };
        if store.commits_in_memory && !store.write_here(lease, &mut round, autocheckpoint) {
            return round.finish();
        }
        let (ctx, pool) = (Arc::clone(&store.ctx), Arc::clone(&store.pool));
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
