//! The key-value data itself: a sorted map with versions and expiry, and the pure
//! operations (get, put, delete, scan, batch, purge) both the store and its
//! transactions apply to it.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::SystemTime;

use storage_api::backend::{expiry_millis, from_unix_millis, to_unix_millis};
use storage_api::{
    Condition, Entry, ErrorKind, PutOptions, Result, ScanOptions, StoreError, Version, WriteOp,
    WriteResult,
};

/// One stored row.
#[derive(Debug, Clone)]
struct Row {
    value: Vec<u8>,
    version: Version,
    /// Expiry in Unix milliseconds; the row is live while `expires_ms > now_ms`.
    expires_ms: Option<i64>,
}

impl Row {
    fn is_live(&self, now_ms: i64) -> bool {
        self.expires_ms.is_none_or(|at| at > now_ms)
    }

    fn entry(&self, key: &[u8]) -> Entry {
        Entry {
            key: key.to_vec(),
            value: self.value.clone(),
            version: self.version,
            expires_at: self.expires_ms.map(from_unix_millis),
        }
    }
}

/// Every row plus the version counter. Cloning it is how transactions and batches get a
/// private working copy that they swap in on success.
#[derive(Debug, Clone, Default)]
pub(crate) struct Data {
    rows: BTreeMap<Vec<u8>, Row>,
    /// The last version handed out; versions come from one counter so a key's next
    /// version is always above every version it had before, deletes included.
    last_version: u64,
}

impl Data {
    /// How many rows are stored, expired ones included.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    fn live(&self, key: &[u8], now_ms: i64) -> Option<&Row> {
        self.rows.get(key).filter(|row| row.is_live(now_ms))
    }

    fn check(&self, key: &[u8], condition: Condition, now_ms: i64) -> Result<()> {
        let current = self.live(key, now_ms).map(|row| row.version);
        if condition.holds(current) {
            Ok(())
        } else {
            Err(StoreError::new(
                ErrorKind::ConditionFailed,
                "the condition did not hold",
            ))
        }
    }

    fn next_version(&mut self) -> Result<Version> {
        self.last_version = self.last_version.checked_add(1).ok_or_else(|| {
            StoreError::new(ErrorKind::Backend, "the version counter is exhausted")
        })?;
        Version::new(self.last_version)
            .ok_or_else(|| StoreError::new(ErrorKind::Backend, "the version counter is zero"))
    }

    /// The live entry under `key`.
    pub(crate) fn get(&self, key: &[u8], now: SystemTime) -> Option<Entry> {
        self.live(key, to_unix_millis(now))
            .map(|row| row.entry(key))
    }

    /// Writes `value` if the condition holds; the caller has checked the input.
    pub(crate) fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
        options: PutOptions,
        now: SystemTime,
    ) -> Result<Version> {
        self.check(key, options.condition, to_unix_millis(now))?;
        let version = self.next_version()?;
        let row = Row {
            value: value.to_vec(),
            version,
            expires_ms: expiry_millis(now, options.ttl),
        };
        self.rows.insert(key.to_vec(), row);
        Ok(version)
    }

    /// Removes `key` if the condition holds; `true` when a live entry was removed.
    pub(crate) fn delete(
        &mut self,
        key: &[u8],
        condition: Condition,
        now: SystemTime,
    ) -> Result<bool> {
        let now_ms = to_unix_millis(now);
        self.check(key, condition, now_ms)?;
        Ok(self.rows.remove(key).is_some_and(|row| row.is_live(now_ms)))
    }

    /// Live entries selected by `options`, ascending, at most `limit`.
    pub(crate) fn scan(&self, options: &ScanOptions, limit: usize, now: SystemTime) -> Vec<Entry> {
        let now_ms = to_unix_millis(now);
        let lower = match options.lower_bound() {
            Bound::Included(k) => Bound::Included(k.to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let upper = match &options.range.end {
            Some(end) => Bound::Excluded(end.clone()),
            None => Bound::Unbounded,
        };
        if let (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u)) = (&lower, &upper)
            && l >= u
        {
            return Vec::new();
        }
        self.rows
            .range((lower, upper))
            .filter(|(_, row)| row.is_live(now_ms))
            .take(limit)
            .map(|(key, row)| row.entry(key))
            .collect()
    }

    /// Applies `ops` in order to a copy and keeps it only if all succeed; the error of a
    /// failed operation carries its index.
    pub(crate) fn batch(&mut self, ops: &[WriteOp], now: SystemTime) -> Result<Vec<WriteResult>> {
        let mut copy = self.clone();
        let mut results = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let result = match op {
                WriteOp::Put {
                    key,
                    value,
                    options,
                } => copy.put(key, value, *options, now).map(WriteResult::Put),
                WriteOp::Delete { key, condition } => {
                    copy.delete(key, *condition, now).map(WriteResult::Delete)
                }
            };
            results.push(result.map_err(|e| e.with_batch_index(index))?);
        }
        *self = copy;
        Ok(results)
    }

    /// Removes expired rows, returning how many.
    pub(crate) fn purge(&mut self, now: SystemTime) -> u64 {
        let now_ms = to_unix_millis(now);
        let before = self.rows.len();
        self.rows.retain(|_, row| row.is_live(now_ms));
        (before - self.rows.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn versions_keep_rising_across_delete() {
        let mut data = Data::default();
        let v1 = data.put(b"k", b"1", PutOptions::default(), at(0)).unwrap();
        assert!(data.delete(b"k", Condition::Any, at(0)).unwrap());
        let v2 = data.put(b"k", b"2", PutOptions::default(), at(0)).unwrap();
        assert!(v2 > v1);
    }

    #[test]
    fn expired_rows_are_absent_and_purged() {
        let mut data = Data::default();
        let ttl = PutOptions::default().with_ttl(Duration::from_millis(10));
        data.put(b"k", b"1", ttl, at(0)).unwrap();
        assert!(data.get(b"k", at(9)).is_some());
        assert!(data.get(b"k", at(10)).is_none());
        data.put(b"k", b"x", PutOptions::if_absent(), at(10))
            .unwrap();
        data.put(b"j", b"1", ttl, at(10)).unwrap();
        assert_eq!(data.purge(at(30)), 1);
    }

    #[test]
    fn failed_batch_changes_nothing() {
        let mut data = Data::default();
        let ops = vec![
            WriteOp::put("a", "1"),
            WriteOp::Delete {
                key: b"b".to_vec(),
                condition: Condition::Version(Version::new(9).unwrap()),
            },
        ];
        let err = data.batch(&ops, at(0)).unwrap_err();
        assert_eq!(err.batch_index(), Some(1));
        assert!(data.get(b"a", at(0)).is_none());
    }
}
