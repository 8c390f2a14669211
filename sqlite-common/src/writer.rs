//! The single writer with group commit, for both SQLite backends. Writes outside
//! transactions (put, delete, batch, purge) queue here ([`queue`]); one task takes
//! every write waiting at that moment (up to [`MAX_GROUP_OPS`] operations) and applies
//! them on one connection in ONE `BEGIN IMMEDIATE` transaction, commits once and only
//! then answers each caller. Writers of one store therefore never fight
//! over SQLite's write lock, and a commit is shared by everyone who was waiting.
//!
//! A backend says how a group is applied on its connection ([`GroupWriter`]); how its
//! callers are answered when something fails is the failure rule of
//! [`round`](crate::round), and when the log is checkpointed the policy of
//! [`wal`](crate::wal), both decided here for every backend.
//!
//! A caller whose future is dropped before its group starts is skipped; dropped later,
//! its write may or may not be applied, never in part.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

use group_commit::writes;
use storage_api::{Condition, PutOptions, Result, Version, WriteOp, WriteResult};

use crate::queue::{Call, Conn, Lender, Queue, Server};
use crate::round::{Group, Round, Settled};
use crate::wal::Checkpoint;
pub use crate::writes::{MAX_GROUP_OPS, Request, Write, Writer, Written};

/// How a backend applies groups of writes on its connection: what each SQLite backend
/// implements, once.
pub trait GroupWriter: Sized + Send + Sync + 'static {
    /// The store that holds the [`Writer`] and lends connections.
    type Store: Lender;

    /// Whether groups are applied on a thread of the connection's own (a blocking
    /// driver) rather than on the async task that holds it. Such a backend settles
    /// groups there, answering callers from that thread, and its rounds go on with
    /// the groups queued meanwhile, without a hand-off per group.
    ///
    /// Either way a write that finds the writer idle is served on its caller's task
    /// (see [`call_or_lead`](crate::queue::call_or_lead)), sparing it the hand-offs to
    /// and from the writer's; a backend on its own thread may take a lone write there
    /// too (see [`Round::put_back`]).
    const ON_OWN_THREAD: bool;

    /// The store's writer.
    fn writer(store: &Self::Store) -> &Writer;

    /// Takes the steps of `round` on `conn`, as they come from [`Round::next_step`]:
    /// a `PASSIVE` checkpoint, reported with [`Round::checkpointed`]; or a group, its
    /// writes applied in order in ONE `BEGIN IMMEDIATE` transaction, committed, then
    /// [settled](Round::settle) with the outcome. A refused write (a failed
    /// condition; a batch refused at an operation, undone to its own savepoint) gets
    /// its error and the others go on; a failed statement is
    /// [`Fault::Statement`](crate::round::Fault::Statement) with the transaction
    /// rolled back; a failure of the group as a whole is
    /// [`Fault::Transaction`](crate::round::Fault::Transaction). Returns
    /// [`Round::finish`].
    fn apply<'a>(
        store: &'a Arc<Self::Store>,
        conn: &'a mut Conn<GroupCommit<Self>>,
        round: Round<Self::Store>,
    ) -> impl Future<Output = Settled> + Send + 'a;

    /// Runs a checkpoint of `kind` on a connection other than the writer's, if one is
    /// free now: the frames left in the log, or `None` if none was free or it failed.
    fn checkpoint_beside(
        store: &Arc<Self::Store>,
        kind: Checkpoint,
    ) -> impl Future<Output = Option<i64>> + Send + '_;
}

/// The [`Server`] of a [`GroupWriter`]'s queue: the failure rule and the checkpoints.
#[derive(Debug)]
pub struct GroupCommit<W>(PhantomData<W>);

impl<W: GroupWriter> Server for GroupCommit<W> {
    type Store = W::Store;
    type Request = Request;
    type Answer = Written;
    const OPERATION: &'static str = "write";
    const MAX_GROUP: usize = MAX_GROUP_OPS;

    fn weight(request: &Request) -> usize {
        request.write.ops()
    }

    fn queue(store: &W::Store) -> &Queue<Request, Written> {
        W::writer(store).queue()
    }

    async fn serve(
        store: &Arc<W::Store>,
        conn: &mut Conn<Self>,
        calls: Vec<Call<Request, Written>>,
    ) -> bool {
        let round = |group, goes_on| Round::new(store, W::writer, committed::<W>, group, goes_on);
        let settled = W::apply(store, conn, round(Group::new(calls), W::ON_OWN_THREAD)).await;
        for single in settled.retry {
            let _ = W::apply(store, conn, round(single, false)).await;
        }
        settled.clean
    }
}

/// Counts `ops` write operations committed with the automatic checkpoint off, and
/// starts a background checkpoint when the schedule says so (see
/// [`wal`](crate::wal)). The writer counts its own groups; a backend calls this for
/// its write transactions when their connections have the automatic checkpoint off.
pub fn committed<W: GroupWriter>(store: &Arc<W::Store>, ops: usize) {
    let Some(schedule) = W::writer(store).checkpoints() else {
        return;
    };
    let Some(kind) = schedule.committed(ops) else {
        return;
    };
    // A writer on a thread of its connection's own runs inside its runtime's context.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        schedule.finished(None);
        return;
    };
    let store = Arc::clone(store);
    runtime.spawn(async move {
        let log_frames = W::checkpoint_beside(&store, kind).await;
        if let Some(schedule) = W::writer(&store).checkpoints() {
            schedule.finished(log_frames);
        }
    });
}

/// Queues `write` for the next commit and returns its result once that commit is
/// done; see [`group_commit::writes::submit`]. A write that finds the writer idle is
/// served on the caller's own task.
pub async fn submit<W: GroupWriter>(
    store: &Arc<W::Store>,
    write: Write,
    now: SystemTime,
) -> Result<Written> {
    writes::submit::<GroupCommit<W>>(store, write, now).await
}

/// Puts through the writer; see [`submit`].
pub async fn put<W: GroupWriter>(
    store: &Arc<W::Store>,
    now: SystemTime,
    key: &[u8],
    value: &[u8],
    options: PutOptions,
) -> Result<Version> {
    writes::put::<GroupCommit<W>>(store, now, key, value, options).await
}

/// Deletes through the writer; see [`submit`].
pub async fn delete<W: GroupWriter>(
    store: &Arc<W::Store>,
    now: SystemTime,
    key: &[u8],
    condition: Condition,
) -> Result<bool> {
    writes::delete::<GroupCommit<W>>(store, now, key, condition).await
}

/// Applies a batch through the writer; see [`submit`].
pub async fn batch<W: GroupWriter>(
    store: &Arc<W::Store>,
    now: SystemTime,
    ops: Vec<WriteOp>,
) -> Result<Vec<WriteResult>> {
    writes::batch::<GroupCommit<W>>(store, now, ops).await
}

/// Purges expired entries through the writer; see [`submit`].
pub async fn purge_expired<W: GroupWriter>(store: &Arc<W::Store>, now: SystemTime) -> Result<u64> {
    writes::purge_expired::<GroupCommit<W>>(store, now).await
}
