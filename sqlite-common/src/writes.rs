//! What the single [`writer`](crate::writer) is handed and hands back, and the state a
//! store keeps for it: its queue and its checkpoint schedule.

use std::time::SystemTime;

use storage_api::{WriteOp, WriteResult};

use crate::queue::Queue;
use crate::wal::CheckpointSchedule;

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

    /// How many operations it counts as, towards [`MAX_GROUP_OPS`] and the checkpoint
    /// schedule.
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

/// The writer's state a store holds: its queue and, when the store checkpoints the
/// log itself, the checkpoint schedule.
#[derive(Debug)]
pub struct Writer {
    queue: Queue<Request, Written>,
    checkpoints: Option<CheckpointSchedule>,
}

impl Writer {
    /// A writer for a store whose writer connection has SQLite's automatic
    /// checkpoint off (`manual_checkpoints`: WAL mode, see [`wal`](crate::wal)) or on.
    pub fn new(manual_checkpoints: bool) -> Self {
        Self {
            queue: Queue::default(),
            checkpoints: manual_checkpoints.then(CheckpointSchedule::default),
        }
    }

    /// Writes queued and not yet taken into a group: callers waiting for the writer's
    /// connection.
    pub fn queued(&self) -> usize {
        self.queue.queued()
    }

    /// Whether the store checkpoints the log itself.
    pub fn checkpoints_manually(&self) -> bool {
        self.checkpoints.is_some()
    }

    /// The queue of writes.
    pub(crate) fn queue(&self) -> &Queue<Request, Written> {
        &self.queue
    }

    /// The checkpoint schedule, when the store checkpoints the log itself.
    pub(crate) fn checkpoints(&self) -> Option<&CheckpointSchedule> {
        self.checkpoints.as_ref()
    }
}
