//! Per-operation duration histograms, which count the operations too: plain atomics in
//! fixed slots, so recording an operation costs two relaxed additions and no
//! allocation.

use std::time::Duration;

use storage_api::HistogramSnapshot;
use storage_api::backend::{Histogram, WAIT_BUCKETS};

use super::labels::{OUTCOME_LABELS, OUTCOME_SLOTS, Op, Outcome};

const OP_SLOTS: usize = Op::ALL.len();

/// Counts and a duration histogram by `(op, outcome)`, so the latency of failures
/// (an acquire timeout takes the whole timeout) stays apart from that of successes.
#[derive(Debug)]
pub(crate) struct OperationStats {
    durations: [[Histogram; OUTCOME_SLOTS]; OP_SLOTS],
}

impl Default for OperationStats {
    fn default() -> Self {
        Self {
            durations: std::array::from_fn(|_| {
                std::array::from_fn(|_| Histogram::new(&WAIT_BUCKETS))
            }),
        }
    }
}

impl OperationStats {
    /// Records one finished (or abandoned) operation.
    pub(crate) fn record(&self, op: Op, outcome: Outcome, elapsed: Duration) {
        self.durations[op.slot()][outcome.slot()].observe(elapsed);
    }

    /// A copy of every counter and histogram.
    pub(crate) fn snapshot(&self) -> OperationsSnapshot {
        let durations: [[HistogramSnapshot; OUTCOME_SLOTS]; OP_SLOTS] = std::array::from_fn(|op| {
            std::array::from_fn(|outcome| self.durations[op][outcome].snapshot())
        });
        OperationsSnapshot {
            counts: std::array::from_fn(|op| {
                std::array::from_fn(|outcome| durations[op][outcome].count)
            }),
            durations,
        }
    }
}

/// A point-in-time copy of the operation metrics of an
/// [`Instrumented`](super::Instrumented) store.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationsSnapshot {
    counts: [[u64; OUTCOME_SLOTS]; OP_SLOTS],
    durations: [[HistogramSnapshot; OUTCOME_SLOTS]; OP_SLOTS],
}

impl OperationsSnapshot {
    /// How many `op` calls ended with `outcome`.
    pub fn count(&self, op: Op, outcome: Outcome) -> u64 {
        self.counts[op.slot()][outcome.slot()]
    }

    /// How many `op` calls ended, whatever the outcome.
    pub fn total(&self, op: Op) -> u64 {
        self.counts[op.slot()].iter().sum()
    }

    /// The duration histogram of every `op` call, whatever the outcome, in seconds.
    pub fn duration(&self, op: Op) -> HistogramSnapshot {
        let mut merged = HistogramSnapshot {
            bounds: WAIT_BUCKETS.to_vec(),
            counts: vec![0; WAIT_BUCKETS.len()],
            ..HistogramSnapshot::default()
        };
        for h in &self.durations[op.slot()] {
            for (total, n) in merged.counts.iter_mut().zip(&h.counts) {
                *total += n;
            }
            merged.count += h.count;
            merged.sum += h.sum;
        }
        merged
    }

    /// The duration histogram of the `op` calls that ended with `outcome`, in seconds.
    pub fn duration_of(&self, op: Op, outcome: Outcome) -> &HistogramSnapshot {
        &self.durations[op.slot()][outcome.slot()]
    }

    /// Every `(outcome label, duration histogram)` of `op` with at least one
    /// observation, in the order of [`outcomes`](Self::outcomes).
    pub fn durations(&self, op: Op) -> impl Iterator<Item = (&'static str, &HistogramSnapshot)> {
        OUTCOME_LABELS
            .iter()
            .copied()
            .zip(&self.durations[op.slot()])
            .filter(|(_, h)| h.count > 0)
    }

    /// Every `(outcome label, count)` of `op`, including zeros, in a stable order.
    pub fn outcomes(&self, op: Op) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        OUTCOME_LABELS
            .iter()
            .copied()
            .zip(self.counts[op.slot()].iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn records_land_in_their_slots() {
        let stats = OperationStats::default();
        stats.record(Op::Put, Outcome::Ok, Duration::from_micros(30));
        stats.record(Op::Put, Outcome::Ok, Duration::from_millis(2));
        stats.record(
            Op::Put,
            Outcome::Failed(ErrorKind::ConditionFailed),
            Duration::from_micros(80),
        );
        stats.record(Op::Get, Outcome::Cancelled, Duration::from_secs(1));
        let s = stats.snapshot();
        assert_eq!(s.count(Op::Put, Outcome::Ok), 2);
        assert_eq!(
            s.count(Op::Put, Outcome::Failed(ErrorKind::ConditionFailed)),
            1
        );
        assert_eq!(s.total(Op::Put), 3);
        assert_eq!(s.count(Op::Get, Outcome::Cancelled), 1);
        assert_eq!(s.total(Op::Delete), 0);
        assert_eq!(s.duration(Op::Put).count, 3);
        assert_eq!(s.duration(Op::Put).counts[0], 1); // 30 µs <= 50 µs
        assert_eq!(s.duration(Op::Put).counts[1], 2); // 80 µs <= 100 µs
        assert_eq!(s.duration_of(Op::Put, Outcome::Ok).count, 2);
        let failed = s.duration_of(Op::Put, Outcome::Failed(ErrorKind::ConditionFailed));
        assert_eq!(
            (failed.count, failed.counts[0], failed.counts[1]),
            (1, 0, 1)
        );
        let timed: Vec<_> = s.durations(Op::Put).map(|(o, h)| (o, h.count)).collect();
        assert_eq!(timed, [("ok", 2), ("condition_failed", 1)]);
        assert_eq!(s.durations(Op::Delete).count(), 0);
        let labels: Vec<_> = s.outcomes(Op::Put).filter(|(_, n)| *n > 0).collect();
        assert_eq!(labels, [("ok", 2), ("condition_failed", 1)]);
    }
}
