//! The label values of the operation metrics: which operation ran (`op`) and how it
//! ended (`outcome`). Both map to fixed slots so recording is an array index, not a
//! lookup.

use storage_api::{ErrorKind, StoreError};

/// An operation [`Instrumented`](super::Instrumented) counts and times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `PooledStore::get`.
    Get,
    /// `PooledStore::put`.
    Put,
    /// `PooledStore::delete`.
    Delete,
    /// `PooledStore::scan`.
    Scan,
    /// `PooledStore::batch`.
    Batch,
    /// `PooledStore::purge_expired`.
    PurgeExpired,
    /// `PooledStore::begin`.
    Begin,
    /// `Transaction::get`.
    TxGet,
    /// `Transaction::put`.
    TxPut,
    /// `Transaction::delete`.
    TxDelete,
    /// `Transaction::scan`.
    TxScan,
    /// `Transaction::commit`.
    Commit,
    /// `Transaction::rollback`.
    Rollback,
    /// `PooledStore::validate_connections`.
    ValidateConnections,
}

impl Op {
    /// Every operation, in slot order.
    pub const ALL: [Op; 14] = [
        Op::Get,
        Op::Put,
        Op::Delete,
        Op::Scan,
        Op::Batch,
        Op::PurgeExpired,
        Op::Begin,
        Op::TxGet,
        Op::TxPut,
        Op::TxDelete,
        Op::TxScan,
        Op::Commit,
        Op::Rollback,
        Op::ValidateConnections,
    ];

    /// The `op` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Delete => "delete",
            Op::Scan => "scan",
            Op::Batch => "batch",
            Op::PurgeExpired => "purge_expired",
            Op::Begin => "begin",
            Op::TxGet => "tx_get",
            Op::TxPut => "tx_put",
            Op::TxDelete => "tx_delete",
            Op::TxScan => "tx_scan",
            Op::Commit => "commit",
            Op::Rollback => "rollback",
            Op::ValidateConnections => "validate_connections",
        }
    }

    /// The slot of this operation in [`Op::ALL`].
    pub(crate) fn slot(self) -> usize {
        self as usize
    }
}

/// How an operation ended: the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It returned `Ok`.
    Ok,
    /// It returned an error of this kind. `ConditionFailed` is an answer, not a fault
    /// of the store, but it is still counted under its own outcome.
    Failed(ErrorKind),
    /// The caller dropped it before it finished.
    Cancelled,
}

/// Number of outcome slots: ok, one per known error kind, cancelled, and "other" for
/// error kinds added to storage-api after this build.
pub(crate) const OUTCOME_SLOTS: usize = 14;

/// The label of each outcome slot.
pub(crate) const OUTCOME_LABELS: [&str; OUTCOME_SLOTS] = [
    "ok",
    "invalid_input",
    "condition_failed",
    "conflict",
    "timeout",
    "busy",
    "closed",
    "connection",
    "unsupported",
    "config",
    "corrupt",
    "backend",
    "cancelled",
    "other",
];

impl Outcome {
    /// The outcome of a finished operation.
    pub fn of<T>(result: &Result<T, StoreError>) -> Self {
        match result {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Failed(e.kind()),
        }
    }

    /// The `outcome` label value: `"ok"`, the error kind's `as_str()`, or `"cancelled"`.
    pub fn as_str(self) -> &'static str {
        OUTCOME_LABELS[self.slot()]
    }

    /// The slot of this outcome in the per-operation counters.
    pub(crate) fn slot(self) -> usize {
        match self {
            Outcome::Ok => 0,
            Outcome::Failed(kind) => match kind {
                ErrorKind::InvalidInput => 1,
                ErrorKind::ConditionFailed => 2,
                ErrorKind::Conflict => 3,
                ErrorKind::Timeout => 4,
                ErrorKind::Busy => 5,
                ErrorKind::Closed => 6,
                ErrorKind::Connection => 7,
                ErrorKind::Unsupported => 8,
                ErrorKind::Config => 9,
                ErrorKind::Corrupt => 10,
                ErrorKind::Backend => 11,
                _ => 13,
            },
            Outcome::Cancelled => 12,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_slots_follow_all() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.slot(), i, "{op:?}");
        }
    }

    #[test]
    fn failed_outcomes_use_the_error_kind_name() {
        let kinds = [
            ErrorKind::InvalidInput,
            ErrorKind::ConditionFailed,
            ErrorKind::Conflict,
            ErrorKind::Timeout,
            ErrorKind::Busy,
            ErrorKind::Closed,
            ErrorKind::Connection,
            ErrorKind::Unsupported,
            ErrorKind::Config,
            ErrorKind::Corrupt,
            ErrorKind::Backend,
        ];
        for kind in kinds {
            assert_eq!(Outcome::Failed(kind).as_str(), kind.as_str());
        }
        assert_eq!(Outcome::Ok.as_str(), "ok");
        assert_eq!(Outcome::Cancelled.as_str(), "cancelled");
        let ok: Result<(), StoreError> = Ok(());
        assert_eq!(Outcome::of(&ok), Outcome::Ok);
        let busy: Result<(), StoreError> = Err(StoreError::new(ErrorKind::Busy, "locked"));
        assert_eq!(Outcome::of(&busy).as_str(), "busy");
    }
}
