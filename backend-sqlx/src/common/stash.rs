//! Connections kept out of the pool for a moment after an operation, so the next
//! operation takes one without a pool round trip.
//!
//! sqlx tests every connection it gets back with a ping (a round trip to the
//! connection's worker thread, in a task of its own) and hands connections out through
//! its own queue; for a point read that doubles the work. An operation that ended
//! cleanly parks its connection here instead, and the next acquire takes the most
//! recently parked one; while callers wait for a connection, the one released goes
//! straight to the caller that has waited longest (see [`Stash::take_or_wait`]), as
//! in HikariCP's hand-off queue. The bypass is short: a connection goes back to the
//! pool (through sqlx's checks and hooks) once it has been out for [`MAX_OUT`], once
//! it sits parked for [`LINGER`], and when the store starts closing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::Database;
use sqlx::pool::PoolConnection;
use tokio::sync::oneshot;

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

/// The parked connections of one store, and the callers waiting for one.
#[derive(Debug)]
pub(crate) struct Stash<DB: Database> {
    state: Mutex<State<DB>>,
    /// The most connections parked at once (the pool's size).
    capacity: usize,
    /// How long a connection stays parked: [`LINGER`] or the idle timeout.
    linger: Duration,
    /// Set when the store starts closing: nothing is parked any more.
    closing: AtomicBool,
    /// A task is returning lingering connections to the pool.
    sweeping: AtomicBool,
}

/// What the stash's lock guards. Connections are parked only while nobody waits, and
/// callers wait only while nothing is parked.
#[derive(Debug)]
struct State<DB: Database> {
    /// Most recently parked last, with the moment each was parked.
    parked: Vec<(Lent<DB>, Instant)>,
    /// Callers waiting for a connection, longest first; a caller that got one from
    /// the pool instead, or gave up, leaves a closed sender behind.
    waiters: VecDeque<oneshot::Sender<Lent<DB>>>,
}

/// A connection the stash will hand to a waiting caller; see [`Stash::take_or_wait`].
pub(crate) type Handoff<DB> = oneshot::Receiver<Lent<DB>>;

impl<DB: Database> Stash<DB> {
    /// An empty stash holding at most `capacity` connections, each for no longer
    /// than [`LINGER`] or `idle_timeout`, whichever is shorter.
    pub(crate) fn new(capacity: usize, idle_timeout: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                parked: Vec::new(),
                waiters: VecDeque::new(),
            }),
            capacity,
            // At least 1 ms, so the sweeper never spins on a zero idle timeout.
            linger: idle_timeout
                .map_or(LINGER, |idle| idle.clamp(Duration::from_millis(1), LINGER)),
            closing: AtomicBool::new(false),
            sweeping: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<DB>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many connections are parked.
    pub(crate) fn len(&self) -> usize {
        self.lock().parked.len()
    }

    /// The most recently parked connection that has not been out too long, or, when
    /// none is and `queue` is set, a place in the queue of callers waiting for one:
    /// the next connection released goes to the caller that has waited longest.
    /// Wait on the pool at the same time (a connection the pool frees goes to its own
    /// waiters) and drop the [`Handoff`] once the pool answers; a connection handed to
    /// it meanwhile then goes back to the pool.
    pub(crate) fn take_or_wait(&self, queue: bool) -> Result<Lent<DB>, Option<Handoff<DB>>> {
        let mut state = self.lock();
        if let Some(lent) = state.take() {
            return Ok(lent);
        }
        if !queue {
            return Err(None);
        }
        let (sender, handoff) = oneshot::channel();
        // Callers that stopped waiting leave their senders; never more than the
        // callers waiting at once stay queued.
        state.waiters.retain(|waiter| !waiter.is_closed());
        state.waiters.push_back(sender);
        Err(Some(handoff))
    }

    /// Hands `lent` to the caller that has waited longest for a connection, else parks
    /// it for the next operation; returns it to the pool instead when the store is
    /// closing, the stash is full or the connection has been out long enough.
    pub(crate) fn park(self: &Arc<Self>, mut lent: Lent<DB>) {
        if self.closing.load(SeqCst) || lent.is_due() {
            drop(lent);
            return;
        }
        let start_sweep = {
            let mut state = self.lock();
            while let Some(waiter) = state.waiters.pop_front() {
                match waiter.send(lent) {
                    Ok(()) => return,
                    // That caller stopped waiting: the next one.
                    Err(back) => lent = back,
                }
            }
            if self.closing.load(SeqCst) || state.parked.len() >= self.capacity {
                drop(state);
                drop(lent);
                return;
            }
            state.parked.push((lent, Instant::now()));
            !self.sweeping.swap(true, SeqCst)
        };
        if start_sweep {
            tokio::spawn(Arc::clone(self).sweep());
        }
    }

    /// Returns every parked connection to the pool and parks nothing from now on;
    /// callers waiting go on waiting for the pool alone.
    pub(crate) fn close(&self) {
        self.closing.store(true, SeqCst);
        let (parked, waiters) = {
            let mut state = self.lock();
            (
                std::mem::take(&mut state.parked),
                std::mem::take(&mut state.waiters),
            )
        };
        drop((parked, waiters));
    }

    /// Takes every parked connection (for validation).
    pub(crate) fn take_all(&self) -> Vec<PoolConnection<DB>> {
        let parked = std::mem::take(&mut self.lock().parked);
        parked.into_iter().map(|(lent, _)| lent.conn).collect()
    }

    /// Returns connections parked for the linger time to the pool, until none is
    /// parked.
    async fn sweep(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.linger).await;
            let stale = {
                let mut state = self.lock();
                let parked = &mut state.parked;
                let keep = parked
                    .iter()
                    .position(|(_, at)| at.elapsed() < self.linger)
                    .unwrap_or(parked.len());
                let stale: Vec<_> = parked.drain(..keep).collect();
                if parked.is_empty() {
                    self.sweeping.store(false, SeqCst);
                    drop(state);
                    drop(stale);
                    return;
                }
                stale
            };
            drop(stale);
        }
    }
}

