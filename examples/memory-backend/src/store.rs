//! `MemoryStore`: the [`PooledStore`] implementation. Every operation checks its input,
//! leases a connection from the pool, takes the write lock for writes, and applies the
//! pure operations of [`Data`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use storage_api::{
    Capabilities, Clock, CloseReport, Condition, ConnectionValidation, Entry, ErrorKind,
    HealthStatus, Limits, PoolHealth, PoolMetrics, PooledStore, PutOptions, Result, ScanOptions,
    StoreError, StoreOptions, Transaction, TxOptions, Version, WriteOp, WriteResult, async_trait,
};
use tokio::sync::OwnedMutexGuard;

use crate::data::Data;
use crate::pool::Pool;
use crate::settings::PoolSettings;
use crate::transaction::MemoryTransaction;

/// What the store, its leases and its transactions share.
#[derive(Debug)]
pub(crate) struct Shared {
    data: Mutex<Data>,
    /// One writer at a time, like SQLite's write lock: plain writes hold it for one
    /// operation, read-write transactions from `begin` to commit or rollback.
    writer: Arc<tokio::sync::Mutex<()>>,
    clock: Arc<dyn Clock>,
    pub(crate) limits: Limits,
    pub(crate) pool: Arc<Pool>,
}

impl Shared {
    /// The committed data.
    pub(crate) fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current time, from the configured clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Takes the write lock, waiting up to the busy timeout.
    pub(crate) async fn write_lock(&self) -> Result<OwnedMutexGuard<()>> {
        let wait = Arc::clone(&self.writer).lock_owned();
        match tokio::time::timeout(self.pool.busy_timeout(), wait).await {
            Ok(guard) => Ok(guard),
            Err(_) => {
                self.pool.record_busy();
                Err(StoreError::new(
                    ErrorKind::Busy,
                    "the write lock stayed taken past db_busy_timeout_ms",
                ))
            }
        }
    }
}

/// An in-memory store with a real connection pool in front of it.
///
/// Cloning is cheap and shares the store. Data lives until the last clone drops;
/// it is not persistent.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl MemoryStore {
    /// Opens an empty store. `options.url` must start with `memory:`; the pool size,
    /// timeouts, grace period, limits and clock are taken from `options`.
    pub fn open(options: StoreOptions) -> Result<Self> {
        let settings = PoolSettings::from_options(&options)?;
        let shared = Shared {
            data: Mutex::new(Data::default()),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            clock: options.clock,
            limits: options.limits,
            pool: Pool::new(settings),
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// Marks every idle connection broken, as a server that drops its sessions would,
    /// and returns how many. For fault-injection tests: the next
    /// `validate_connections` must find and evict them.
    pub fn break_idle_connections(&self) -> u32 {
        self.shared.pool.break_idle()
    }

    async fn write<T>(&self, apply: impl FnOnce(&mut Data, SystemTime) -> Result<T>) -> Result<T> {
        let lease = self.shared.pool.acquire().await?;
        let _lock = self.shared.write_lock().await?;
        lease.check_usable()?;
        let now = self.shared.now();
        apply(&mut self.shared.data(), now)
    }

    async fn read<T>(&self, apply: impl FnOnce(&Data, SystemTime) -> T) -> Result<T> {
        let lease = self.shared.pool.acquire().await?;
        lease.check_usable()?;
        Ok(apply(&self.shared.data(), self.shared.now()))
    }
}

#[async_trait]
impl PooledStore for MemoryStore {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        let limits = self.shared.limits;
        Capabilities::full(limits.max_value_bytes, limits.max_scan_limit)
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        self.read(|data, now| data.get(key, now)).await
    }

    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        self.write(|data, now| data.put(key, value, options, now))
            .await
    }

    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool> {
        self.write(|data, now| data.delete(key, condition, now))
            .await
    }

    async fn scan(&self, options: ScanOptions) -> Result<Vec<Entry>> {
        let limit = self.shared.limits.scan_limit(&options);
        self.read(|data, now| data.scan(&options, limit, now)).await
    }

    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        self.write(|data, now| data.batch(&ops, now)).await
    }

    async fn purge_expired(&self) -> Result<u64> {
        self.write(|data, now| Ok(data.purge(now))).await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        let lease = self.shared.pool.acquire().await?;
        let writer = if options.read_only {
            None
        } else {
            Some(self.shared.write_lock().await?)
        };
        lease.check_usable()?;
        let view = self.shared.data().clone();
        Ok(Box::new(MemoryTransaction::new(
            Arc::clone(&self.shared),
            lease,
            writer,
            view,
        )))
    }

    async fn health_check(&self) -> PoolHealth {
        if self.shared.pool.is_closed() {
            return PoolHealth::closed();
        }
        let started = Instant::now();
        let lease = match self.shared.pool.acquire().await {
            Ok(lease) => lease,
            Err(e) if e.kind() == ErrorKind::Closed => return PoolHealth::closed(),
            Err(_) => {
                return PoolHealth::new(
                    HealthStatus::Saturated,
                    started.elapsed(),
                    Duration::ZERO,
                    "no connection became free within the acquire timeout",
                );
            }
        };
        let acquire_time = started.elapsed();
        let round_trip = Instant::now();
        let rows = lease.check_usable().map(|()| self.shared.data().len());
        let query_time = round_trip.elapsed();
        match rows {
            Ok(rows) => PoolHealth::new(
                HealthStatus::Healthy,
                acquire_time,
                query_time,
                format!("{rows} rows stored"),
            ),
            Err(_) => PoolHealth::closed(),
        }
    }

    async fn validate_connections(&self) -> Result<ConnectionValidation> {
        let _work = self.shared.pool.enter()?;
        Ok(self.shared.pool.validate())
    }

    fn pool_metrics(&self) -> PoolMetrics {
        self.shared.pool.metrics()
    }

    async fn close(&self) -> CloseReport {
        let (drain, closed) = self.shared.pool.close().await;
        CloseReport::new(
            !drain.first,
            drain.in_flight,
            drain.remaining,
            drain.waited,
            closed,
        )
    }
}
