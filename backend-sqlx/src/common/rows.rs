//! Stored rows as contract values, the same for every database: entries, versions,
//! scan bounds and the failed-condition error.

use std::ops::Bound;

use storage_api::backend::from_unix_millis;
use storage_api::{Entry, ErrorKind, Result, ScanOptions, StoreError, Version};

/// The key a bound selects, or `None` for an unbounded side.
pub(crate) fn bound_key(bound: Bound<&[u8]>) -> Option<&[u8]> {
    match bound {
        Bound::Included(key) | Bound::Excluded(key) => Some(key),
        Bound::Unbounded => None,
    }
}

/// The lower and upper bounds of the keys `options` selects (the end is exclusive).
pub(crate) fn scan_bounds(options: &ScanOptions) -> (Bound<&[u8]>, Bound<&[u8]>) {
    let upper = match options.range.end.as_deref() {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    (options.lower_bound(), upper)
}

/// An entry from its stored columns.
pub(crate) fn entry(
    key: Vec<u8>,
    value: Vec<u8>,
    version: i64,
    expires_at: Option<i64>,
) -> Result<Entry> {
    Ok(Entry {
        key,
        value,
        version: version_from(version)?,
        expires_at: expires_at.map(from_unix_millis),
    })
}

/// A stored version; anything not positive means the row was not written by us.
pub(crate) fn version_from(raw: i64) -> Result<Version> {
    u64::try_from(raw)
        .ok()
        .and_then(Version::new)
        .ok_or_else(|| StoreError::new(ErrorKind::Corrupt, "a stored version is not positive"))
}

/// `Ok` when `holds`, else `ConditionFailed` for `operation`.
pub(crate) fn require_condition(holds: bool, operation: &str) -> Result<()> {
    if holds {
        Ok(())
    } else {
        Err(StoreError::new(
            ErrorKind::ConditionFailed,
            format!("{operation}: the condition did not hold"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_must_be_positive() {
        assert_eq!(version_from(3).ok().map(Version::get), Some(3));
        assert_eq!(
            version_from(0).map_err(|e| e.kind()),
            Err(ErrorKind::Corrupt)
        );
        assert_eq!(
            version_from(-1).map_err(|e| e.kind()),
            Err(ErrorKind::Corrupt)
        );
    }
}
