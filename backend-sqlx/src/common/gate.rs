//! Admission to a store and its closing: in-flight work, the one path every operation
//! takes to a connection, the signal that wakes callers waiting for one when `close`
//! begins, and the record that `close` gave up on work still running.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::Poll;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use storage_api::backend::{InFlight, Lifecycle, PoolInstruments};
use storage_api::{ErrorKind, Result, StoreError};
use tokio::sync::watch;

use super::connect_check::{ConnectCheck, Diagnosis};
use super::stash::{Handoff, Lent, Stash};

/// Who may use a store, and whether it is closing.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// Flips to `true` when `close` begins, waking callers waiting for a connection.
    closing: watch::Sender<bool>,
    /// Set when `close` gave up waiting: transactions still open then get `Closed`.
    forced: AtomicBool,
    /// Whether the pool can connect at all, and why not.
    connects: ConnectCheck,
}

impl Gate {
    /// An open gate for a pool whose connections go to `endpoint` (`host:port` or a
    /// file), which connection errors name in the driver's words.
    #[cfg(feature = "sqlite")]
    pub(crate) fn new(endpoint: impl Into<String>) -> Self {
        Self::diagnosed(endpoint, Diagnosis::DRIVER)
    }

    /// An open gate for a pool whose connections go to `endpoint`, whose failed
    /// connection attempts `diagnosis` reads.
    pub(crate) fn diagnosed(endpoint: impl Into<String>, diagnosis: Diagnosis) -> Self {
        Self {
            lifecycle: Lifecycle::new(),
            closing: watch::channel(false).0,
            forced: AtomicBool::new(false),
            connects: ConnectCheck::new(endpoint, diagnosis),
        }
    }

    /// Admits one operation, or `Closed`.
    pub(crate) fn enter(&self) -> Result<InFlight> {
        self.lifecycle.enter()
    }

    /// Whether the one operation admitted (by the caller) is the only one in flight:
    /// then it may poll its answers rather than sleep ([`alone::spin`](super::alone::spin)).
    pub(crate) fn alone(&self) -> bool {
        self.lifecycle.in_flight() == 1
    }

