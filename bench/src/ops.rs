//! The operations a workload issues, and the per-worker generator that picks them.

use std::sync::Arc;

use crate::plan::{BATCH_OPS, SCAN_ROWS, VALUE_BYTES, Workload};
use crate::rng::SplitMix64;
use crate::zipf::{THETA, Zipfian};

/// One operation against the store, with its keys and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Read one key.
    Get(Vec<u8>),
    /// Upsert one key.
    Put(Vec<u8>, Vec<u8>),
    /// Upsert every pair in one atomic batch.
    Batch(Vec<(Vec<u8>, Vec<u8>)>),
    /// Read [`SCAN_ROWS`] rows from this key on.
    Scan(Vec<u8>),
    /// Read a key, then write a modified value if nobody wrote it since (CAS); retried
    /// until it applies.
    ReadModifyWrite(Vec<u8>),
    /// Check a connection out and run a trivial query.
    Acquire,
}

/// The outcome of one operation: `Ok(retries)` (failed compare-and-swap attempts before
/// it applied; 0 for everything else) or `Err(label)`, the error's kind.
pub(crate) type OpResult = Result<u32, &'static str>;

/// How many times a read-modify-write retries a failed compare-and-swap before giving up.
pub(crate) const MAX_CAS_ATTEMPTS: u32 = 1000;

/// The key of preloaded row `index`: fixed width, so byte order is numeric order.
pub(crate) fn key(index: u64) -> Vec<u8> {
    format!("k{index:09}").into_bytes()
}

/// A value of [`VALUE_BYTES`] random bytes.
pub(crate) fn value(rng: &mut SplitMix64) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_BYTES);
    while v.len() < VALUE_BYTES {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(VALUE_BYTES);
    v
}

/// The "modify" of read-modify-write: the value with its first 8 bytes, read as a
/// little-endian counter, incremented.
pub(crate) fn modified(old: &[u8]) -> Vec<u8> {
    let mut new = old.to_vec();
    if new.len() < 8 {
        new.resize(8, 0);
    }
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&new[..8]);
    let next = u64::from_le_bytes(counter).wrapping_add(1);
    new[..8].copy_from_slice(&next.to_le_bytes());
    new
}

/// Picks one worker's operations for a workload, deterministically per seed.
#[derive(Debug, Clone)]
pub(crate) struct OpGen {
    workload: Workload,
    rng: SplitMix64,
    keys: u64,
    zipf: Arc<Zipfian>,
}

impl OpGen {
    /// Generators for `workers` workers over `keys` preloaded keys (`keys >= 2`).
    pub(crate) fn for_workers(workload: Workload, keys: u64, seed: u64, workers: u32) -> Vec<Self> {
        let zipf = Arc::new(Zipfian::new(keys, THETA));
        let mut seeds = SplitMix64::new(seed);
        (0..workers)
            .map(|_| Self {
                workload,
                rng: SplitMix64::new(seeds.next_u64()),
                keys,
                zipf: zipf.clone(),
            })
            .collect()
    }

    /// The next operation.
    pub(crate) fn next_op(&mut self) -> Op {
        match self.workload {
            Workload::PointRead => Op::Get(self.uniform_key()),
            Workload::Put => Op::Put(self.uniform_key(), value(&mut self.rng)),
            Workload::Batch => Op::Batch(
                (0..BATCH_OPS)
                    .map(|_| (self.uniform_key(), value(&mut self.rng)))
                    .collect(),
            ),
            Workload::Scan => {
                let starts = self.keys.saturating_sub(SCAN_ROWS as u64).max(1);
                Op::Scan(key(self.rng.below(starts)))
            }
            Workload::YcsbA => self.read_or_update(50),
            Workload::YcsbB => self.read_or_update(95),
            Workload::YcsbC => Op::Get(self.zipf_key()),
            Workload::YcsbF => {
                if self.rng.below(100) < 50 {
                    Op::Get(self.zipf_key())
                } else {
                    Op::ReadModifyWrite(self.zipf_key())
                }
            }
            Workload::Acquire => Op::Acquire,
        }
    }

    fn read_or_update(&mut self, read_percent: u64) -> Op {
        if self.rng.below(100) < read_percent {
            Op::Get(self.zipf_key())
        } else {
            Op::Put(self.zipf_key(), value(&mut self.rng))
        }
    }

    fn uniform_key(&mut self) -> Vec<u8> {
        key(self.rng.below(self.keys))
    }

    fn zipf_key(&mut self) -> Vec<u8> {
        key(self.zipf.next_index(&mut self.rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(workload: Workload, n: usize) -> (usize, usize, usize) {
        let mut generator = OpGen::for_workers(workload, 1_000, 1, 1).remove(0);
        let (mut gets, mut puts, mut rmws) = (0, 0, 0);
        for _ in 0..n {
            match generator.next_op() {
                Op::Get(_) => gets += 1,
                Op::Put(_, v) => {
                    assert_eq!(v.len(), VALUE_BYTES);
                    puts += 1;
                }
                Op::ReadModifyWrite(_) => rmws += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        (gets, puts, rmws)
    }

    #[test]
    fn ycsb_mixes_have_their_proportions() {
        let (g, p, r) = mix(Workload::YcsbA, 10_000);
        assert!(
            (4_500..5_500).contains(&g) && g + p == 10_000 && r == 0,
            "{g} {p}"
        );
        let (g, p, _) = mix(Workload::YcsbB, 10_000);
        assert!((9_300..9_700).contains(&g) && g + p == 10_000, "{g} {p}");
        let (g, p, _) = mix(Workload::YcsbC, 1_000);
        assert_eq!((g, p), (1_000, 0));
        let (g, p, r) = mix(Workload::YcsbF, 10_000);
        assert!(
            (4_500..5_500).contains(&r) && g + r == 10_000 && p == 0,
            "{g} {r}"
        );
    }

    #[test]
    fn keys_are_ordered_and_in_range() {
        assert!(key(9) < key(10));
        assert!(key(99_999) < key(100_000));
        let mut generator = OpGen::for_workers(Workload::Scan, 1_000, 2, 1).remove(0);
        for _ in 0..1_000 {
            let Op::Scan(start) = generator.next_op() else {
                panic!("scan workload issues scans");
            };
            assert!(start <= key(1_000 - SCAN_ROWS as u64), "{start:?}");
        }
        let mut generator = OpGen::for_workers(Workload::Batch, 1_000, 2, 1).remove(0);
        let Op::Batch(pairs) = generator.next_op() else {
            panic!("batch workload issues batches");
        };
        assert_eq!(pairs.len(), BATCH_OPS);
        assert!(
            pairs
                .iter()
                .all(|(k, _)| k.as_slice() < key(1_000).as_slice())
        );
    }

    #[test]
    fn workers_get_different_streams() {
        let mut gens = OpGen::for_workers(Workload::PointRead, 100_000, 3, 2);
        let a: Vec<Op> = (0..5).map(|_| gens[0].next_op()).collect();
        let b: Vec<Op> = (0..5).map(|_| gens[1].next_op()).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn modified_increments_the_counter() {
        let v = modified(&[1, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(v, [2, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(&modified(&[0xFF; 8])[..8], &[0; 8]);
        assert_eq!(modified(&[]).len(), 8);
    }
}
