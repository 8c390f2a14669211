//! [`CheckClock`]: the bound on health checks' round trips, without a timer of each
//! check's own.
//!
//! A timer a check registers while its round trip is under way is the runtime timer
//! driver's earliest deadline, so registering it wakes the driver's thread (a system
//! call and a spurious wake-up), every check again: as much as the round trip's own
//! cost on a loaded machine. Instead, one task ticks while checks wait, and each check
//! waits for enough ticks to have passed. A check that started at a tick's count gives
//! up once `ceil(bound / TICK) + 1` more ticks have come, after at least `bound` and
//! less than `bound + 2 * TICK`. The task ends two ticks after the last check stopped
//! waiting, and the next waiting check starts another.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use tokio::sync::watch;

/// How often the clock ticks while checks wait.
const TICK: Duration = Duration::from_millis(250);

/// Ticks without a waiting check after which the ticking task ends.
const IDLE_TICKS: u32 = 2;

/// Ticks, counted while health checks wait for their round trips.
#[derive(Debug)]
pub(crate) struct CheckClock {
    ticks: watch::Sender<u64>,
    /// Checks waiting now.
    waiting: AtomicUsize,
    /// Whether a ticking task runs.
    ticking: AtomicBool,
}

impl Default for CheckClock {
    fn default() -> Self {
        Self {
            ticks: watch::Sender::new(0),
            waiting: AtomicUsize::new(0),
            ticking: AtomicBool::new(false),
        }
    }
}

impl CheckClock {
    /// Finishes once at least `bound` has passed (and less than `bound + 2 * TICK`),
    /// ticking meanwhile. Must be polled inside a tokio runtime.
    pub(crate) async fn elapsed(self: &Arc<Self>, bound: Duration) {
        let mut ticks = self.ticks.subscribe();
        let start = *ticks.borrow_and_update();
        let needed = ticks_for(bound);
        let _waiting = Waiting::new(self);
        // The sender lives as long as `self`: `wait_for` fails only if it were gone.
        let _ = ticks
            .wait_for(|now| now.wrapping_sub(start) >= needed)
            .await;
    }

    /// Runs `round_trip`, giving up (`None`) once [`elapsed`](Self::elapsed) says
    /// `bound` has passed.
    pub(crate) async fn within<T>(
        self: &Arc<Self>,
        bound: Duration,
        round_trip: impl Future<Output = T>,
    ) -> Option<T> {
        tokio::select! {
            biased;
            done = round_trip => Some(done),
            () = self.elapsed(bound) => None,
        }
    }

    /// Starts the ticking task unless one runs.
    fn ensure_ticking(self: &Arc<Self>) {
        if !self.ticking.swap(true, SeqCst) {
            tokio::spawn(Arc::clone(self).tick());
        }
    }

    /// Ticks until no check has waited for [`IDLE_TICKS`] ticks.
    async fn tick(self: Arc<Self>) {
        let mut idle = 0;
        loop {
            tokio::time::sleep(TICK).await;
            self.ticks
                .send_modify(|ticks| *ticks = ticks.wrapping_add(1));
            if self.waiting.load(SeqCst) > 0 {
                idle = 0;
                continue;
            }
            idle += 1;
            if idle < IDLE_TICKS {
                continue;
            }
            self.ticking.store(false, SeqCst);
            // A check that began waiting meanwhile, and saw this task still ticking,
            // started none: keep ticking for it, unless another task took over.
            if self.waiting.load(SeqCst) == 0 || self.ticking.swap(true, SeqCst) {
                return;
            }
            idle = 0;
        }
    }
}

/// Ticks that span at least `bound` whenever counting starts.
fn ticks_for(bound: Duration) -> u64 {
    let tick = TICK.as_nanos();
    u64::try_from(bound.as_nanos().div_ceil(tick) + 1).unwrap_or(u64::MAX)
}

/// One check waiting, counted until dropped.
struct Waiting<'a>(&'a Arc<CheckClock>);

impl<'a> Waiting<'a> {
    fn new(clock: &'a Arc<CheckClock>) -> Self {
        clock.waiting.fetch_add(1, SeqCst);
        clock.ensure_ticking();
        Self(clock)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn ticks_span_the_bound_wherever_counting_starts() {
        assert_eq!(ticks_for(Duration::from_millis(250)), 2);
        assert_eq!(ticks_for(Duration::from_millis(300)), 3);
        assert_eq!(ticks_for(Duration::from_secs(5)), 21);
    }

    #[tokio::test]
    async fn a_wait_ends_after_its_bound_and_the_ticking_stops() {
        let clock = Arc::new(CheckClock::default());
        let started = Instant::now();
        clock.elapsed(Duration::from_millis(300)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_millis(300) + 3 * TICK, "{waited:?}");
        assert!(clock.ticking.load(SeqCst));
        tokio::time::sleep(TICK * (IDLE_TICKS + 2)).await;
        assert!(
            !clock.ticking.load(SeqCst),
            "the task ends when no check waits"
        );
        // A later wait starts it again.
        let started = Instant::now();
        clock.elapsed(Duration::from_millis(100)).await;
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_wait_that_is_dropped_stops_counting() {
        let clock = Arc::new(CheckClock::default());
        let quick = tokio::time::timeout(Duration::from_millis(10), clock.elapsed(TICK * 8));
        assert!(quick.await.is_err());
        assert_eq!(clock.waiting.load(SeqCst), 0);
    }
}