    /// Whether `close` has begun.
    pub(crate) fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }

    /// Lends a connection to one operation, feeding `instruments`: the one an operation
    /// parked last in `stash`, else the first one another operation releases or `pool`
    /// frees (see [`acquire`](Self::acquire), whose errors it returns).
    pub(crate) async fn lend<DB: Database>(
        &self,
        pool: &Pool<DB>,
        stash: &Arc<Stash<DB>>,
        instruments: &PoolInstruments,
        map: impl FnOnce(sqlx::Error, Duration) -> StoreError,
    ) -> Result<Lent<DB>> {
        if self.is_closing() {
            return Err(StoreError::closed());
        }
        let started = Instant::now();
        // Only callers of a full pool queue for a released connection: one waiting
        // while the pool opens a connection for it would abandon that connection
        // half-open whenever a released one came first.
        let full = stash.is_full(pool.size());
        match stash.take_or_wait(full) {
            Ok(lent) => {
                instruments.record_acquired(started.elapsed());
                Ok(lent)
            }
            // On the heap: sqlx's checkout would otherwise make every operation's
            // future (stash hit or not) too large for the allocator's fast path.
            Err(handoff) => {
                let wait =
                    self.wait_for_connection(pool, stash, instruments, map, handoff, started);
                Box::pin(wait).await
            }
        }
    }

    /// Waits for the pool's next free connection or, with a `handoff`, one another
    /// operation releases, whichever comes first; the caller asked at `started`.
    async fn wait_for_connection<DB: Database>(
        &self,
        pool: &Pool<DB>,
        stash: &Arc<Stash<DB>>,
        instruments: &PoolInstruments,
        map: impl FnOnce(sqlx::Error, Duration) -> StoreError,
        mut handoff: Option<Handoff<DB>>,
        started: Instant,
    ) -> Result<Lent<DB>> {
        // A caller without a place in the stash's queue gets its turn from the pool.
        let _unqueued = handoff.is_none().then(|| stash.waiting_on_pool());
        let handed = async {
            match handoff.as_mut() {
                Some(handoff) => handoff.await.ok(),
                None => None,
            }
        };
        let from_pool = tokio::select! {
            biased;
            Some(lent) = handed => {
                instruments.record_acquired(started.elapsed());
                return Ok(lent);
            }
            acquired = self.acquire(pool, instruments, map) => acquired,
        };
        let conn = from_pool?;
        // The pool answered first: a connection handed over meanwhile goes on to the
        // next caller rather than back through the pool.
        if let Some(lent) = handoff.and_then(|mut handoff| {
            handoff.close();
            handoff.try_recv().ok()
        }) {
            stash.park(lent);
        }
        Ok(Lent::new(conn))
    }

    /// Acquires a connection from `pool`, feeding `instruments`; `map` turns a sqlx
    /// failure (and how long the caller waited) into the store's error.
    ///
    /// Fails with `Closed` as soon as the store starts closing, even while waiting, and
    /// with `Connection`, naming the cause and the address, as soon as the store finds
    /// it cannot connect (see [`ConnectCheck`]). A timeout while connections were
    /// failing (a full server, one that does not answer) is a `Connection` error naming
    /// the last failure; otherwise it is a `Timeout`.
    pub(crate) async fn acquire<DB: Database>(
        &self,
        pool: &Pool<DB>,
        instruments: &PoolInstruments,
        map: impl FnOnce(sqlx::Error, Duration) -> StoreError,
    ) -> Result<PoolConnection<DB>> {
        if self.is_closing() {
            return Err(StoreError::closed());
        }
        let _waiting = instruments.waiting();
        let started = Instant::now();
        let progress = self.connects.progress();
        let mut acquire = pin!(pool.acquire());
        // Most acquires find an idle connection on their first poll; only those that
        // wait watch for `close` and for a server that cannot be reached, in a future of
        // their own (boxed, so its state does not weigh on every acquire's).
        let first = poll_fn(|cx| Poll::Ready(acquire.as_mut().poll(cx))).await;
        let acquired = match first {
            Poll::Ready(acquired) => acquired,
            Poll::Pending => Box::pin(self.wait(pool, acquire, progress)).await?,
        };
        let waited = started.elapsed();
        match acquired {
            Ok(conn) => {
                self.connects.handed_out();
                instruments.record_acquired(waited);
                Ok(conn)
            }
            Err(sqlx::Error::PoolTimedOut) => {
                instruments.record_timeout(waited);
                let error = map(sqlx::Error::PoolTimedOut, waited);
                // Connections were failing: the wait ran out because none could be
                // opened (a full server, one that stopped answering), a `Connection` error.
                match self.connects.last_failure().await {
                    Some(cause) => Err(StoreError::new(
                        ErrorKind::Connection,
                        format!(
                            "{}; last connect error ({}): {cause}",
                            error.message(),
                            self.connects.endpoint()
                        ),
                    )
                    .with_source(error)),
                    None => Err(error),
                }
            }
            Err(sqlx::Error::PoolClosed) => Err(map(sqlx::Error::PoolClosed, waited)),
            // Anything else came from opening a connection.
            Err(error) => {
                let error = map(error, waited);
                Err(StoreError::new(
                    error.kind(),
                    format!(
                        "{} (connecting to {})",
                        error.message(),
                        self.connects.endpoint()
                    ),
                )
                .with_source(error))
            }
        }
    }

    /// Waits for `acquire` (already polled once), or fails with `Closed` as soon as the
    /// store starts closing, or with `Connection` once the store finds it cannot connect
    /// while no connection was handed out since `progress`.
    async fn wait<DB: Database>(
        &self,
        pool: &Pool<DB>,
        acquire: Pin<&mut impl Future<Output = sqlx::Result<PoolConnection<DB>>>>,
        progress: u64,
    ) -> Result<sqlx::Result<PoolConnection<DB>>> {
        let mut closing = self.closing.subscribe();
        tokio::select! {
            biased;
            _ = closing.wait_for(|closing| *closing) => Err(StoreError::closed()),
            acquired = acquire => Ok(acquired),
            cause = self.connects.until_hopeless(pool, progress) => {
                Err(self.cannot_connect(&cause))
            }
        }
    }

    /// The error for a pool that cannot connect because of `cause`.
    pub(crate) fn cannot_connect(&self, cause: &str) -> StoreError {
        StoreError::new(
            ErrorKind::Connection,
            format!("cannot connect to {}: {cause}", self.connects.endpoint()),
        )
    }

    /// Whether `close` has begun signalling (callers get `Closed` from here on).
    pub(crate) fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Tells every caller waiting for a connection that the store is closing.
    pub(crate) fn mark_closing(&self) {
        self.closing.send_replace(true);
    }

    /// Records that `close` stopped waiting for in-flight work.
    pub(crate) fn mark_forced(&self) {
        self.forced.store(true, SeqCst);
    }

    /// `Closed` once `close` has given up on in-flight work.
    pub(crate) fn check_not_forced(&self) -> Result<()> {
        if self.forced.load(SeqCst) {
            return Err(StoreError::closed());
        }
        Ok(())
    }
}
