//! A log-linear latency histogram in the manner of HdrHistogram: every power of two is
//! split into 128 equal buckets, so any recorded value is known within 1%.

use std::time::Duration;

/// Buckets per power of two, as a power of two.
const SUB_BITS: u32 = 7;
/// Buckets per power of two.
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for every `u64` nanosecond count.
const BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * SUB) as usize;

/// Counts of latencies in nanoseconds, mergeable across tasks.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Records one latency.
    pub(crate) fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.counts[index(nanos)] += 1;
        self.total += 1;
        self.max = self.max.max(nanos);
    }

    /// Adds every count of `other`.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many latencies were recorded.
    pub(crate) fn len(&self) -> u64 {
        self.total
    }

    /// The latency at quantile `q` (0..=1), as the middle of its bucket (never above
    /// the largest recorded value); zero when empty.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bounds(i);
                return Duration::from_nanos((low + (high - low) / 2).min(self.max));
            }
        }
        Duration::from_nanos(self.max)
    }
}

/// The bucket of a value.
fn index(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let msb = 63 - value.leading_zeros();
    let shift = msb - (SUB_BITS - 1) - 1;
    let mantissa = value >> shift; // in SUB..2*SUB
    (SUB + u64::from(shift) * SUB + (mantissa - SUB)) as usize
}

/// The smallest and largest value of bucket `i`.
fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, i);
    }
    let shift = (i - SUB) / SUB;
    let mantissa = SUB + (i - SUB) % SUB;
    let low = mantissa << shift;
    (low, low + ((1u64 << shift) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_its_own_bucket_bounds() {
        for v in (0..5_000u64).chain([1 << 20, 123_456_789, u64::MAX / 3, u64::MAX]) {
            let (low, high) = bounds(index(v));
            assert!(low <= v && v <= high, "{v} not in [{low}, {high}]");
            // Relative precision: a bucket is at most 1/128 of its values wide.
            assert!(
                (high - low) as f64 <= v as f64 / 127.0 + 1.0,
                "{v}: [{low}, {high}]"
            );
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_of_a_uniform_spread_are_where_expected() {
        let mut h = Histogram::default();
        for micros in 1..=1000u64 {
            h.record(Duration::from_micros(micros));
        }
        assert_eq!(h.len(), 1000);
        let close = |got: Duration, want_us: f64| {
            let got = got.as_nanos() as f64 / 1000.0;
            (got - want_us).abs() <= want_us * 0.01 + 0.01
        };
        assert!(close(h.quantile(0.5), 500.0), "{:?}", h.quantile(0.5));
        assert!(close(h.quantile(0.99), 990.0), "{:?}", h.quantile(0.99));
        assert!(close(h.quantile(1.0), 1000.0), "{:?}", h.quantile(1.0));
        assert!(close(h.quantile(0.0), 1.0), "{:?}", h.quantile(0.0));
    }

    #[test]
    fn a_slow_tail_moves_p99_but_not_p50() {
        let mut h = Histogram::default();
        for _ in 0..980 {
            h.record(Duration::from_micros(10));
        }
        for _ in 0..20 {
            h.record(Duration::from_millis(9));
        }
        let p50 = h.quantile(0.5).as_micros();
        let p99 = h.quantile(0.99).as_micros();
        assert!((9..=11).contains(&p50), "{p50}");
        assert!((8_900..=9_100).contains(&p99), "{p99}");
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(Duration::from_micros(5));
        b.record(Duration::from_micros(500));
        b.record(Duration::from_micros(500));
        a.merge(&b);
        assert_eq!(a.len(), 3);
        assert!(a.quantile(0.5).as_micros() >= 495);
        assert!(a.quantile(0.3).as_micros() <= 6);
        assert_eq!(Histogram::default().quantile(0.5), Duration::ZERO);
    }
}
