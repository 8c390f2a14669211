//! `DeadpoolStore`: opening a store and the `PooledStore` implementation.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::Connection;
use storage_api::backend::{Lifecycle, PoolInstruments, redact_url, unsupported_scheme};
use storage_api::{
    Capabilities, CloseReport, Condition, ConnectionValidation, Entry, ErrorKind, HealthStatus,
    PoolHealth, PoolMetrics, PooledStore, PutOptions, Result, ScanOptions, StoreOptions,
    Transaction, TxOptions, Version, WriteOp, WriteResult, url_scheme,
};
use tokio::task::AbortHandle;

use crate::connection::{Autocheckpoint, ConnectSpec};
use crate::errors::DbError;
use crate::lease::Lease;
use crate::maintenance;
use crate::ops::{self, Ctx};
use crate::pool::{ConnPool, PoolSettings};
use crate::schema;
use crate::tx::DeadpoolTransaction;
use crate::writer::{self, WriterSettings, Writes};
use sqlite_common::location::{self, SqliteLocation};
use sqlite_common::scratch::ScratchDir;

/// Scans of at most this many rows run on the async thread (see `read`).
const SHORT_SCAN_ROWS: usize = 128;
/// The longest a health check waits for a connection.
const HEALTH_ACQUIRE_LIMIT: Duration = Duration::from_secs(5);
/// The longest `close` waits for given-back connections to finish closing.
const CLOSE_SETTLE_LIMIT: Duration = Duration::from_secs(2);
/// The longest `close` waits, after the grace period, for closures still running on
/// the connections it forces shut.
const FORCED_CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// A [`PooledStore`] over a deadpool pool of rusqlite connections, on a SQLite file or
/// (`sqlite::memory:`) a private temporary database deleted at close.
pub struct DeadpoolStore {
    pool: Arc<ConnPool>,
    ctx: Arc<Ctx>,
    writer: Arc<Writes>,
    lifecycle: Arc<Lifecycle>,
    options: StoreOptions,
    /// The private directory of an in-memory store; `None` for a file store (or
    /// once closed).
    scratch: Mutex<Option<ScratchDir>>,
    persistent: bool,
    maintenance: AbortHandle,
    close_report: tokio::sync::Mutex<Option<CloseReport>>,
    /// The database file in the process's registry of open files (file stores only).
    open_file: Option<sqlite_common::OpenFile>,
}

impl DeadpoolStore {
    /// Opens a store: checks the options, opens the pool, creates or checks the schema
    /// and opens `min_idle` connections.
    ///
    /// A URL of another scheme than SQLite's (the error names the url, password
    /// masked, and the SQLite forms) or a missing database directory is a `Config`
    /// error; a file that is not a SQLite database is `Corrupt`; a table written by a
    /// newer schema is `Unsupported`.
    pub async fn open(options: StoreOptions) -> Result<Self> {
        options.validate()?;
        if url_scheme(&options.url)? != location::SCHEME {
            return Err(unsupported_scheme(
                &options.url,
                "the deadpool backend, which stores data in SQLite only",
                location::FORMS,
            ));
        }
        let (spec, scratch) = match SqliteLocation::parse(&options.url)? {
            SqliteLocation::File(path) => {
                sqlite_common::schema::prepare_database_file(&path)?;
                let spec = ConnectSpec {
                    path,
                    busy_timeout: options.busy_timeout,
                    wal: options.sqlite.enable_wal,
                    synchronous: options.sqlite.synchronous.as_sql(),
                };
                (spec, None)
            }
            SqliteLocation::Memory => {
                let scratch = ScratchDir::create("deadpool")?;
                // Private and temporary: WAL for concurrency, no waiting for the disk.
                let spec = ConnectSpec {
                    path: scratch.db_path(),
                    busy_timeout: options.busy_timeout,
                    wal: true,
                    synchronous: "OFF",
                };
                (spec, Some(scratch))
            }
        };
        let persistent = scratch.is_none();
        let (wal, commits_in_memory) = (spec.wal, spec.commits_in_memory());
        let open_file = persistent.then(|| sqlite_common::OpenFile::register(&spec.path));
        let settings = PoolSettings {
            max: options.max_connections,
            min_idle: options.min_idle,
            idle_timeout: options.idle_timeout,
            max_lifetime: options.max_lifetime,
        };
        let pool = ConnPool::new(spec, settings, Arc::new(PoolInstruments::new()))?;
        let ctx = Arc::new(Ctx::new(&options.table, Arc::clone(&options.clock)));
        let lifecycle = Lifecycle::new();
        let schema_ctx = Arc::clone(&ctx);
        let mut lease = pool
            .acquire(options.acquire_timeout, lifecycle.enter()?)
            .await?;
        lease
            .run(Autocheckpoint::Default, move |conn| {
                schema::prepare(conn, &schema_ctx)
            })
            .await
            .map_err(|e| pool.fail("preparing the schema", e))?;
        drop(lease);
        pool.top_up().await;
        let maintenance = maintenance::spawn(&pool, maintenance::period(&settings));
        let writer = Writes::new(
            Arc::clone(&pool),
            Arc::clone(&ctx),
            Arc::clone(&lifecycle),
            WriterSettings {
                acquire_timeout: options.acquire_timeout,
                busy_timeout: options.busy_timeout,
                wal,
                commits_in_memory,
            },
        );
        Ok(Self {
            pool,
            ctx,
            writer,
            lifecycle,
            options,
            persistent,
            scratch: Mutex::new(scratch),
            maintenance,
            close_report: tokio::sync::Mutex::new(None),
            open_file,
        })
    }

