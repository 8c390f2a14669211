//! Pool instruments every backend feeds: counters, the waiter gauge and the acquire
//! wait-time histogram. Backends record events; `snapshot` turns them into
//! [`PoolMetrics`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crate::reports::{CloseReason, ClosedCounts, HistogramSnapshot, PoolMetrics};

/// Histogram bucket bounds in seconds, 50 µs to 30 s.
pub const WAIT_BUCKETS: [f64; 18] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A lock-free histogram over fixed bucket bounds (seconds): one relaxed addition per
/// observation, two when it lasted longer than zero.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One counter per bound (not cumulative), then one for what lies above the last.
    buckets: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// An empty histogram with the given ascending bounds.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Relaxed);
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        if nanos > 0 {
            self.sum_nanos.fetch_add(nanos, Relaxed);
        }
    }

    /// Cumulative counts, as Prometheus expects them.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| {
                running += b.load(Relaxed);
                running
            })
            .collect();
        // The overflow bucket's running total counts every observation.
        let count = counts.pop().unwrap_or(0);
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            counts,
            count,
            sum: self.sum_nanos.load(Relaxed) as f64 / 1e9,
        }
    }
}

/// The connection gauges only the backend knows, passed to [`PoolInstruments::snapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolGauges {
    /// `db_pool_size`.
    pub max: u32,
    /// `db_min_idle`.
    pub min_idle: u32,
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
}

/// Counters and gauges shared by every backend. Cheap to update from any thread.
#[derive(Debug)]
pub struct PoolInstruments {
    /// Connections handed out after a wait, however short.
    acquired: AtomicU64,
    /// Connections handed out at once: in the acquisitions and the wait histogram's
    /// first bucket, counted with one addition.
    acquired_at_once: AtomicU64,
    timeouts: AtomicU64,
    created: AtomicU64,
    busy: AtomicU64,
    leaks: AtomicU64,
    closed: [AtomicU64; 5],
    pending: AtomicUsize,
    acquire_wait: Histogram,
}

impl Default for PoolInstruments {
    fn default() -> Self {
        Self {
            acquired: AtomicU64::new(0),
            acquired_at_once: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            created: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            leaks: AtomicU64::new(0),
            closed: Default::default(),
            pending: AtomicUsize::new(0),
            acquire_wait: Histogram::new(&WAIT_BUCKETS),
        }
    }
}

impl PoolInstruments {
    /// Fresh instruments, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the caller as waiting for a connection until the guard drops.
    pub fn waiting(&self) -> WaitGuard<'_> {
        self.pending.fetch_add(1, Relaxed);
        WaitGuard { instruments: self }
    }

    /// How many callers wait for a connection now (guards from
    /// [`waiting`](Self::waiting) not yet dropped).
    pub fn waiters(&self) -> usize {
        self.pending.load(Relaxed)
    }

    /// A connection was handed out after `waited`.
    pub fn record_acquired(&self, waited: Duration) {
        if waited.is_zero() {
            self.acquired_at_once.fetch_add(1, Relaxed);
            return;
        }
        self.acquired.fetch_add(1, Relaxed);
        self.acquire_wait.observe(waited);
    }

    /// An acquisition gave up after `waited`.
    pub fn record_timeout(&self, waited: Duration) {
        self.timeouts.fetch_add(1, Relaxed);
        self.acquire_wait.observe(waited);
    }

    /// A connection was opened.
    pub fn record_created(&self) {
        self.created.fetch_add(1, Relaxed);
    }

    /// A connection was closed for `reason`.
    pub fn record_closed(&self, reason: CloseReason) {
        self.closed[reason_index(reason)].fetch_add(1, Relaxed);
    }

    /// An operation failed because the database was locked.
    pub fn record_busy(&self) {
        self.busy.fetch_add(1, Relaxed);
    }

    /// A connection or transaction was held past the leak threshold.
    pub fn record_leak(&self) {
        self.leaks.fetch_add(1, Relaxed);
    }

    /// Callers waiting right now.
    pub fn pending(&self) -> u32 {
        u32::try_from(self.pending.load(Relaxed)).unwrap_or(u32::MAX)
    }

    /// Combines the counters with the backend's gauges.
    pub fn snapshot(&self, gauges: PoolGauges) -> PoolMetrics {
        let closed = |r| self.closed[reason_index(r)].load(Relaxed);
        let idle = gauges.idle.min(gauges.size);
        let at_once = self.acquired_at_once.load(Relaxed);
        let mut acquire_wait = self.acquire_wait.snapshot();
        acquire_wait.counts.iter_mut().for_each(|n| *n += at_once);
        acquire_wait.count += at_once;
        PoolMetrics {
            max: gauges.max,
            min_idle: gauges.min_idle,
            size: gauges.size,
            idle,
            in_use: gauges.size - idle,
            pending: self.pending(),
            acquired: self.acquired.load(Relaxed) + at_once,
            timeouts: self.timeouts.load(Relaxed),
            created: self.created.load(Relaxed),
            closed: ClosedCounts {
                broken: closed(CloseReason::Broken),
                invalid: closed(CloseReason::Invalid),
                max_lifetime: closed(CloseReason::MaxLifetime),
                idle_timeout: closed(CloseReason::IdleTimeout),
                shutdown: closed(CloseReason::Shutdown),
            },
            busy: self.busy.load(Relaxed),
            leaks: self.leaks.load(Relaxed),
            acquire_wait,
        }
    }
}

