//! The connection pool: a deadpool `managed::Pool` with our manager, acquisition under
//! one deadline with the shared instruments, and the idle/lifetime/validation work
//! deadpool leaves to its users.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::task::Poll;
use std::time::{Duration, Instant};

use deadpool::managed::{
    self, Metrics, Object, PoolConfig, PoolError, QueueMode, RecycleError, TimeoutType, Timeouts,
};
use rusqlite::Connection;
use storage_api::backend::{InFlight, PoolGauges, PoolInstruments};
use storage_api::{CloseReason, ConnectionValidation, ErrorKind, PoolMetrics, StoreError};

use crate::connection::{Autocheckpoint, ConnState, ConnectSpec, OpenConnections, SqliteConn};
use crate::errors::{DbError, map_error};
use crate::lease::Lease;
use crate::parked::Parked;

/// A connection checked out of the deadpool pool.
pub(crate) type PooledConn = Object<ConnManager>;

/// Opens connections with the store's spec and recycles them without a thread hop.
#[derive(Debug)]
pub(crate) struct ConnManager {
    spec: Arc<ConnectSpec>,
    instruments: Arc<PoolInstruments>,
    max_lifetime: Option<Duration>,
    open: Arc<OpenConnections>,
}

impl managed::Manager for ConnManager {
    type Type = SqliteConn;
    type Error = StoreError;

    async fn create(&self) -> Result<SqliteConn, StoreError> {
        let spec = Arc::clone(&self.spec);
        let opened = tokio::task::spawn_blocking(move || spec.open())
            .await
            .map_err(|_| map_error("opening a connection", DbError::Lost))??;
        self.instruments.record_created();
        Ok(SqliteConn::new(
            opened,
            Arc::clone(&self.instruments),
            &self.open,
            self.max_lifetime,
        ))
    }

    async fn recycle(
        &self,
        conn: &mut SqliteConn,
        _: &Metrics,
    ) -> managed::RecycleResult<StoreError> {
        let reason = match conn.state() {
            ConnState::Broken => Some(CloseReason::Broken),
            // Never hand out a connection mid-transaction; returns reset them first,
            // so this only guards against a path that forgot to.
            ConnState::Dirty => Some(CloseReason::Invalid),
            ConnState::Clean if conn.expired_at(Instant::now()) => Some(CloseReason::MaxLifetime),
            ConnState::Clean => None,
        };
        match reason {
            None => Ok(()),
            Some(reason) => {
                conn.retire(reason);
                Err(RecycleError::message(reason.as_str()))
            }
        }
    }
}

/// Pool settings taken from `StoreOptions`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSettings {
    /// Maximum connections.
    pub(crate) max: u32,
    /// Connections kept open.
    pub(crate) min_idle: u32,
    /// Idle connections above `min_idle` close after this.
    pub(crate) idle_timeout: Option<Duration>,
    /// Connections retire after this, never while in use.
    pub(crate) max_lifetime: Option<Duration>,
}

/// The store's pool with the bookkeeping deadpool does not do.
#[derive(Debug)]
pub(crate) struct ConnPool {
    pool: managed::Pool<ConnManager>,
    instruments: Arc<PoolInstruments>,
    settings: PoolSettings,
    checked_out: AtomicU32,
    open: Arc<OpenConnections>,
    /// The connection given back last, while nobody waits for one.
    parked: Parked<PooledConn>,
}

/// A non-blocking checkout: an idle connection, a new one, or nothing.
const TRY_ONLY: Timeouts = Timeouts {
    wait: Some(Duration::ZERO),
    create: None,
    recycle: None,
};