    /// Runs `f` on a pooled connection, on a blocking thread, and returns its result:
    /// raw SQL the key-value contract does not cover.
    ///
    /// The connection is checked out like any operation's (`Timeout` after the acquire
    /// timeout, `Closed` after close). If `f` panics, the call fails with a `Backend`
    /// error and the connection is discarded; if `f` leaves a transaction open, or the
    /// returned future is dropped while `f` still runs, the connection is rolled back
    /// before anyone else gets it.
    pub async fn with_connection<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&mut Connection) -> R + Send + 'static,
        R: Send + 'static,
    {
        let mut lease = self.lease().await?;
        let result = lease
            .run(Autocheckpoint::Default, move |conn| Ok(f(conn)))
            .await;
        result.map_err(|e| self.pool.fail("with_connection", e))
    }

    /// Checks out a connection for an operation.
    async fn lease(&self) -> Result<Lease> {
        self.pool
            .acquire(self.options.acquire_timeout, self.lifecycle.enter()?)
            .await
    }

    /// Runs the short read `f` right here on the async thread on the parked connection,
    /// if there is one, without a lease: the quickest way a read reaches SQLite. `None`
    /// when no connection is parked or the database was locked; the read then takes
    /// a lease ([`read_here`](Self::read_here)).
    fn read_parked<R>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection, &Ctx) -> std::result::Result<R, DbError>,
    ) -> Option<Result<R>> {
        let _work = match self.lifecycle.enter_here() {
            Ok(work) => work,
            Err(closed) => return Some(Err(closed)),
        };
        let ctx = &self.ctx;
        let ran = self
            .pool
            .run_parked(self.options.busy_timeout, |conn| f(conn, ctx))?;
        self.unless_busy(op, ran)
    }

    /// Runs the short read `f` on `lease` right here on the async thread, where it
    /// never waits for a lock: `None` when the database was locked, and the read should
    /// go to a blocking thread with the full `busy_timeout` ([`read_there`](Self::read_there)).
    fn read_here<R>(
        &self,
        op: &'static str,
        lease: &mut Lease,
        f: impl FnOnce(&Connection, &Ctx) -> std::result::Result<R, DbError>,
    ) -> Option<Result<R>> {
        let ctx = &self.ctx;
        let ran = lease.run_here(self.options.busy_timeout, Autocheckpoint::AsIs, |conn| {
            f(conn, ctx)
        });
        self.unless_busy(op, ran)
    }

    /// A read's result, or `None` when it found the database locked.
    fn unless_busy<R>(&self, op: &str, ran: std::result::Result<R, DbError>) -> Option<Result<R>> {
        match ran {
            Err(e) if e.is_busy() => None,
            done => Some(done.map_err(|e| self.pool.fail(op, e))),
        }
    }

    /// Runs the read `f` on `lease` on a blocking thread.
    async fn read_there<R, F>(&self, op: &'static str, mut lease: Lease, f: F) -> Result<R>
    where
        F: FnOnce(&Connection, &Ctx) -> std::result::Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let ctx = Arc::clone(&self.ctx);
        let result = lease
            .run(Autocheckpoint::AsIs, move |conn| f(conn, &ctx))
            .await;
        result.map_err(|e| self.pool.fail(op, e))
    }

    async fn shut_down(&self) -> CloseReport {
        self.maintenance.abort();
        let open_before = self.pool.open_connections();
        let idle = self.pool.shut();
        let drain = self.lifecycle.close(self.options.close_grace).await;
        if drain.remaining > 0 {
            self.pool.force_close(FORCED_CLOSE_LIMIT).await;
        }
        // A private database is deleted below; only a file needs its WAL folded in.
        self.pool.checkpoint_and_close(idle, self.persistent).await;
        if drain.remaining == 0 {
            self.pool.wait_all_closed(CLOSE_SETTLE_LIMIT).await;
        }
        let scratch = self
            .scratch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(scratch);
        let closed = open_before.saturating_sub(self.pool.open_connections());
        CloseReport::new(
            false,
            drain.in_flight,
            drain.remaining,
            drain.waited,
            u32::try_from(closed).unwrap_or(u32::MAX),
        )
    }
}

