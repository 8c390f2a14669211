//! The reference model the state machine checks a store against: a `BTreeMap` of rows
//! with expiry on a millisecond clock, and the steps a sequence is made of.

use std::collections::BTreeMap;

/// The keys sequences use, in ascending bytewise order so the map's order by index is
/// the store's order by key.
pub(crate) const KEYS: [&[u8]; 5] = [b"\0", b"a", b"ab", b"b", b"\xFF\x01"];

/// A precondition as the generator states it; the runner turns it into a concrete
/// [`Condition`](storage_api::Condition) from the versions it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cond {
    /// No precondition.
    Any,
    /// The key must be absent (or expired).
    Absent,
    /// The key must still have the version last written to it.
    Current,
    /// A version the key had before (or one never issued): never holds.
    Stale,
}

/// Which keys a scan selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanSpec {
    /// Keys starting with `b"a"` instead of a range.
    pub(crate) prefix_a: bool,
    /// Inclusive start key index.
    pub(crate) start: Option<usize>,
    /// Exclusive end key index.
    pub(crate) end: Option<usize>,
    /// At most this many entries.
    pub(crate) limit: Option<usize>,
    /// Only keys after this key index.
    pub(crate) after: Option<usize>,
}

impl ScanSpec {
    /// Whether the key at `index` is selected, ignoring the limit.
    pub(crate) fn selects(&self, index: usize) -> bool {
        let key = KEYS[index];
        let in_range = if self.prefix_a {
            key.starts_with(b"a")
        } else {
            self.start.is_none_or(|s| key >= KEYS[s]) && self.end.is_none_or(|e| key < KEYS[e])
        };
        in_range && self.after.is_none_or(|a| key > KEYS[a])
    }
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchStep {
    /// Put `value` under `key` if `cond` holds.
    Put {
        key: usize,
        value: Vec<u8>,
        cond: Cond,
    },
    /// Delete `key` if `cond` holds.
    Delete { key: usize, cond: Cond },
}

/// One step of a generated sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Get(usize),
    Put {
        key: usize,
        value: Vec<u8>,
        cond: Cond,
        ttl: Option<u64>,
    },
    Delete {
        key: usize,
        cond: Cond,
    },
    Scan(ScanSpec),
    Batch(Vec<BatchStep>),
    Purge,
    Advance(u64),
    Begin {
        read_only: bool,
    },
    TxGet(usize),
    TxPut {
        key: usize,
        value: Vec<u8>,
        cond: Cond,
    },
    TxDelete {
        key: usize,
        cond: Cond,
    },
    TxScan(ScanSpec),
    Commit,
    Rollback,
    DropTx,
}

impl Step {
    /// Whether the step needs an open transaction.
    pub(crate) fn in_tx(&self) -> bool {
        matches!(
            self,
            Self::TxGet(_)
                | Self::TxPut { .. }
                | Self::TxDelete { .. }
                | Self::TxScan(_)
                | Self::Commit
                | Self::Rollback
                | Self::DropTx
        )
    }

    /// Whether the step writes outside a transaction (and so must wait for none).
    pub(crate) fn writes_outside(&self) -> bool {
        matches!(
            self,
            Self::Put { .. } | Self::Delete { .. } | Self::Batch(_) | Self::Purge
        )
    }
}

/// One stored row: its value and expiry (ms on the model clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) value: Vec<u8>,
    pub(crate) expires: Option<u64>,
}

impl Row {
    fn live(&self, now: u64) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

/// Rows by key index. Expired rows stay until purged or overwritten, so the number of
/// expired rows bounds what `purge_expired` may report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rows(BTreeMap<usize, Row>);

impl Rows {
    /// The live row of `key`.
    pub(crate) fn get(&self, key: usize, now: u64) -> Option<&Row> {
        self.0.get(&key).filter(|row| row.live(now))
    }

    /// Whether `cond` holds for `key`.
    pub(crate) fn holds(&self, key: usize, cond: Cond, now: u64) -> bool {
        let live = self.get(key, now).is_some();
        match cond {
            Cond::Any => true,
            Cond::Absent => !live,
            Cond::Current => live,
            Cond::Stale => false,
        }
    }

    /// Applies a put; `false` (and no change) if the condition fails.
    pub(crate) fn put(
        &mut self,
        key: usize,
        value: &[u8],
        cond: Cond,
        ttl: Option<u64>,
        now: u64,
    ) -> bool {
        if !self.holds(key, cond, now) {
            return false;
        }
        let row = Row {
            value: value.to_vec(),
            expires: ttl.map(|t| now + t),
        };
        self.0.insert(key, row);
        true
    }

    /// Applies a delete: `None` if the condition fails, else whether a live row went.
    /// An expired row is left in place (a backend may or may not remove it).
    pub(crate) fn delete(&mut self, key: usize, cond: Cond, now: u64) -> Option<bool> {
        if !self.holds(key, cond, now) {
            return None;
        }
        let live = self.get(key, now).is_some();
        if live {
            self.0.remove(&key);
        }
        Some(live)
    }

    /// The live rows a scan returns, in order.
    pub(crate) fn scan(&self, spec: &ScanSpec, now: u64) -> Vec<(usize, Row)> {
        self.0
            .iter()
            .filter(|(k, row)| row.live(now) && spec.selects(**k))
            .take(spec.limit.unwrap_or(usize::MAX))
            .map(|(k, row)| (*k, row.clone()))
            .collect()
    }

