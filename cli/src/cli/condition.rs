//! Conditions on writes, from flags or file fields, and the message a failed one gives:
//! what was expected and the key's current version (exit code 3).

use pooledstore::{Condition, ErrorKind, Store, StoreError, Version};

use super::show::shown_key;

/// The condition `--if-absent` / `--if-version V` ask for; `what` names the input.
pub(super) fn from_flags(
    if_absent: bool,
    if_version: Option<u64>,
    what: &str,
) -> Result<Condition, StoreError> {
    match (if_absent, if_version) {
        (true, Some(_)) => Err(StoreError::invalid_input(format!(
            "{what}: if_absent and if_version exclude each other"
        ))),
        (true, None) => Ok(Condition::Absent),
        (false, Some(raw)) => Version::new(raw).map(Condition::Version).ok_or_else(|| {
            StoreError::invalid_input(format!("{what}: a version is at least 1, not 0"))
        }),
        (false, None) => Ok(Condition::Any),
    }
}

/// A `ConditionFailed` error saying what `context` expected of `key` and what the store
/// holds now (read after the failure, so it may have moved on again).
pub(super) async fn failed(
    store: &Store,
    key: &[u8],
    expected: Condition,
    context: &str,
    cause: StoreError,
) -> StoreError {
    let current = match store.get(key).await {
        Ok(Some(entry)) => format!("it is at version {}", entry.version),
        Ok(None) => "it is absent".to_owned(),
        Err(e) => format!("its current version cannot be read: {e}"),
    };
    let wanted = match expected {
        Condition::Any => "no condition".to_owned(),
        Condition::Absent => "absent".to_owned(),
        Condition::Version(v) => format!("at version {v}"),
    };
    StoreError::new(
        ErrorKind::ConditionFailed,
        format!(
            "{context}: condition failed: key {:?} was expected {wanted}, but {current}; \
             nothing was written",
            shown_key(key)
        ),
    )
    .with_source(cause)
}

/// The condition a write operation carries.
pub(super) fn of_op(op: &pooledstore::WriteOp) -> Condition {
    match op {
        pooledstore::WriteOp::Put { options, .. } => options.condition,
        pooledstore::WriteOp::Delete { condition, .. } => *condition,
    }
}
