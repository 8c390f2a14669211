//! The zipfian key chooser of YCSB (Gray et al., "Quickly generating billion-record
//! synthetic databases", SIGMOD 1994), scrambled so the popular keys are spread over
//! the key space instead of clustered at its start.

use crate::rng::SplitMix64;

/// YCSB's skew: the most popular of 100k keys gets about 8% of the accesses.
pub(crate) const THETA: f64 = 0.99;

/// Draws ranks `0..n` with probability proportional to `1 / (rank + 1)^theta`.
#[derive(Debug, Clone)]
pub(crate) struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    /// A generator over `items` ranks (`items >= 2`) with skew `theta` in `(0, 1)`.
    pub(crate) fn new(items: u64, theta: f64) -> Self {
        let zetan = zeta(items, theta);
        let zeta2 = zeta(2, theta);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Self {
            items,
            theta,
            alpha,
            zetan,
            eta,
        }
    }

    /// The probability of rank `rank` under the exact distribution.
    #[cfg(test)]
    fn probability(&self, rank: u64) -> f64 {
        1.0 / ((rank + 1) as f64).powf(self.theta) / self.zetan
    }

    /// The next rank; 0 is the most popular.
    pub(crate) fn next_rank(&self, rng: &mut SplitMix64) -> u64 {
        let u = rng.unit();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let rank = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        rank.min(self.items - 1)
    }

    /// The next key index in `0..items`: a rank, hashed so popular keys are scattered.
    pub(crate) fn next_index(&self, rng: &mut SplitMix64) -> u64 {
        fnv1a(self.next_rank(rng)) % self.items
    }
}

/// `sum_{i=1..n} 1 / i^theta`.
fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

/// FNV-1a over the eight little-endian bytes of `x` (YCSB's scrambling hash).
fn fnv1a(x: u64) -> u64 {
    x.to_le_bytes().iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: u64 = 400_000;

    fn rank_counts(zipf: &Zipfian, seed: u64) -> Vec<u64> {
        let mut rng = SplitMix64::new(seed);
        let mut counts = vec![0u64; zipf.items as usize];
        for _ in 0..SAMPLES {
            counts[zipf.next_rank(&mut rng) as usize] += 1;
        }
        counts
    }

    #[test]
    fn draws_follow_the_zipf_distribution() {
        let zipf = Zipfian::new(100_000, THETA);
        let counts = rank_counts(&zipf, 42);
        // Ranks 0 and 1 are drawn exactly; within 5% over 400k draws.
        for rank in [0u64, 1] {
            let expected = zipf.probability(rank) * SAMPLES as f64;
            let got = counts[rank as usize] as f64;
            assert!(
                (got - expected).abs() < expected * 0.05,
                "rank {rank}: got {got}, expected {expected}"
            );
        }
        // Beyond them the generator uses Gray et al.'s continuous approximation: the
        // mass of the head still matches the exact distribution within 5%.
        for head in [10usize, 100, 1_000, 10_000] {
            let expected: f64 =
                (0..head as u64).map(|r| zipf.probability(r)).sum::<f64>() * SAMPLES as f64;
            let got = counts[..head].iter().sum::<u64>() as f64;
            assert!(
                (got - expected).abs() < expected * 0.05,
                "top {head}: got {got}, expected {expected}"
            );
        }
        // And the tail is reached too.
        assert!(counts[50_000..].iter().sum::<u64>() > 0);
    }

    #[test]
    fn ranks_decrease_in_popularity() {
        let zipf = Zipfian::new(1_000, THETA);
        let counts = rank_counts(&zipf, 5);
        let first: u64 = counts[..10].iter().sum();
        let middle: u64 = counts[490..500].iter().sum();
        let last: u64 = counts[990..].iter().sum();
        assert!(first > middle && middle > last, "{first} {middle} {last}");
    }

    #[test]
    fn scrambled_indices_stay_in_range_and_spread_the_hot_keys() {
        let zipf = Zipfian::new(10_000, THETA);
        let mut rng = SplitMix64::new(9);
        let hot: Vec<u64> = (0..5).map(|r| fnv1a(r) % 10_000).collect();
        assert!(hot.windows(2).all(|w| w[0] != w[1]), "{hot:?}");
        for _ in 0..100_000 {
            assert!(zipf.next_index(&mut rng) < 10_000);
        }
    }

    #[test]
    fn draws_are_deterministic_per_seed() {
        let zipf = Zipfian::new(100_000, THETA);
        let mut a = SplitMix64::new(11);
        let mut b = SplitMix64::new(11);
        for _ in 0..1_000 {
            assert_eq!(zipf.next_index(&mut a), zipf.next_index(&mut b));
        }
    }
}