#[async_trait]
impl PooledStore for DeadpoolStore {
    fn backend_name(&self) -> &'static str {
        "deadpool"
    }

    fn engine_name(&self) -> &'static str {
        "sqlite"
    }

    fn capabilities(&self) -> Capabilities {
        let limits = self.options.limits;
        let mut capabilities = Capabilities::full(limits.max_value_bytes, limits.max_scan_limit);
        capabilities.persistent = self.persistent;
        capabilities
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        let get = |conn: &Connection, ctx: &Ctx, key: &[u8]| ops::get(conn, ctx, key, ctx.now());
        if let Some(done) = self.read_parked("get", |conn, ctx| get(conn, ctx, key)) {
            return done;
        }
        let mut lease = self.lease().await?;
        if let Some(done) = self.read_here("get", &mut lease, |conn, ctx| get(conn, ctx, key)) {
            return done;
        }
        let key = key.to_vec();
        self.read_there("get", lease, move |conn, ctx| get(conn, ctx, &key))
            .await
    }

    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        writer::put(&self.writer, key, value, options).await
    }

    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool> {
        writer::delete(&self.writer, key, condition).await
    }

    async fn scan(&self, options: ScanOptions) -> Result<Vec<Entry>> {
        let limit = self.options.limits.scan_limit(&options);
        let scan = move |conn: &Connection, ctx: &Ctx, options: &ScanOptions| {
            ops::scan(conn, ctx, options, limit, ctx.now())
        };
        let short = limit <= SHORT_SCAN_ROWS;
        if short && let Some(done) = self.read_parked("scan", |conn, ctx| scan(conn, ctx, &options))
        {
            return done;
        }
        let mut lease = self.lease().await?;
        if short
            && let Some(done) =
                self.read_here("scan", &mut lease, |conn, ctx| scan(conn, ctx, &options))
        {
            return done;
        }
        self.read_there("scan", lease, move |conn, ctx| scan(conn, ctx, &options))
            .await
    }

    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        writer::batch(&self.writer, ops).await
    }

    async fn purge_expired(&self) -> Result<u64> {
        writer::purge_expired(&self.writer).await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        let mut lease = self.lease().await?;
        // Read-write transactions take the write lock up front: a deferred one that
        // reads then writes can fail with SQLITE_BUSY_SNAPSHOT, which no wait resolves.
        // The writer may have left the automatic checkpoint off: a transaction that
        // writes commits with SQLite's default, as it does not count towards the
        // writer's checkpoint schedule.
        let (begin, autocheckpoint) = if options.read_only {
            ("BEGIN DEFERRED", Autocheckpoint::AsIs)
        } else {
            ("BEGIN IMMEDIATE", Autocheckpoint::Default)
        };
        lease
            .run(autocheckpoint, move |conn| {
                conn.execute_batch(begin).map_err(DbError::from)
            })
            .await
            .map_err(|e| self.pool.fail("begin", e))?;
        Ok(Box::new(DeadpoolTransaction::new(
            lease,
            Arc::clone(&self.pool),
            Arc::clone(&self.ctx),
            self.options.limits,
            self.options.leak_detection_threshold,
        )))
    }

    async fn health_check(&self) -> PoolHealth {
        let Ok(work) = self.lifecycle.enter() else {
            return PoolHealth::closed();
        };
        let bound = self.options.acquire_timeout.min(HEALTH_ACQUIRE_LIMIT);
        let started = Instant::now();
        let mut lease = match self.pool.acquire(bound, work).await {
            Ok(lease) => lease,
            Err(e) => {
                let status = match e.kind() {
                    ErrorKind::Closed => return PoolHealth::closed(),
                    ErrorKind::Timeout => HealthStatus::Saturated,
                    _ => HealthStatus::Unreachable,
                };
                return PoolHealth::new(status, started.elapsed(), Duration::ZERO, e.to_string());
            }
        };
        let acquire_time = started.elapsed();
        let queried = Instant::now();
        // A round trip that touches no table and takes no lock: on this thread.
        let answer = lease.run_here(self.options.busy_timeout, Autocheckpoint::AsIs, |conn| {
            conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .map_err(DbError::from)
        });
        let query_time = queried.elapsed();
        match answer {
            Ok(1) => PoolHealth::new(
                HealthStatus::Healthy,
                acquire_time,
                query_time,
                "SELECT 1 answered",
            )
            .with_server_version(rusqlite::version()),
            Ok(_) => PoolHealth::new(
                HealthStatus::Unreachable,
                acquire_time,
                query_time,
                "SELECT 1 returned a wrong answer",
            ),
            Err(e) => PoolHealth::new(
                HealthStatus::Unreachable,
                acquire_time,
                query_time,
                self.pool.fail("health_check", e).to_string(),
            ),
        }
    }

    async fn validate_connections(&self) -> Result<ConnectionValidation> {
        let _work = self.lifecycle.enter()?;
        self.pool.validate().await
    }

    /// The pool's gauges and counters; `pending` counts the writes queued for the
    /// writer too, which wait for its connection as callers of the pool do.
    fn pool_metrics(&self) -> PoolMetrics {
        let mut metrics = self.pool.metrics();
        let queued = u32::try_from(self.writer.queued()).unwrap_or(u32::MAX);
        metrics.pending = metrics.pending.saturating_add(queued);
        metrics
    }

    async fn close(&self) -> CloseReport {
        let mut report = self.close_report.lock().await;
        if report.is_some() {
            let drain = self.lifecycle.close(self.options.close_grace).await;
            return CloseReport::new(true, drain.in_flight, drain.remaining, drain.waited, 0);
        }
        let first = self.shut_down().await;
        if let Some(open_file) = &self.open_file {
            open_file.release();
        }
        *report = Some(first);
        first
    }
}

impl Drop for DeadpoolStore {
    fn drop(&mut self) {
        self.maintenance.abort();
    }
}

impl fmt::Debug for DeadpoolStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadpoolStore")
            .field("url", &redact_url(&self.options.url))
            .field("table", &self.options.table)
            .field("max_connections", &self.options.max_connections)
            .field("closed", &self.lifecycle.is_closed())
            .finish_non_exhaustive()
    }
}
