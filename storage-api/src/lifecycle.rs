//! Admission control for `close`: counts work in flight, refuses new work once closed,
//! and lets `close` wait for in-flight work within a grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::error::{Result, StoreError};

/// Tracks whether a store is open and how much work is in flight.
#[derive(Debug, Default)]
pub struct Lifecycle {
    closed: AtomicBool,
    in_flight: AtomicUsize,
    drained: Notify,
}

/// What [`Lifecycle::close`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// `true` for the call that closed the store; `false` for later calls.
    pub first: bool,
    /// Work in flight when close began.
    pub in_flight: usize,
    /// Work still in flight when the grace period ran out.
    pub remaining: usize,
    /// How long close waited.
    pub waited: Duration,
}

impl Lifecycle {
    /// An open lifecycle with nothing in flight.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Admits one unit of work, or fails with `Closed`. The work counts as in flight
    /// until the returned guard drops.
    pub fn enter(self: &Arc<Self>) -> Result<InFlight> {
        self.admit()?;
        Ok(InFlight {
            lifecycle: Arc::clone(self),
        })
    }

    /// Whether `close` has begun.
    pub fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// Work in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(SeqCst)
    }

    /// Refuses new work at once, then waits up to `grace` for in-flight work to finish.
    /// Safe to call more than once; every call waits for the drain.
    pub async fn close(&self, grace: Duration) -> Drain {
        let first = !self.closed.swap(true, SeqCst);
        let started = Instant::now();
        let in_flight = self.in_flight();
        let deadline = started + grace;
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let _ = tokio::time::timeout(deadline - now, notified).await;
        }
        Drain {
            first,
            in_flight,
            remaining: self.in_flight(),
            waited: started.elapsed(),
        }
    }

    /// Admits one unit of work that ends before the caller returns (it never leaves
    /// the caller's stack frame), or fails with `Closed`; as [`enter`](Self::enter),
    /// without sharing the lifecycle.
    pub fn enter_here(&self) -> Result<InFlightHere<'_>> {
        self.admit()?;
        Ok(InFlightHere { lifecycle: self })
    }

    /// Counts one unit of work in, or `Closed` (counted out again) once closing began.
    fn admit(&self) -> Result<()> {
        self.in_flight.fetch_add(1, SeqCst);
        if self.closed.load(SeqCst) {
            self.leave();
            return Err(StoreError::closed());
        }
        Ok(())
    }

    /// Ends one unit of work. Only `close` waits for the count to reach zero, and it
    /// marks the lifecycle closed before it looks at the count (both `SeqCst`): work
    /// that ends unseen by a closing call was already counted out when it looked.
    fn leave(&self) {
        if self.in_flight.fetch_sub(1, SeqCst) == 1 && self.closed.load(SeqCst) {
            self.drained.notify_waiters();
        }
    }
}

/// One unit of admitted work; see [`Lifecycle::enter`].
#[derive(Debug)]
pub struct InFlight {
    lifecycle: Arc<Lifecycle>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.lifecycle.leave();
    }
}

/// One unit of admitted work on the caller's stack; see [`Lifecycle::enter_here`].
#[derive(Debug)]
pub struct InFlightHere<'a> {
    lifecycle: &'a Lifecycle,
}

impl Drop for InFlightHere<'_> {
    fn drop(&mut self) {
        self.lifecycle.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[tokio::test]
    async fn work_in_the_callers_frame_counts_until_it_ends() {
        let life = Lifecycle::new();
        {
            let _here = life.enter_here().unwrap();
            let _shared = life.enter().unwrap();
            assert_eq!(life.in_flight(), 2);
        }
        assert_eq!(life.in_flight(), 0);
        let drain = life.close(Duration::from_secs(1)).await;
        assert_eq!((drain.in_flight, drain.remaining), (0, 0));
        assert_eq!(life.enter_here().unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(life.in_flight(), 0);
    }

    #[tokio::test]
    async fn close_waits_for_in_flight_work_then_refuses_new_work() {
        let life = Lifecycle::new();
        let work = life.enter().unwrap();
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(work);
        });
        let drain = life.close(Duration::from_secs(10)).await;
        assert!(drain.first);
        assert_eq!((drain.in_flight, drain.remaining), (1, 0));
        assert!(drain.waited >= Duration::from_millis(80));
        assert_eq!(life.enter().unwrap_err().kind(), ErrorKind::Closed);
        releaser.await.unwrap();
        assert!(!life.close(Duration::from_secs(1)).await.first);
    }

    #[tokio::test]
    async fn close_gives_up_after_the_grace_period() {
        let life = Lifecycle::new();
        let _stuck = life.enter().unwrap();
        let drain = life.close(Duration::from_millis(50)).await;
        assert_eq!(drain.remaining, 1);
        assert!(drain.waited < Duration::from_secs(5));
    }
}
