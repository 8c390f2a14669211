//! The single writer with group commit. Writes outside transactions (put, delete,
//! batch, purge) queue here; one task takes every write waiting at that moment and
//! applies them on one pooled connection in ONE `BEGIN IMMEDIATE` transaction, commits
//! once and only then answers each caller. Writers of one store therefore never fight
//! over SQLite's write lock, and a commit is shared by everyone who was waiting.
//!
//! [`group`](super::group) applies one group with few statements. A write whose
//! condition fails writes nothing and the others stay. If a statement fails (a full
//! disk, say), the group is rolled back and each write is retried alone, so one
//! caller's failure is never another's.

use std::sync::Arc;
use std::time::SystemTime;

use sqlite_common::queue::{self, Call, Queue, Server, copy};
use sqlx::{Sqlite, SqliteConnection};
use storage_api::{
    Condition, ErrorKind, PutOptions, Result, StoreError, Version, WriteOp, WriteResult,
};

use super::group::{Fault, run_group};
use super::shared::Shared;
use crate::common::stash::Lent;

/// The most write operations (a batch counts each of its operations) one commit
/// takes; later writes wait for the next commit.
const MAX_GROUP_OPS: usize = 1024;

/// One write, as a caller hands it to the writer.
#[derive(Debug)]
pub(crate) enum Write {
    /// A single put or delete.
    Op(WriteOp),
    Batch(Vec<WriteOp>),
    Purge,
}

/// What a [`Write`] returned.
#[derive(Debug)]
pub(crate) enum Written {
    Op(WriteResult),
    Batch(Vec<WriteResult>),
    Purged(u64),
}

impl Write {
    /// How many versions applying it may take.
    pub(crate) fn versions_needed(&self) -> i64 {
        let is_put = |op: &WriteOp| matches!(op, WriteOp::Put { .. });
        let puts = match self {
            Write::Op(op) => usize::from(is_put(op)),
            Write::Batch(ops) => ops.iter().filter(|op| is_put(op)).count(),
            Write::Purge => 0,
        };
        i64::try_from(puts).unwrap_or(i64::MAX)
    }

    /// How many operations it counts as towards [`MAX_GROUP_OPS`].
    pub(crate) fn ops(&self) -> usize {
        match self {
            Write::Batch(ops) => ops.len().max(1),
            _ => 1,
        }
    }

    /// The operation name errors carry.
    pub(crate) fn operation(&self) -> &'static str {
        match self {
            Write::Op(WriteOp::Put { .. }) => "put",
            Write::Op(WriteOp::Delete { .. }) => "delete",
            Write::Batch(_) => "batch",
            Write::Purge => "purge_expired",
        }
    }
}

/// A queued write and the store's clock when its caller asked.
#[derive(Debug)]
pub(crate) struct Request {
    write: Write,
    now: SystemTime,
}

/// A queued write and the caller waiting for it.
type Job = Call<Request, Written>;

/// The single writer: serves the queue of writes (see [`sqlite_common::queue`]).
#[derive(Debug)]
pub(crate) struct Writes;

impl Server for Writes {
    type Store = Shared;
    type Request = Request;
    type Answer = Written;
    const OPERATION: &'static str = "write";
    const MAX_GROUP: usize = MAX_GROUP_OPS;

    fn weight(request: &Request) -> usize {
        request.write.ops()
    }

    fn queue(shared: &Shared) -> &Queue<Request, Written> {
        &shared.writer
    }

    async fn serve(shared: &Arc<Shared>, conn: &mut Lent<Sqlite>, calls: Vec<Job>) -> bool {
        shared.finish_checkpoint(conn).await;
        commit(shared, conn, calls).await
    }
}

/// Queues `write` for the next commit and returns its result once that commit is
/// done. The caller keeps its own in-flight guard.
///
/// A write that finds the writer idle is applied on the caller's own task (see
/// [`queue::call_or_lead`]).
///
/// If the returned future is dropped before the writer starts the write's group, the
/// write is skipped; dropped later, it may or may not be applied. It is never applied
/// in part.
pub(crate) async fn submit(shared: &Arc<Shared>, write: Write) -> Result<Written> {
    let now = shared.now();
    queue::call_or_lead::<Writes>(shared, Request { write, now }).await
}

/// Puts through the writer; see [`submit`].
pub(crate) async fn put(
    shared: &Arc<Shared>,
    key: &[u8],
    value: &[u8],
    options: PutOptions,
) -> Result<Version> {
    let op = WriteOp::Put {
        key: key.to_vec(),
        value: value.to_vec(),
        options,
    };
    match submit(shared, Write::Op(op)).await? {
        Written::Op(WriteResult::Put(version)) => Ok(version),
        other => Err(mismatch("put", &other)),
    }
}

/// Deletes through the writer; see [`submit`].
pub(crate) async fn delete(shared: &Arc<Shared>, key: &[u8], condition: Condition) -> Result<bool> {
    let op = WriteOp::Delete {
        key: key.to_vec(),
        condition,
    };
    match submit(shared, Write::Op(op)).await? {
        Written::Op(WriteResult::Delete(removed)) => Ok(removed),
        other => Err(mismatch("delete", &other)),
    }
}

/// Applies a batch through the writer; see [`submit`].
pub(crate) async fn batch(shared: &Arc<Shared>, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
    match submit(shared, Write::Batch(ops)).await? {
        Written::Batch(results) => Ok(results),
        other => Err(mismatch("batch", &other)),
    }
}

/// Purges expired entries through the writer; see [`submit`].
pub(crate) async fn purge_expired(shared: &Arc<Shared>) -> Result<u64> {
    match submit(shared, Write::Purge).await? {
        Written::Purged(purged) => Ok(purged),
        other => Err(mismatch("purge_expired", &other)),
    }
}

/// The error for an answer of the wrong shape (a bug in this module).
fn mismatch(operation: &str, written: &Written) -> StoreError {
    StoreError::new(
        ErrorKind::Backend,
        format!("{operation}: the writer answered with {written:?}"),
    )
}

/// Applies `jobs` in one transaction and answers them; if a statement failed, retries
/// each job alone so its error reaches only its own caller. `false` when anything
/// failed beyond a refused write.
async fn commit(s: &Arc<Shared>, conn: &mut SqliteConnection, jobs: Vec<Job>) -> bool {
    let writes: Vec<(&Write, SystemTime)> = jobs
        .iter()
        .map(|j| (&j.request().write, j.request().now))
        .collect();
    let outcome = run_group(s, conn, &writes).await;
    drop(writes);
    match outcome {
        Ok(results) => {
            s.committed(jobs.iter().map(|job| job.request().write.ops()).sum());
            for (job, result) in jobs.into_iter().zip(results) {
                job.answer(result);
            }
            true
        }
        Err(Fault::Failed(e)) if jobs.len() > 1 => {
            tracing::debug!(backend = "sqlx", error = %e, jobs = jobs.len(),
                "a write failed inside a group; retrying each write alone");
            for job in jobs {
                let single = [(&job.request().write, job.request().now)];
                let result = match run_group(s, conn, &single).await {
                    Ok(mut results) => results.pop().unwrap_or_else(|| Err(copy(&e))),
                    Err(Fault::Failed(e) | Fault::Whole(e) | Fault::Refused(e)) => Err(e),
                };
                job.answer(result);
            }
            false
        }
        Err(Fault::Failed(e) | Fault::Whole(e) | Fault::Refused(e)) => {
            jobs.into_iter().for_each(|job| job.fail(&e));
            false
        }
    }
}