impl<DB: Database> State<DB> {
    /// The most recently parked connection that has not been out too long.
    fn take(&mut self) -> Option<Lent<DB>> {
        while let Some((lent, _)) = self.parked.pop() {
            if !lent.is_due() {
                return Some(lent);
            }
            // Dropped (outside the lock would be nicer, but dropping only queues the
            // return to the pool on a task of sqlx's).
            drop(lent);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Sqlite;
    use sqlx::sqlite::SqlitePoolOptions;

    use super::*;

    async fn pool() -> sqlx::SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(2)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_released_connection_goes_to_the_longest_waiting_caller() {
        let pool = pool().await;
        let stash = Stash::<Sqlite>::new(2, None);
        let lent = Lent::new(pool.acquire().await.unwrap());
        assert!(matches!(stash.take_or_wait(false), Err(None)));
        let Err(Some(gave_up)) = stash.take_or_wait(true) else {
            panic!("nothing was parked");
        };
        let Err(Some(first)) = stash.take_or_wait(true) else {
            panic!("nothing was parked");
        };
        let Err(Some(second)) = stash.take_or_wait(true) else {
            panic!("nothing was parked");
        };
        drop(gave_up);
        stash.park(lent);
        assert!(first.await.is_ok(), "the first caller still waiting");
        assert_eq!(stash.len(), 0);
        drop(second);
        // With nobody waiting, a released connection is parked for the next caller.
        stash.park(Lent::new(pool.acquire().await.unwrap()));
        assert_eq!(stash.len(), 1);
        assert!(stash.take_or_wait(true).is_ok());
        pool.close().await;
    }

    #[tokio::test]
    async fn a_closing_stash_hands_nothing_out() {
        let pool = pool().await;
        let stash = Stash::<Sqlite>::new(2, None);
        let Err(Some(waiting)) = stash.take_or_wait(true) else {
            panic!("nothing was parked");
        };
        stash.close();
        stash.park(Lent::new(pool.acquire().await.unwrap()));
        assert!(waiting.await.is_err(), "the waiter is left to the pool");
        assert_eq!(stash.len(), 0);
        pool.close().await;
    }
}
