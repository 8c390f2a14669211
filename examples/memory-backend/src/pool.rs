//! The connection pool: a semaphore of `max_connections` permits, a stack of idle
//! "connections", the shared [`PoolInstruments`] and the [`Lifecycle`] that `close`
//! uses. A connection here is only bookkeeping, but it is acquired, timed out, reused,
//! retired and closed exactly like a real one, so the pool cases of the kit mean
//! something.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use storage_api::backend::{InFlight, Lifecycle, PoolGauges, PoolInstruments};
use storage_api::{CloseReason, ConnectionValidation, ErrorKind, PoolMetrics, Result, StoreError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::settings::PoolSettings;

/// One pooled connection.
#[derive(Debug)]
struct Connection {
    created: Instant,
    idle_since: Instant,
    /// Set by [`Pool::break_idle`] to play a connection the server has dropped.
    broken: bool,
}

/// The pool shared by the store, its leases and its transactions.
#[derive(Debug)]
pub(crate) struct Pool {
    settings: PoolSettings,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Connection>>,
    open: AtomicU32,
    instruments: PoolInstruments,
    lifecycle: Arc<Lifecycle>,
    /// Set once `close` has given up waiting: held connections are dead from then on.
    shut_down: AtomicBool,
    closed_connections: AtomicU64,
}

impl Pool {
    /// A pool with `min_idle` connections already open.
    pub(crate) fn new(settings: PoolSettings) -> Arc<Self> {
        let pool = Arc::new(Self {
            permits: Arc::new(Semaphore::new(settings.max as usize)),
            idle: Mutex::new(Vec::new()),
            open: AtomicU32::new(0),
            instruments: PoolInstruments::new(),
            lifecycle: Lifecycle::new(),
            shut_down: AtomicBool::new(false),
            closed_connections: AtomicU64::new(0),
            settings,
        });
        let warm: Vec<Connection> = (0..settings.min_idle).map(|_| pool.connect()).collect();
        pool.idle().extend(warm);
        pool
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connect(&self) -> Connection {
        self.open.fetch_add(1, SeqCst);
        self.instruments.record_created();
        let now = Instant::now();
        Connection {
            created: now,
            idle_since: now,
            broken: false,
        }
    }

    fn discard(&self, _connection: Connection, reason: CloseReason) {
        self.open.fetch_sub(1, SeqCst);
        self.instruments.record_closed(reason);
        self.closed_connections.fetch_add(1, SeqCst);
    }

    /// Admits one unit of work without a connection (validation, say); `Closed` after
    /// `close`.
    pub(crate) fn enter(&self) -> Result<InFlight> {
        self.lifecycle.enter()
    }

    /// Waits up to the acquire timeout for a connection.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<Lease> {
        let work = self.lifecycle.enter()?;
        let started = Instant::now();
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => self.wait_for_permit(started).await?,
        };
        let connection = self.checkout();
        self.instruments.record_acquired(started.elapsed());
        Ok(Lease {
            connection: Some(connection),
            pool: Arc::clone(self),
            _permit: permit,
            _work: work,
            leased_at: Instant::now(),
        })
    }

    async fn wait_for_permit(&self, started: Instant) -> Result<OwnedSemaphorePermit> {
        let _waiting = self.instruments.waiting();
        let wait = Arc::clone(&self.permits).acquire_owned();
        match tokio::time::timeout(self.settings.acquire_timeout, wait).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(StoreError::closed()),
            Err(_) => {
                let waited = started.elapsed();
                self.instruments.record_timeout(waited);
                Err(StoreError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no connection became free within the acquire timeout \
                         (db_connection_timeout_secs, waited {waited:?})"
                    ),
                ))
            }
        }
    }

    /// An idle connection that is still good, or a new one.
    fn checkout(&self) -> Connection {
        let mut idle = self.idle();
        while let Some(connection) = idle.pop() {
            if connection.broken {
                self.discard(connection, CloseReason::Broken);
            } else if self.idle_expired(&connection, idle.len()) {
                self.discard(connection, CloseReason::IdleTimeout);
            } else {
                return connection;
            }
        }
        drop(idle);
        self.connect()
    }

    fn idle_expired(&self, connection: &Connection, others_idle: usize) -> bool {
        let above_min = others_idle >= self.settings.min_idle as usize;
        self.settings
            .idle_timeout
            .is_some_and(|limit| above_min && connection.idle_since.elapsed() > limit)
    }

    fn check_in(&self, mut connection: Connection) {
        if self.lifecycle.is_closed() {
            self.discard(connection, CloseReason::Shutdown);
        } else if self
            .settings
            .max_lifetime
            .is_some_and(|limit| connection.created.elapsed() > limit)
        {
            self.discard(connection, CloseReason::MaxLifetime);
        } else {
            connection.idle_since = Instant::now();
            self.idle().push(connection);
        }
    }

    /// Checks every idle connection once and evicts the broken ones.
    pub(crate) fn validate(&self) -> ConnectionValidation {
        let mut idle = self.idle();
        let (broken, good): (Vec<_>, Vec<_>) = idle.drain(..).partition(|c| c.broken);
        let (valid, invalid) = (good.len() as u32, broken.len() as u32);
        idle.extend(good);
        drop(idle);
        for connection in broken {
            self.discard(connection, CloseReason::Invalid);
        }
        ConnectionValidation::new(valid, invalid, self.settings.max)
    }

    /// Marks every idle connection broken, as a server dropping its sessions would;
    /// returns how many.
    pub(crate) fn break_idle(&self) -> u32 {
        let mut idle = self.idle();
        for connection in idle.iter_mut() {
            connection.broken = true;
        }
        idle.len() as u32
    }

    /// Whether held connections still work (false once `close` gave up waiting).
    pub(crate) fn is_usable(&self) -> bool {
        !self.shut_down.load(SeqCst)
    }

    /// Whether `close` has begun.
    pub(crate) fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }

    /// A snapshot of gauges and counters.
    pub(crate) fn metrics(&self) -> PoolMetrics {
        let idle = self.idle().len() as u32;
        self.instruments.snapshot(PoolGauges {
            max: self.settings.max,
            min_idle: self.settings.min_idle,
            size: self.open.load(SeqCst),
            idle,
        })
    }

    /// Counts a write that gave up on the write lock.
    pub(crate) fn record_busy(&self) {
        self.instruments.record_busy();
    }

    /// Refuses new work and wakes waiters with `Closed`, waits for in-flight work up to
    /// the grace period, then closes every idle connection (held ones close when
    /// returned). Returns the drain and how many connections this call closed.
    pub(crate) async fn close(&self) -> (storage_api::backend::Drain, u32) {
        self.permits.close();
        let before = self.closed_connections.load(SeqCst);
        let drain = self.lifecycle.close(self.settings.close_grace).await;
        self.shut_down.store(true, SeqCst);
        let idle: Vec<Connection> = self.idle().drain(..).collect();
        for connection in idle {
            self.discard(connection, CloseReason::Shutdown);
        }
        let closed = self.closed_connections.load(SeqCst) - before;
        (drain, u32::try_from(closed).unwrap_or(u32::MAX))
    }

    /// The configured busy timeout, for the write lock.
    pub(crate) fn busy_timeout(&self) -> Duration {
        self.settings.busy_timeout
    }
}

/// A connection on loan; returned to the pool (or closed) when dropped, whatever
/// future was holding it, which is what makes cancellation safe.
#[derive(Debug)]
pub(crate) struct Lease {
    connection: Option<Connection>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
    _work: InFlight,
    /// When the lease began, for leak detection.
    leased_at: Instant,
}

impl Lease {
    /// Fails with `Closed` once `close` has closed the connections.
    pub(crate) fn check_usable(&self) -> Result<()> {
        if self.pool.is_usable() {
            Ok(())
        } else {
            Err(StoreError::closed())
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let threshold = self.pool.settings.leak_detection_threshold;
        if threshold.is_some_and(|limit| self.leased_at.elapsed() > limit) {
            self.pool.instruments.record_leak();
        }
        if let Some(connection) = self.connection.take() {
            self.pool.check_in(connection);
        }
    }
}
