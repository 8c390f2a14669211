//! The data types of the key-value contract: entries, versions, conditions, options.

use std::num::NonZeroU64;
use std::ops::Bound;
use std::time::{Duration, SystemTime};

/// The largest key any backend accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A per-key version: non-zero, and strictly greater than any version the same key had
/// before, including before a delete (so a compare-and-swap can never be fooled by ABA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(NonZeroU64);

impl Version {
    /// Wraps a raw version; `None` for zero, which is never a valid version.
    pub fn new(raw: u64) -> Option<Self> {
        NonZeroU64::new(raw).map(Self)
    }

    /// The raw number, as stored.
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One stored key with its value, version and optional expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, 1..=1024 arbitrary bytes.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The version the last write gave this key.
    pub version: Version,
    /// When the entry stops being visible, if it was written with a TTL
    /// (millisecond precision).
    pub expires_at: Option<SystemTime>,
}

/// A precondition on the current state of a key, checked atomically with the write.
///
/// An expired entry counts as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// No precondition.
    #[default]
    Any,
    /// The key must not exist.
    Absent,
    /// The key must exist with exactly this version.
    Version(Version),
}

impl Condition {
    /// Whether the condition holds for a key whose live version is `current`
    /// (`None` when the key is absent or expired).
    pub fn holds(self, current: Option<Version>) -> bool {
        match self {
            Self::Any => true,
            Self::Absent => current.is_none(),
            Self::Version(v) => current == Some(v),
        }
    }
}

/// Options of a single put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PutOptions {
    /// Precondition; a failed one is `ConditionFailed` and changes nothing.
    pub condition: Condition,
    /// Time to live from the moment of the write; `None` keeps the entry until deleted.
    pub ttl: Option<Duration>,
}

impl PutOptions {
    /// A put that only succeeds if the key is absent.
    pub fn if_absent() -> Self {
        Self {
            condition: Condition::Absent,
            ttl: None,
        }
    }

    /// A put that only succeeds if the key currently has `version`.
    pub fn if_version(version: Version) -> Self {
        Self {
            condition: Condition::Version(version),
            ttl: None,
        }
    }

    /// The same options with a time to live.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// A half-open key range `[start, end)`, compared bytewise.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyRange {
    /// Inclusive lower bound; `None` starts at the smallest key.
    pub start: Option<Vec<u8>>,
    /// Exclusive upper bound; `None` runs to the largest key.
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        Self::default()
    }

    /// Keys in `[start, end)`.
    pub fn between(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        Self {
            start: Some(start.into()),
            end: Some(end.into()),
        }
    }

    /// Keys that begin with `prefix`.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let start: Vec<u8> = prefix.into();
        let end = prefix_successor(&start);
        Self {
            start: Some(start),
            end,
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.as_deref().is_none_or(|s| key >= s)
            && self.end.as_deref().is_none_or(|e| key < e)
    }
}

/// The smallest byte string greater than every string that starts with `prefix`,
/// or `None` when there is none (empty prefix, or all bytes 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut end = prefix[..=keep].to_vec();
    end[keep] += 1;
    Some(end)
}

/// Options of a scan: which keys, how many, and where to resume.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanOptions {
    /// The keys to visit.
    pub range: KeyRange,
    /// At most this many entries; `None` means the configured `max_scan_limit`.
    /// A limit above `max_scan_limit` is `InvalidInput`.
    pub limit: Option<usize>,
    /// Exclusive cursor: only keys strictly greater than this (the last key of the
    /// previous page).
    pub after: Option<Vec<u8>>,
}

