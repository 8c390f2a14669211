//! The background task deadpool does not have: retires idle and old connections and
//! keeps `min_idle` connections open.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::pool::{ConnPool, PoolSettings};

/// The slowest the task ever runs.
const MAX_PERIOD: Duration = Duration::from_secs(1);
/// The fastest the task ever runs.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// How often to look: a quarter of the shortest timeout, within bounds, so a
/// connection retires at most a quarter late.
pub(crate) fn period(settings: &PoolSettings) -> Duration {
    [settings.idle_timeout, settings.max_lifetime]
        .into_iter()
        .flatten()
        .min()
        .map_or(MAX_PERIOD, |shortest| shortest / 4)
        .clamp(MIN_PERIOD, MAX_PERIOD)
}

/// Starts the task; it stops by itself once the pool is closed or dropped.
pub(crate) fn spawn(pool: &Arc<ConnPool>, period: Duration) -> AbortHandle {
    let pool = Arc::downgrade(pool);
    tokio::spawn(run(pool, period)).abort_handle()
}

async fn run(pool: Weak<ConnPool>, period: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        if pool.is_closed() {
            return;
        }
        pool.reap();
        pool.top_up().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(idle: Option<u64>, lifetime: Option<u64>) -> PoolSettings {
        PoolSettings {
            max: 4,
            min_idle: 0,
            idle_timeout: idle.map(Duration::from_millis),
            max_lifetime: lifetime.map(Duration::from_millis),
        }
    }

    #[test]
    fn period_follows_the_shortest_timeout_within_bounds() {
        assert_eq!(period(&settings(None, None)), MAX_PERIOD);
        assert_eq!(
            period(&settings(Some(400), Some(800))),
            Duration::from_millis(100)
        );
        assert_eq!(period(&settings(Some(1), None)), MIN_PERIOD);
        assert_eq!(period(&settings(Some(600_000), None)), MAX_PERIOD);
    }
}