impl ConnPool {
    /// Builds an empty pool; connections open on demand.
    pub(crate) fn new(
        spec: ConnectSpec,
        settings: PoolSettings,
        instruments: Arc<PoolInstruments>,
    ) -> Result<Arc<Self>, StoreError> {
        let open = Arc::new(OpenConnections::default());
        let manager = ConnManager {
            spec: Arc::new(spec),
            instruments: Arc::clone(&instruments),
            max_lifetime: settings.max_lifetime,
            open: Arc::clone(&open),
        };
        let mut config = PoolConfig::new(usize::try_from(settings.max).unwrap_or(usize::MAX));
        // Deadlines are ours (one for every phase); most recently used first, so
        // connections beyond the working set go idle and can retire.
        config.timeouts = Timeouts::new();
        config.queue_mode = QueueMode::Lifo;
        let pool = managed::Pool::builder(manager)
            .config(config)
            .build()
            .map_err(|e| {
                StoreError::new(ErrorKind::Backend, "building the connection pool failed")
                    .with_source(e.to_string())
            })?;
        Ok(Arc::new(Self {
            pool,
            instruments,
            settings,
            checked_out: AtomicU32::new(0),
            open,
            parked: Parked::default(),
        }))
    }

    /// Checks out a connection within `budget`, which covers waiting, opening and
    /// recycling alike. `work` stays in flight until the lease is fully returned.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        budget: Duration,
        work: InFlight,
    ) -> Result<Lease, StoreError> {
        let _waiting = self.instruments.waiting();
        // The parked connection first: no wait, so none to time.
        if let Some(object) = self.parked.take() {
            self.instruments.record_acquired(Duration::ZERO);
            return Ok(self.lease(object, work));
        }
        let started = Instant::now();
        // Then a checkout that takes a free permit or none (no place in the queue):
        // an idle connection is taken without the waiting machinery or a timer.
        // Polled once before the deadline is armed: when it opens a connection, the
        // opening goes on under the deadline. With every connection in use, the
        // checkout that waits its turn, for what is left of `budget`.
        // On the heap: deadpool's checkout is most of an operation's future, which
        // would otherwise be too large for the allocator's fast path.
        let mut try_get = Box::pin(self.pool.timeout_get(&TRY_ONLY));
        let first = std::future::poll_fn(|cx| Poll::Ready(try_get.as_mut().poll(cx))).await;
        let got = match first {
            Poll::Ready(Err(PoolError::Timeout(TimeoutType::Wait))) => {
                let left = budget.saturating_sub(started.elapsed());
                tokio::time::timeout(left, Box::pin(self.pool.get())).await
            }
            Poll::Ready(got) => Ok(got),
            Poll::Pending => {
                let left = budget.saturating_sub(started.elapsed());
                tokio::time::timeout(left, try_get).await
            }
        };
        match got {
            Ok(Ok(object)) => {
                self.instruments.record_acquired(started.elapsed());
                Ok(self.lease(object, work))
            }
            Ok(Err(e)) => Err(map_error("acquiring a connection", e)),
            Err(_) => {
                let waited = started.elapsed();
                self.instruments.record_timeout(waited);
                Err(StoreError::new(
                    ErrorKind::Timeout,
                    format!(
                        "acquiring a connection timed out after {waited:?} \
                         (db_connection_timeout_secs allows {budget:?})"
                    ),
                ))
            }
        }
    }

    /// Runs the short `f` on the parked connection, on the calling thread (see
    /// [`SqliteConn::run_here`]), and gives it back: a checkout and a return without a
    /// lease, for work that ends before the caller returns. `None`, with nothing run,
    /// when no connection is parked.
    pub(crate) fn run_parked<R>(
        &self,
        busy_timeout: Duration,
        f: impl FnOnce(&mut Connection) -> Result<R, DbError>,
    ) -> Option<Result<R, DbError>> {
        let object = self.parked.take()?;
        self.instruments.record_acquired(Duration::ZERO);
        self.checked_out.fetch_add(1, SeqCst);
        let result = object.run_here(busy_timeout, Autocheckpoint::AsIs, f);
        self.give_back(object);
        Some(result)
    }

    /// A connection if one is free (or can be opened) right now, without waiting and
    /// without counting an acquisition: for the store's own background work.
    pub(crate) async fn try_acquire(self: &Arc<Self>, work: InFlight) -> Option<Lease> {
        let object = match self.parked.take() {
            Some(object) => object,
            None => self.pool.timeout_get(&TRY_ONLY).await.ok()?,
        };
        Some(self.lease(object, work))
    }

    /// Counts `object` as checked out and wraps it for one operation.
    fn lease(self: &Arc<Self>, object: PooledConn, work: InFlight) -> Lease {
        self.checked_out.fetch_add(1, SeqCst);
        Lease::new(object, Arc::clone(self), work)
    }

    /// Returns a lease's connection to the pool (parked, when nobody waits for one),
    /// or discards it when it is broken, past `max_lifetime`, or (a safety net: leases
    /// reset first) mid-transaction.
    pub(crate) fn give_back(&self, object: PooledConn) {
        let state = object.state();
        self.give_back_as(object, state);
    }

    /// [`give_back`](Self::give_back) for a connection found in `state` just now.
    pub(crate) fn give_back_as(&self, object: PooledConn, state: ConnState) {
        let now = Instant::now();
        let retire = match state {
            ConnState::Broken => Some(CloseReason::Broken),
            ConnState::Dirty => Some(CloseReason::Invalid),
            ConnState::Clean if object.expired_at(now) => Some(CloseReason::MaxLifetime),
            ConnState::Clean => None,
        };
        match retire {
            Some(reason) => self.discard(object, reason),
            None => {
                object.mark_returned_at(now);
                self.checked_out.fetch_sub(1, SeqCst);
                let may_park = || self.instruments.waiters() == 0 && !self.pool.is_closed();
                drop(self.parked.park(object, may_park));
            }
        }
    }

    /// Takes a checked-out connection out of the pool for good and closes it.
    pub(crate) fn discard(&self, object: PooledConn, reason: CloseReason) {
        object.retire(reason);
        drop(Object::take(object));
        self.checked_out.fetch_sub(1, SeqCst);
    }

    /// Maps a failed operation's error, counting it when the database was locked.
    pub(crate) fn fail(&self, op: &str, err: impl Into<DbError>) -> StoreError {
        let err = map_error(op, err);
        if err.kind() == ErrorKind::Busy {
            self.instruments.record_busy();
        }
        tracing::debug!(backend = "deadpool", op, kind = %err.kind(), "operation failed");
        err
    }

    /// The shared instruments.
    pub(crate) fn instruments(&self) -> &Arc<PoolInstruments> {
        &self.instruments
    }

    /// The gauges and counters now.
    pub(crate) fn metrics(&self) -> PoolMetrics {
        let size = u32::try_from(self.pool.status().size).unwrap_or(u32::MAX);
        self.instruments.snapshot(PoolGauges {
            max: self.settings.max,
            min_idle: self.settings.min_idle,
            size,
            idle: size.saturating_sub(self.checked_out.load(SeqCst)),
        })
    }

    fn idle_count(&self) -> usize {
        let size = self.pool.status().size;
        let out = usize::try_from(self.checked_out.load(SeqCst)).unwrap_or(usize::MAX);
        size.saturating_sub(out)
    }

    /// Retires idle connections past `max_lifetime`, and idle ones past `idle_timeout`
    /// while more than `min_idle` are open. Connections in use are never seen here.
    pub(crate) fn reap(&self) {
        let PoolSettings {
            min_idle,
            idle_timeout,
            ..
        } = self.settings;
        self.parked.flush();
        let now = Instant::now();
        let min_idle = usize::try_from(min_idle).unwrap_or(usize::MAX);
        let mut open = self.pool.status().size;
        let removed = self.pool.retain(|conn, _| {
            let reason = if conn.expired_at(now) {
                CloseReason::MaxLifetime
            } else if open > min_idle && idle_timeout.is_some_and(|t| conn.idle_for(now) >= t) {
                CloseReason::IdleTimeout
            } else {
                return true;
            };
            conn.retire(reason);
            open = open.saturating_sub(1);
            false
        });
        // Each removed connection counts and closes itself as it drops.
        drop(removed);
    }

    /// Opens connections until `min_idle` are open (or the pool is full or closed).
    pub(crate) async fn top_up(&self) {
        let min_idle = usize::try_from(self.settings.min_idle).unwrap_or(usize::MAX);
        let mut held = Vec::new();
        while self.pool.status().size < min_idle && !self.pool.is_closed() {
            match self.pool.timeout_get(&TRY_ONLY).await {
                Ok(object) => held.push(object),
                Err(e) => {
                    tracing::debug!(error = %e, "could not open connections up to db_min_idle");
                    break;
                }
            }
        }
        for object in held {
            object.mark_returned();
        }
    }

    /// Checks every idle connection once with a round trip, evicting broken ones.
    /// Connections in use are not waited for.
    pub(crate) async fn validate(&self) -> Result<ConnectionValidation, StoreError> {
        self.parked.flush();
        let mut held = Vec::new();
        for _ in 0..self.idle_count() {
            match self.pool.timeout_get(&TRY_ONLY).await {
                Ok(object) => held.push(object),
                Err(_) => break,
            }
        }
        let slots: Vec<_> = held.iter().map(|object| object.slot()).collect();
        let verdicts = tokio::task::spawn_blocking(move || {
            slots.iter().map(|slot| slot.probe()).collect::<Vec<_>>()
        })
        .await
        .map_err(|_| map_error("validating connections", DbError::Lost))?;
        let (mut valid, mut invalid) = (0, 0);
        for (object, answered) in held.into_iter().zip(verdicts) {
            if answered {
                valid += 1;
            } else {
                invalid += 1;
                object.retire(CloseReason::Invalid);
                drop(Object::take(object));
            }
        }
        Ok(ConnectionValidation::new(valid, invalid, self.settings.max))
    }

    /// Takes every idle connection out of the pool and closes the pool: waiting and
    /// later callers get `Closed`; connections still in use close when given back.
    pub(crate) fn shut(&self) -> Vec<SqliteConn> {
        self.parked.flush();
        let idle = self.pool.retain(|conn, _| {
            conn.retire(CloseReason::Shutdown);
            false
        });
        self.pool.close();
        // One given back since the first flush closes as it leaves the closed pool.
        self.parked.flush();
        idle.removed
    }

    /// Closes the connections still in use after the grace period: running statements
    /// are interrupted, open transactions roll back, and their holders get `Closed`.
    /// Waits up to `limit` for closures still running on them to return.
    pub(crate) async fn force_close(&self, limit: Duration) {
        let slots = self.open.shut_all();
        let closing = tokio::task::spawn_blocking(move || {
            slots.iter().for_each(|slot| slot.close_now());
        });
        if tokio::time::timeout(limit, closing).await.is_err() {
            tracing::warn!("a closure still runs on a connection that close forced shut");
        }
    }

    /// Whether the pool has been closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Checkpoints the WAL into the database file (on one of `idle`, or a connection
    /// opened for it) and closes `idle`; blocking, so off the async threads.
    pub(crate) async fn checkpoint_and_close(&self, idle: Vec<SqliteConn>, checkpoint: bool) {
        let slots: Vec<_> = idle.iter().map(SqliteConn::slot).collect();
        let spec = Arc::clone(&self.pool.manager().spec);
        let closing = tokio::task::spawn_blocking(move || {
            if checkpoint {
                let truncate = |conn: &mut Connection| {
                    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                };
                let done = match slots.first() {
                    Some(slot) => matches!(slot.run(truncate), Ok(Ok(()))),
                    None => spec
                        .open()
                        .is_ok_and(|mut conn| truncate(&mut conn).is_ok()),
                };
                if !done {
                    tracing::debug!("the WAL checkpoint at close did not complete");
                }
            }
            slots.iter().for_each(|slot| slot.close_now());
        });
        if closing.await.is_err() {
            tracing::debug!("closing idle connections was cancelled");
        }
        drop(idle);
    }

    /// Connections open right now, in the pool or not.
    pub(crate) fn open_connections(&self) -> usize {
        self.open.count()
    }

    /// Waits up to `limit` until every connection this pool opened has really closed.
    pub(crate) async fn wait_all_closed(&self, limit: Duration) {
        let started = Instant::now();
        while self.open.count() > 0 && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