    /// Applies a batch to a copy: `Err(index)` of the first failing condition (and no
    /// change), else per-operation results (`None` for puts, `Some(removed)` for
    /// deletes).
    ///
    /// A `Current` condition names the version the key had before the batch, so it
    /// fails on a key an earlier operation of the same batch already wrote.
    pub(crate) fn batch(
        &mut self,
        ops: &[BatchStep],
        now: u64,
    ) -> Result<Vec<Option<bool>>, usize> {
        let mut copy = self.clone();
        let mut results = Vec::new();
        let mut touched = std::collections::BTreeSet::new();
        for (index, op) in ops.iter().enumerate() {
            let (key, cond) = match op {
                BatchStep::Put { key, cond, .. } | BatchStep::Delete { key, cond } => (*key, *cond),
            };
            if cond == Cond::Current && touched.contains(&key) {
                return Err(index);
            }
            touched.insert(key);
            match op {
                BatchStep::Put { key, value, cond } => {
                    if !copy.put(*key, value, *cond, None, now) {
                        return Err(index);
                    }
                    results.push(None);
                }
                BatchStep::Delete { key, cond } => {
                    results.push(Some(copy.delete(*key, *cond, now).ok_or(index)?));
                }
            }
        }
        *self = copy;
        Ok(results)
    }

    /// Expired rows still present: the most `purge_expired` may remove.
    pub(crate) fn expired(&self, now: u64) -> usize {
        self.0.values().filter(|row| !row.live(now)).count()
    }

    /// Removes expired rows.
    pub(crate) fn purge(&mut self, now: u64) {
        self.0.retain(|_, row| row.live(now));
    }
}

/// The model's state: the clock, the committed rows and an open transaction's view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Model {
    /// Milliseconds since the sequence started.
    pub(crate) now: u64,
    pub(crate) committed: Rows,
    pub(crate) tx: Option<TxModel>,
}

/// An open transaction in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxModel {
    pub(crate) read_only: bool,
    pub(crate) view: Rows,
}

impl Model {
    /// Whether `step` may be taken now (also checked while shrinking).
    pub(crate) fn allows(&self, step: &Step) -> bool {
        match step {
            Step::Begin { .. } => self.tx.is_none(),
            step if step.in_tx() => self.tx.is_some(),
            step if step.writes_outside() => self.tx.is_none(),
            _ => true,
        }
    }

    /// Advances the model by `step`; results are recomputed by the runner.
    pub(crate) fn apply(mut self, step: &Step) -> Self {
        let now = self.now;
        match step {
            Step::Get(_) | Step::Scan(_) | Step::TxGet(_) | Step::TxScan(_) => {}
            Step::Put {
                key,
                value,
                cond,
                ttl,
            } => {
                self.committed.put(*key, value, *cond, *ttl, now);
            }
            Step::Delete { key, cond } => {
                self.committed.delete(*key, *cond, now);
            }
            Step::Batch(ops) => {
                let _ = self.committed.batch(ops, now);
            }
            Step::Purge => self.committed.purge(now),
            Step::Advance(ms) => self.now += ms,
            Step::Begin { read_only } => {
                self.tx = Some(TxModel {
                    read_only: *read_only,
                    view: self.committed.clone(),
                });
            }
            Step::TxPut { key, value, cond } => {
                if let Some(tx) = self.tx.as_mut().filter(|tx| !tx.read_only) {
                    tx.view.put(*key, value, *cond, None, now);
                }
            }
            Step::TxDelete { key, cond } => {
                if let Some(tx) = self.tx.as_mut().filter(|tx| !tx.read_only) {
                    tx.view.delete(*key, *cond, now);
                }
            }
            Step::Commit => {
                if let Some(tx) = self.tx.take().filter(|tx| !tx.read_only) {
                    self.committed = tx.view;
                }
            }
            Step::Rollback | Step::DropTx => self.tx = None,
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_bytewise() {
        assert!(KEYS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn expired_rows_count_as_absent_and_bound_purge() {
        let mut rows = Rows::default();
        assert!(rows.put(1, b"v", Cond::Any, Some(15), 0));
        assert!(rows.holds(1, Cond::Current, 10));
        assert!(rows.holds(1, Cond::Absent, 20));
        assert_eq!(rows.delete(1, Cond::Any, 20), Some(false));
        assert_eq!(rows.expired(20), 1);
        rows.purge(20);
        assert_eq!(rows.expired(20), 0);
    }

    #[test]
    fn failed_batch_changes_nothing() {
        let mut rows = Rows::default();
        let ops = vec![
            BatchStep::Put {
                key: 0,
                value: vec![1],
                cond: Cond::Any,
            },
            BatchStep::Delete {
                key: 2,
                cond: Cond::Current,
            },
        ];
        assert_eq!(rows.batch(&ops, 0), Err(1));
        assert!(rows.get(0, 0).is_none());
    }

    #[test]
    fn current_in_a_batch_means_the_version_before_it() {
        let mut rows = Rows::default();
        rows.put(0, b"v", Cond::Any, None, 0);
        let put = |cond| BatchStep::Put {
            key: 0,
            value: vec![2],
            cond,
        };
        assert_eq!(rows.batch(&[put(Cond::Any), put(Cond::Current)], 0), Err(1));
        assert!(rows.batch(&[put(Cond::Current)], 0).is_ok());
    }
}
