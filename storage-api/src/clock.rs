//! Time sources: the system clock, and a manual clock tests move by hand.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a store reads the current time for TTLs.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's wall clock; the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock frozen at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Default for ManualClock {
    /// A clock frozen at 2030-01-01T00:00:00Z.
    fn default() -> Self {
        Self::new(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Milliseconds since the Unix epoch, the unit expiry times are stored in
/// (times before the epoch clamp to 0).
pub fn to_unix_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`to_unix_millis`] (negative values clamp to the epoch).
pub fn from_unix_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The stored expiry of a write made at `now` with `ttl`, rounded up to whole
/// milliseconds so an entry never expires early.
pub fn expiry_millis(now: SystemTime, ttl: Option<Duration>) -> Option<i64> {
    let ttl = ttl?;
    let at = now
        .checked_add(ttl)
        .unwrap_or(UNIX_EPOCH + Duration::from_secs(i64::MAX as u64 / 1000));
    let ms = to_unix_millis(at);
    let exact = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 1_000_000 == 0)
        .unwrap_or(true);
    Some(if exact { ms } else { ms.saturating_add(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let c = ManualClock::default();
        let other = c.clone();
        let t0 = c.now();
        c.advance(Duration::from_secs(5));
        assert_eq!(other.now(), t0 + Duration::from_secs(5));
    }

    #[test]
    fn expiry_rounds_up_to_the_millisecond() {
        let now = UNIX_EPOCH + Duration::from_micros(1_500);
        assert_eq!(expiry_millis(now, Some(Duration::from_millis(1))), Some(3));
        assert_eq!(expiry_millis(now, None), None);
        assert_eq!(
            from_unix_millis(to_unix_millis(now)),
            UNIX_EPOCH + Duration::from_millis(1)
        );
    }
}
