//! The state a SQLite store keeps for its single [`writer`](crate::writer): its queue
//! and its checkpoint schedule. What the writer is handed and hands back is
//! engine-neutral ([`group_commit::writes`]).

pub use group_commit::writes::{MAX_GROUP_OPS, Request, Write, Written};

use group_commit::queue::Queue;

use crate::wal::CheckpointSchedule;

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
