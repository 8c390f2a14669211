//! What a write does with a key's current row (live or expired), whatever the
//! engine: whether its condition holds, and the row a put writes over it.

use std::time::SystemTime;

use storage_api::backend::{expiry_millis, to_unix_millis};
use storage_api::{Condition, PutOptions, Result};

use super::NewRow;
use super::queries::CurrentRow;
use crate::common::rows::{require_condition, version_from};

/// The row a put at `now` writes over `current` (the key's row, live or expired), or
/// `ConditionFailed` if its condition does not hold.
pub(crate) fn new_row<'a>(
    current: Option<CurrentRow>,
    key: &'a [u8],
    value: &'a [u8],
    options: PutOptions,
    now: SystemTime,
) -> Result<NewRow<'a>> {
    check_condition(current, options.condition, now, "put")?;
    Ok(NewRow {
        key,
        value,
        expires_at: expiry_millis(now, options.ttl),
        replaces: current.is_some(),
    })
}

/// `ConditionFailed` unless `condition` holds for `current` at `now` (an expired row
/// counts as absent).
pub(crate) fn check_condition(
    current: Option<CurrentRow>,
    condition: Condition,
    now: SystemTime,
    operation: &str,
) -> Result<()> {
    let live = current
        .filter(|(_, expires_at)| is_live(*expires_at, now))
        .map(|(version, _)| version_from(version))
        .transpose()?;
    require_condition(condition.holds(live), operation)
}

/// Whether a row with this expiry is visible at `now`.
pub(crate) fn is_live(expires_at: Option<i64>, now: SystemTime) -> bool {
    expires_at.is_none_or(|at| at > to_unix_millis(now))
}
