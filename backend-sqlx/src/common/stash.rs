//! Connections kept out of the pool for a moment after an operation, so the next
//! operation takes one without a pool round trip.
//!
//! sqlx tests every connection it gets back with a ping (a round trip to the server, or
//! to a SQLite connection's worker thread, in a task of its own) and hands connections
//! out through its own queue; for a point read that doubles the work. An operation that
//! ended cleanly parks its connection here instead, and the next acquire takes the most
//! recently parked one; while callers wait for a connection, the one released goes
//! straight to the caller that has waited longest (see [`Stash::take_or_wait`]), as in
//! HikariCP's hand-off queue. The bypass is short: a connection goes back to the pool
//! (through sqlx's checks and hooks) once it has been out for [`MAX_OUT`], once it sits
//! parked for [`LINGER`], while a caller waits for the pool without a place in the
//! stash's queue, and when the store starts closing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::Database;
use sqlx::pool::PoolConnection;
use storage_api::StoreOptions;
use tokio::sync::oneshot;

/// The longest a parked connection waits for its next operation (shorter when the
/// pool's idle timeout is). Long enough that a connection broken while parked is
/// still there for `validate_connections` to find and count, rather than closed
/// silently by sqlx's ping on its way back to the pool.
pub(crate) const LINGER: Duration = Duration::from_secs(1);

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
    #[cfg(feature = "sqlite")]
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
    /// How long a connection stays parked: [`LINGER`], or the idle timeout or maximum
    /// lifetime if shorter.
    linger: Duration,
    /// Set when the store starts closing: nothing is parked any more.
    closing: AtomicBool,
    /// A task is returning lingering connections to the pool.
    sweeping: AtomicBool,
    /// Callers waiting for the pool without a place in the stash's queue (they found
    /// the pool still growing): while any does, released connections go back to the
    /// pool, which serves them in turn, rather than circulating through the stash.
    waiting_on_pool: AtomicUsize,
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
    /// An empty stash for a pool of `options.max_connections`, holding each connection
    /// for no longer than [`LINGER`], the idle timeout or the maximum lifetime,
    /// whichever is shortest.
    pub(crate) fn new(options: &StoreOptions) -> Arc<Self> {
        let linger = [options.idle_timeout, options.max_lifetime]
            .into_iter()
            .flatten()
            .fold(LINGER, Duration::min);
        Arc::new(Self {
            state: Mutex::new(State {
                parked: Vec::new(),
                waiters: VecDeque::new(),
            }),
            capacity: usize::try_from(options.max_connections).unwrap_or(usize::MAX),
            // At least 1 ms, so the sweeper never spins on a zero timeout.
            linger: linger.max(Duration::from_millis(1)),
            closing: AtomicBool::new(false),
            sweeping: AtomicBool::new(false),
            waiting_on_pool: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<DB>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a pool of `size` connections is as large as it may grow (the stash's
    /// capacity is the pool's `max_connections`).
    pub(crate) fn is_full(&self, size: u32) -> bool {
        usize::try_from(size).unwrap_or(usize::MAX) >= self.capacity
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

    /// Counts the caller as waiting for the pool without a place in the queue (see
    /// [`take_or_wait`](Self::take_or_wait)) until the guard drops.
    pub(crate) fn waiting_on_pool(&self) -> PoolWaiter<'_> {
        self.waiting_on_pool.fetch_add(1, SeqCst);
        PoolWaiter(&self.waiting_on_pool)
    }

    /// Hands `lent` to the caller that has waited longest for a connection, else parks
    /// it for the next operation; returns it to the pool instead when the store is
    /// closing, the stash is full, the connection has been out long enough or a
    /// caller waits for the pool outside the stash's queue.
    pub(crate) fn park(self: &Arc<Self>, mut lent: Lent<DB>) {
        if self.closing.load(SeqCst) || lent.is_due() || self.waiting_on_pool.load(SeqCst) > 0 {
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

/// A caller counted as waiting for the pool outside the stash's queue; see
/// [`Stash::waiting_on_pool`].
#[derive(Debug)]
pub(crate) struct PoolWaiter<'a>(&'a AtomicUsize);

impl Drop for PoolWaiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
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

    fn options() -> StoreOptions {
        let mut options = StoreOptions::new("sqlite::memory:");
        options.max_connections = 2;
        options
    }

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
        let stash = Stash::<Sqlite>::new(&options());
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
    async fn released_connections_go_to_the_pool_while_a_caller_waits_there_unqueued() {
        let pool = pool().await;
        let stash = Stash::<Sqlite>::new(&options());
        let waiter = stash.waiting_on_pool();
        stash.park(Lent::new(pool.acquire().await.unwrap()));
        assert_eq!(
            stash.len(),
            0,
            "back to the pool, which serves its waiters in turn"
        );
        drop(waiter);
        stash.park(Lent::new(pool.acquire().await.unwrap()));
        assert_eq!(stash.len(), 1);
        pool.close().await;
    }

    #[tokio::test]
    async fn a_closing_stash_hands_nothing_out() {
        let pool = pool().await;
        let stash = Stash::<Sqlite>::new(&options());
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
