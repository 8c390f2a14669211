//! What one measurement produced: per-worker tallies while it runs, and the result a
//! child prints as one JSON line on stdout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::histogram::Histogram;
use crate::ops::OpResult;

/// One worker's counts during the measured window.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    /// Latencies of the operations that succeeded.
    pub(crate) latencies: Histogram,
    /// Failed operations, by error kind.
    pub(crate) errors: BTreeMap<&'static str, u64>,
    /// Failed compare-and-swap attempts that were retried.
    pub(crate) cas_retries: u64,
    /// When the last recorded operation finished.
    pub(crate) last_finish: Option<Instant>,
}

impl Tally {
    /// Records an operation that took `latency` and finished at `finished`.
    pub(crate) fn record(&mut self, result: OpResult, latency: Duration, finished: Instant) {
        match result {
            Ok(retries) => {
                self.latencies.record(latency);
                self.cas_retries += u64::from(retries);
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
        self.last_finish = Some(self.last_finish.map_or(finished, |t| t.max(finished)));
    }

    /// Adds another worker's counts.
    pub(crate) fn merge(&mut self, other: &Tally) {
        self.latencies.merge(&other.latencies);
        for (kind, n) in &other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.cas_retries += other.cas_retries;
        self.last_finish = match (self.last_finish, other.last_finish) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Successful operations.
    pub(crate) fn ops(&self) -> u64 {
        self.latencies.len()
    }

    /// Failed operations.
    #[cfg(test)]
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The result of one child: one configuration, one workload, one concurrency level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunResult {
    /// Configuration name.
    pub(crate) config: String,
    /// Workload name.
    pub(crate) workload: String,
    /// Concurrency asked for.
    pub(crate) concurrency: u32,
    /// Tasks (threads, for raw rusqlite) that actually ran.
    pub(crate) workers: u32,
    /// Successful operations in the measured window.
    pub(crate) ops: u64,
    /// Rows each operation reads or writes.
    pub(crate) rows_per_op: u32,
    /// Length of the measured window, seconds.
    pub(crate) seconds: f64,
    /// Successful operations per second.
    pub(crate) ops_per_sec: f64,
    /// Median latency of successful operations, microseconds.
    pub(crate) p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub(crate) p99_us: f64,
    /// Largest latency, microseconds.
    pub(crate) max_us: f64,
    /// Failed operations by error kind.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Failed compare-and-swap attempts that were retried (YCSB F).
    pub(crate) cas_retries: u64,
    /// Most threads the child process had at once.
    pub(crate) peak_threads: Option<u64>,
    /// Peak resident set size of the child process, KiB.
    pub(crate) peak_rss_kib: Option<u64>,
    /// The machine's 1 minute load average when the child started.
    pub(crate) load_1m: Option<f64>,
    /// Cores' worth of CPU other processes used while the child measured (0 on a quiet
    /// machine).
    pub(crate) others_cpu: Option<f64>,
}

/// Microseconds, as a float, for JSON and tables.
pub(crate) fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_count_successes_errors_and_retries() {
        let start = Instant::now();
        let mut a = Tally::default();
        a.record(Ok(0), Duration::from_micros(10), start);
        a.record(
            Ok(2),
            Duration::from_micros(20),
            start + Duration::from_millis(1),
        );
        a.record(Err("busy"), Duration::from_micros(30), start);
        let mut b = Tally::default();
        b.record(
            Err("busy"),
            Duration::from_micros(5),
            start + Duration::from_millis(3),
        );
        b.record(Err("timeout"), Duration::from_micros(5), start);
        a.merge(&b);
        assert_eq!(a.ops(), 2);
        assert_eq!(a.error_count(), 3);
        assert_eq!(a.errors["busy"], 2);
        assert_eq!(a.cas_retries, 2);
        assert_eq!(a.last_finish, Some(start + Duration::from_millis(3)));
    }
}
