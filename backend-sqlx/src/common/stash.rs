//! Connections kept out of the pool for a moment after an operation, so the next
//! operation takes one without a pool round trip.
//!
//! sqlx tests every connection it gets back with a ping (a round trip to the
//! connection's worker thread, in a task of its own) and hands connections out through
//! its own queue; for a point read that doubles the work. An operation that ended
//! cleanly parks its connection here instead, and the next acquire takes the most
//! recently parked one. The bypass is short, as in HikariCP's: a connection goes back
//! to the pool (through sqlx's checks and hooks) once it has been out for
//! [`MAX_OUT`], once it sits parked for [`LINGER`], as soon as anyone waits for the
//! pool, and when the store starts closing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::Database;
use sqlx::pool::PoolConnection;

/// The longest a parked connection waits for its next operation (shorter when the
/// pool's idle timeout is).
pub(crate) const LINGER: Duration = Duration::from_millis(50);

/// The longest one connection is passed from operation to operation before it goes
/// back to the pool (which enforces `max_lifetime` and counts it idle again).
pub(crate) const MAX_OUT: Duration = Duration::from_secs(1);

/// A pooled connection lent to one operation.
#[derive(Debug)]
pub(crate) struct Lent<DB: Database> {
    conn: PoolConnection<DB>,
    /// When it left the pool.
    out_since: Instant,
}

impl<DB: Database> Lent<DB> {
    /// A connection just taken from the pool.
    pub(crate) fn new(conn: PoolConnection<DB>) -> Self {
        Self {
            conn,
            out_since: Instant::now(),
        }
    }

    /// Whether it has been out of the pool for [`MAX_OUT`] and should go back.
    pub(crate) fn is_due(&self) -> bool {
        self.out_since.elapsed() >= MAX_OUT
    }

    /// The pooled connection, which returns to the pool when dropped.
    pub(crate) fn into_inner(self) -> PoolConnection<DB> {
        self.conn
    }
}

impl<DB: Database> std::ops::Deref for Lent<DB> {
    type Target = PoolConnection<DB>;

    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl<DB: Database> std::ops::DerefMut for Lent<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

/// The parked connections of one store, most recently parked last.
#[derive(Debug)]
pub(crate) struct Stash<DB: Database> {
    parked: Mutex<Vec<(Lent<DB>, Instant)>>,
    /// The most connections parked at once (the pool's size).
    capacity: usize,
    /// How long a connection stays parked: [`LINGER`] or the idle timeout.
    linger: Duration,
    /// Callers waiting for the pool: while any wait, nothing is parked.
    waiters: AtomicUsize,
    /// Set when the store starts closing: nothing is parked any more.
    closing: AtomicBool,
    /// A task is returning lingering connections to the pool.
    sweeping: AtomicBool,
}

impl<DB: Database> Stash<DB> {
    /// An empty stash holding at most `capacity` connections, each for no longer
    /// than [`LINGER`] or `idle_timeout`, whichever is shorter.
    pub(crate) fn new(capacity: usize, idle_timeout: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            parked: Mutex::new(Vec::new()),
            capacity,
            // At least 1 ms, so the sweeper never spins on a zero idle timeout.
            linger: idle_timeout
                .map_or(LINGER, |idle| idle.clamp(Duration::from_millis(1), LINGER)),
            waiters: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            sweeping: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Lent<DB>, Instant)>> {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many connections are parked.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The most recently parked connection that has not been out too long.
    pub(crate) fn take(&self) -> Option<Lent<DB>> {
        let mut parked = self.lock();
        while let Some((lent, _)) = parked.pop() {
            if !lent.is_due() {
                return Some(lent);
            }
            // Dropped (outside the lock would be nicer, but dropping only queues the
            // return to the pool on a task of sqlx's).
            drop(lent);
        }
        None
    }

    /// Counts the caller as waiting for the pool until the guard drops. Take the
    /// guard, then call [`take`](Self::take) once more before waiting: a connection
    /// parked before the guard existed is then found, and one released after it
    /// goes to the pool and so to the waiter.
    pub(crate) fn waiting(&self) -> Waiting<'_, DB> {
        self.waiters.fetch_add(1, SeqCst);
        Waiting { stash: self }
    }

    /// Parks `lent` for the next operation, or returns it to the pool when someone
    /// waits for the pool, the store is closing, the stash is full or the connection
    /// has been out long enough.
    pub(crate) fn park(self: &Arc<Self>, lent: Lent<DB>) {
        let start_sweep = {
            let mut parked = self.lock();
            if self.waiters.load(SeqCst) > 0
                || self.closing.load(SeqCst)
                || parked.len() >= self.capacity
                || lent.is_due()
            {
                drop(parked);
                drop(lent);
                return;
            }
            parked.push((lent, Instant::now()));
            !self.sweeping.swap(true, SeqCst)
        };
        if start_sweep {
            tokio::spawn(Arc::clone(self).sweep());
        }
    }

    /// Returns every parked connection to the pool and parks nothing from now on.
    pub(crate) fn close(&self) {
        self.closing.store(true, SeqCst);
        let parked = std::mem::take(&mut *self.lock());
        drop(parked);
    }

    /// Takes every parked connection (for validation).
    pub(crate) fn take_all(&self) -> Vec<PoolConnection<DB>> {
        let parked = std::mem::take(&mut *self.lock());
        parked.into_iter().map(|(lent, _)| lent.conn).collect()
    }

    /// Returns connections parked for the linger time to the pool, until none is
    /// parked.
    async fn sweep(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.linger).await;
            let stale = {
                let mut parked = self.lock();
                let keep = parked
                    .iter()
                    .position(|(_, at)| at.elapsed() < self.linger)
                    .unwrap_or(parked.len());
                let stale: Vec<_> = parked.drain(..keep).collect();
                if parked.is_empty() {
                    self.sweeping.store(false, SeqCst);
                    drop(parked);
                    drop(stale);
                    return;
                }
                stale
            };
            drop(stale);
        }
    }
}

/// A caller waiting for the pool; see [`Stash::waiting`].
#[derive(Debug)]
pub(crate) struct Waiting<'a, DB: Database> {
    stash: &'a Stash<DB>,
}

impl<DB: Database> Drop for Waiting<'_, DB> {
    fn drop(&mut self) {
        self.stash.waiters.fetch_sub(1, SeqCst);
    }
}
