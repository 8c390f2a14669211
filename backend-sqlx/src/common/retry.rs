//! The retry decisions a store-level operation makes after a failed attempt: a
//! conflict (serialization failure, deadlock) is retried with jittered backoff within
//! a time budget, since the operation is the whole transaction, unless it was a lock
//! wait that ran out (the caller has waited the busy timeout already); a connection
//! found dead on the first statement of a lease is skipped, a bounded number of times.
//!
//! Both retries are safe: a conflicting transaction was rolled back whole, and a
//! connection that failed its first statement ran nothing of the operation (that
//! statement is a read or `BEGIN`). Transactions the application holds are never
//! retried: their conflicts reach the application as `Conflict`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use storage_api::{ErrorKind, StoreError};

/// How long an operation keeps retrying serialization conflicts before it reports
/// `Conflict`.
const CONFLICT_BUDGET: Duration = Duration::from_secs(5);
/// The first backoff after a conflict; each further one doubles, up to the cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(64);

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Report the error.
    GiveUp,
    /// Drop the (evicted) connection and run again on another one.
    OtherConnection,
    /// Roll back, wait, and run again on the same connection.
    After(Duration),
}

/// What the lease saw of a failed attempt, beyond the error's kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The lease's first statement found its connection dead: nothing was done.
    pub(crate) stale: bool,
    /// A statement waited the busy timeout for a lock another transaction holds.
    pub(crate) lock_wait: bool,
}

/// The retry decisions of one operation.
#[derive(Debug)]
pub(crate) struct Retry {
    started: Instant,
    conflicts: u32,
    stale_left: u32,
}

impl Retry {
    /// Decisions for a pool of `max_connections`: every idle connection may turn out
    /// dead (after a server restart), plus one fresh one.
    pub(crate) fn new(max_connections: u32) -> Self {
        Self {
            started: Instant::now(),
            conflicts: 0,
            stale_left: max_connections.saturating_add(1),
        }
    }

    /// What to do after `error`, given what the lease saw of it.
    pub(crate) fn next(&mut self, error: &StoreError, failure: Failure) -> Next {
        match error.kind() {
            ErrorKind::Connection if failure.stale && self.stale_left > 0 => {
                self.stale_left -= 1;
                Next::OtherConnection
            }
            ErrorKind::Conflict
                if !failure.lock_wait && self.started.elapsed() < CONFLICT_BUDGET =>
            {
                self.conflicts += 1;
                Next::After(backoff(self.conflicts))
            }
            _ => Next::GiveUp,
        }
    }
}

/// The wait before retry number `attempt` (1-based): exponential up to
/// [`MAX_BACKOFF`], with the upper half jittered so contenders spread out.
fn backoff(attempt: u32) -> Duration {
    let ceiling = FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let half = ceiling / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_nanos(jitter() % nanos)
}

/// A cheap pseudo-random number (SplitMix64 over a shared counter seeded by the clock).
fn jitter() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed)
        .wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_cap_with_jitter() {
        for attempt in 1..40 {
            let d = backoff(attempt);
            assert!(d <= MAX_BACKOFF, "{attempt}: {d:?}");
            assert!(d >= FIRST_BACKOFF / 2, "{attempt}: {d:?}");
        }
        assert!(backoff(20) >= MAX_BACKOFF / 2);
    }

    #[test]
    fn stale_connections_are_skipped_a_bounded_number_of_times() {
        let lost = StoreError::new(ErrorKind::Connection, "gone");
        let stale = Failure {
            stale: true,
            ..Failure::default()
        };
        let mut retry = Retry::new(2);
        for _ in 0..3 {
            assert_eq!(retry.next(&lost, stale), Next::OtherConnection);
        }
        assert_eq!(retry.next(&lost, stale), Next::GiveUp);
        // A connection lost after the first statement may have done work: never retried.
        assert_eq!(Retry::new(2).next(&lost, Failure::default()), Next::GiveUp);
    }

    #[test]
    fn conflicts_are_retried_and_other_errors_are_not() {
        let mut retry = Retry::new(1);
        let conflict = StoreError::new(ErrorKind::Conflict, "40001");
        assert!(matches!(
            retry.next(&conflict, Failure::default()),
            Next::After(_)
        ));
        let condition = StoreError::new(ErrorKind::ConditionFailed, "no");
        assert_eq!(retry.next(&condition, Failure::default()), Next::GiveUp);
        let busy = StoreError::new(ErrorKind::Busy, "lock_timeout");
        assert_eq!(retry.next(&busy, Failure::default()), Next::GiveUp);
    }

    #[test]
    fn lock_waits_that_ran_out_are_not_retried_whatever_their_kind() {
        let waited = Failure {
            lock_wait: true,
            ..Failure::default()
        };
        let conflict = StoreError::new(ErrorKind::Conflict, "1205");
        assert_eq!(Retry::new(1).next(&conflict, waited), Next::GiveUp);
    }
}