fn reason_index(reason: CloseReason) -> usize {
    CloseReason::ALL
        .iter()
        .position(|r| *r == reason)
        .expect("ALL lists every reason")
}

/// Counts its holder as a pending caller; see [`PoolInstruments::waiting`].
#[derive(Debug)]
pub struct WaitGuard<'a> {
    instruments: &'a PoolInstruments,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.instruments.pending.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_sums_seconds() {
        let h = Histogram::new(&WAIT_BUCKETS);
        h.observe(Duration::from_micros(40));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.counts[0], 1);
        assert_eq!(s.counts[6], 2); // <= 5 ms
        assert_eq!(*s.counts.last().unwrap(), 2); // 60 s only in +Inf
        assert!((s.sum - 60.003_04).abs() < 1e-6);
    }

    #[test]
    fn acquisitions_at_once_count_in_the_first_bucket() {
        let i = PoolInstruments::new();
        i.record_acquired(Duration::ZERO);
        i.record_acquired(Duration::ZERO);
        i.record_acquired(Duration::from_millis(3));
        i.record_timeout(Duration::from_secs(60));
        let m = i.snapshot(PoolGauges::default());
        assert_eq!((m.acquired, m.timeouts), (3, 1));
        let wait = &m.acquire_wait;
        assert_eq!(wait.count, 4);
        assert_eq!(wait.counts[0], 2);
        assert_eq!(wait.counts[6], 3); // <= 5 ms
        assert_eq!(*wait.counts.last().unwrap(), 3); // 60 s only in +Inf
        assert!((wait.sum - 60.003).abs() < 1e-6);
    }

    #[test]
    fn wait_guard_counts_pending_until_dropped() {
        let i = PoolInstruments::new();
        let g = i.waiting();
        let g2 = i.waiting();
        assert_eq!(i.pending(), 2);
        drop(g);
        drop(g2);
        assert_eq!(i.pending(), 0);
    }

    #[test]
    fn snapshot_derives_in_use_from_size_and_idle() {
        let i = PoolInstruments::new();
        i.record_closed(CloseReason::IdleTimeout);
        let m = i.snapshot(PoolGauges {
            max: 4,
            min_idle: 0,
            size: 3,
            idle: 1,
        });
        assert_eq!((m.idle, m.in_use), (1, 2));
        assert_eq!(m.closed.idle_timeout, 1);
    }
}
