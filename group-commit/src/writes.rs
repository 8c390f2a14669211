//! What a group-commit writer is handed and hands back: one caller's write, the time it
//! is applied at, and its result.

use std::sync::Arc;
use std::time::SystemTime;

use storage_api::{
    Condition, ErrorKind, PutOptions, Result, StoreError, Version, WriteOp, WriteResult,
};

use crate::queue::{self, Server};

/// The most write operations (a batch counts each of its operations) one commit
/// takes; later writes wait for the next commit.
pub const MAX_GROUP_OPS: usize = 1024;

/// One write, as a caller hands it to the writer.
#[derive(Debug)]
pub enum Write {
    /// A single put or delete.
    Op(WriteOp),
    /// An atomic batch.
    Batch(Vec<WriteOp>),
    /// Removes every expired entry.
    Purge,
}

/// What a [`Write`] returned.
#[derive(Debug)]
pub enum Written {
    /// A single put's version or a delete's verdict.
    Op(WriteResult),
    /// A batch's results, one per operation.
    Batch(Vec<WriteResult>),
    /// How many expired entries a purge removed.
    Purged(u64),
}

impl Write {
    /// How many versions applying it may take.
    pub fn versions_needed(&self) -> i64 {
        let is_put = |op: &WriteOp| matches!(op, WriteOp::Put { .. });
        let puts = match self {
            Write::Op(op) => usize::from(is_put(op)),
            Write::Batch(ops) => ops.iter().filter(|op| is_put(op)).count(),
            Write::Purge => 0,
        };
        i64::try_from(puts).unwrap_or(i64::MAX)
    }

    /// How many operations it counts as, towards [`MAX_GROUP_OPS`] (and a SQLite
    /// store's checkpoint schedule).
    pub fn ops(&self) -> usize {
        match self {
            Write::Batch(ops) => ops.len().max(1),
            _ => 1,
        }
    }

    /// The operation name errors carry.
    pub fn operation(&self) -> &'static str {
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
pub struct Request {
    /// The write.
    pub write: Write,
    /// The time it is applied at (expiry, liveness of conditions).
    pub now: SystemTime,
}

/// A [`Server`] of writes: what [`submit`] and its conveniences queue calls for.
pub trait Writes: Server<Request = Request, Answer = Written> {}

impl<S: Server<Request = Request, Answer = Written>> Writes for S {}

/// Queues `write` for the next commit and returns its result once that commit is
/// done; `now` is the store's clock when the caller asked. The caller keeps its own
/// in-flight guard.
///
/// A write that finds the writer idle is applied on the caller's own task
/// ([`queue::call_or_lead`]), sparing it two hand-offs. If the returned future is
/// dropped before the writer starts the write's group, the write is skipped; dropped
/// later, it may or may not be applied. It is never applied in part.
pub async fn submit<S: Writes>(
    store: &Arc<S::Store>,
    write: Write,
    now: SystemTime,
) -> Result<Written> {
    queue::call_or_lead::<S>(store, Request { write, now }).await
}

/// Puts through the writer; see [`submit`].
pub async fn put<S: Writes>(
    store: &Arc<S::Store>,
    now: SystemTime,
    key: &[u8],
    value: &[u8],
    options: PutOptions,
) -> Result<Version> {
    let op = WriteOp::Put {
        key: key.to_vec(),
        value: value.to_vec(),
        options,
    };
    match submit::<S>(store, Write::Op(op), now).await? {
        Written::Op(WriteResult::Put(version)) => Ok(version),
        other => Err(mismatch("put", &other)),
    }
}

/// Deletes through the writer; see [`submit`].
pub async fn delete<S: Writes>(
    store: &Arc<S::Store>,
    now: SystemTime,
    key: &[u8],
    condition: Condition,
) -> Result<bool> {
    let op = WriteOp::Delete {
        key: key.to_vec(),
        condition,
    };
    match submit::<S>(store, Write::Op(op), now).await? {
        Written::Op(WriteResult::Delete(removed)) => Ok(removed),
        other => Err(mismatch("delete", &other)),
    }
}

/// Applies a batch through the writer; see [`submit`].
pub async fn batch<S: Writes>(
    store: &Arc<S::Store>,
    now: SystemTime,
    ops: Vec<WriteOp>,
) -> Result<Vec<WriteResult>> {
    match submit::<S>(store, Write::Batch(ops), now).await? {
        Written::Batch(results) => Ok(results),
        other => Err(mismatch("batch", &other)),
    }
}

/// Purges expired entries through the writer; see [`submit`].
pub async fn purge_expired<S: Writes>(store: &Arc<S::Store>, now: SystemTime) -> Result<u64> {
    match submit::<S>(store, Write::Purge, now).await? {
        Written::Purged(purged) => Ok(purged),
        other => Err(mismatch("purge_expired", &other)),
    }
}

/// The error for an answer of the wrong shape (a bug in a writer).
fn mismatch(operation: &str, written: &Written) -> StoreError {
    StoreError::new(
        ErrorKind::Backend,
        format!("{operation}: the writer answered with {written:?}"),
    )
}