impl ScanOptions {
    /// Scan keys that start with `prefix`.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        Self {
            range: KeyRange::prefix(prefix),
            ..Self::default()
        }
    }

    /// Scan a range.
    pub fn range(range: KeyRange) -> Self {
        Self {
            range,
            ..Self::default()
        }
    }

    /// The same scan, returning at most `limit` entries.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The same scan, resuming after `key`.
    pub fn with_after(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.after = Some(key.into());
        self
    }

    /// The effective lower bound: the range start or the cursor, whichever is tighter.
    pub fn lower_bound(&self) -> Bound<&[u8]> {
        match (self.range.start.as_deref(), self.after.as_deref()) {
            (None, None) => Bound::Unbounded,
            (Some(start), None) => Bound::Included(start),
            (Some(start), Some(after)) if after < start => Bound::Included(start),
            (_, Some(after)) => Bound::Excluded(after),
        }
    }

    /// Whether `key` is selected by range and cursor (ignoring the limit).
    pub fn selects(&self, key: &[u8]) -> bool {
        self.range.contains(key) && self.after.as_deref().is_none_or(|a| key > a)
    }
}

/// One write of an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Put a value.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// Condition and TTL.
        options: PutOptions,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: Vec<u8>,
        /// Precondition.
        condition: Condition,
    },
}

impl WriteOp {
    /// An unconditional put without TTL.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self::Put {
            key: key.into(),
            value: value.into(),
            options: PutOptions::default(),
        }
    }

    /// An unconditional delete.
    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        Self::Delete {
            key: key.into(),
            condition: Condition::Any,
        }
    }

    /// The key this operation writes.
    pub fn key(&self) -> &[u8] {
        match self {
            Self::Put { key, .. } | Self::Delete { key, .. } => key,
        }
    }
}

/// What one operation of a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    /// The put stored the key with this version.
    Put(Version),
    /// The delete removed something (`true`) or found nothing (`false`).
    Delete(bool),
}

/// Options of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxOptions {
    /// A read-only transaction rejects writes with `InvalidInput` and never takes the
    /// write lock.
    pub read_only: bool,
}

/// What a backend offers. A capability reported `false` makes the matching operation
/// return `Unsupported`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `begin` and the transaction operations work.
    pub transactions: bool,
    /// Puts with a TTL and `purge_expired` work.
    pub ttl: bool,
    /// Data survives `close` and reopening the same location.
    pub persistent: bool,
    /// Largest key accepted, in bytes.
    pub max_key_bytes: usize,
    /// Largest value accepted, in bytes.
    pub max_value_bytes: usize,
    /// Largest scan limit accepted.
    pub max_scan_limit: usize,
    /// Most operations one `batch` may hold; `None` when the engine sets no bound (the
    /// SQL engines). A larger batch is `InvalidInput` naming this limit.
    pub max_batch_ops: Option<usize>,
}

impl Capabilities {
    /// Everything supported, with the given value and scan limits; not persistent.
    pub fn full(max_value_bytes: usize, max_scan_limit: usize) -> Self {
        Self {
            transactions: true,
            ttl: true,
            persistent: false,
            max_key_bytes: MAX_KEY_BYTES,
            max_value_bytes,
            max_scan_limit,
            max_batch_ops: None,
        }
    }

    /// The same capabilities with at most `max` operations per batch.
    pub fn with_max_batch_ops(mut self, max: usize) -> Self {
        self.max_batch_ops = Some(max);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_handles_ff_bytes() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn prefix_range_contains_exactly_the_prefixed_keys() {
        let r = KeyRange::prefix(vec![7, 0xFF]);
        assert!(r.contains(&[7, 0xFF]));
        assert!(r.contains(&[7, 0xFF, 0, 1]));
        assert!(!r.contains(&[7, 0xFE, 0xFF]));
        assert!(!r.contains(&[8]));
    }

    #[test]
    fn conditions_treat_absent_and_versions() {
        let v = Version::new(5).unwrap();
        assert!(Condition::Absent.holds(None));
        assert!(!Condition::Absent.holds(Some(v)));
        assert!(Condition::Version(v).holds(Some(v)));
        assert!(!Condition::Version(v).holds(None));
        assert!(Condition::Any.holds(None));
    }
}
