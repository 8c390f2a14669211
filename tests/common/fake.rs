//! A pooled in-memory store for builds without a database backend: a semaphore of
//! `pool_size` permits stands for the connections, so a held transaction really
//! saturates the pool, and the shared `PoolInstruments` and `Lifecycle` give it the
//! same metrics and close semantics as the real backends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pooledstore::{
    Capabilities, CloseReport, Condition, ConnectionValidation, Entry, ErrorKind, HealthStatus,
    InFlight, Lifecycle, PoolGauges, PoolHealth, PoolInstruments, PoolMetrics, PooledStore,
    PutOptions, Result, ScanOptions, StoreError, Transaction, TxOptions, Version, WriteOp,
    WriteResult, async_trait,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Data = BTreeMap<Vec<u8>, (Vec<u8>, Version)>;

#[derive(Debug)]
pub struct FakePool {
    size: u32,
    acquire_timeout: Duration,
    permits: Arc<Semaphore>,
    instruments: PoolInstruments,
    lifecycle: Arc<Lifecycle>,
    data: Arc<Mutex<Data>>,
    versions: Arc<AtomicU64>,
}

impl FakePool {
    pub fn new(size: u32, acquire_timeout: Duration) -> Self {
        Self {
            size,
            acquire_timeout,
            permits: Arc::new(Semaphore::new(size as usize)),
            instruments: PoolInstruments::new(),
            lifecycle: Lifecycle::new(),
            data: Arc::default(),
            versions: Arc::default(),
        }
    }

    async fn acquire(&self) -> Result<(InFlight, OwnedSemaphorePermit)> {
        let work = self.lifecycle.enter()?;
        let started = Instant::now();
        let waiting = self.instruments.waiting();
        let permit = tokio::time::timeout(
            self.acquire_timeout,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await;
        drop(waiting);
        match permit {
            Ok(Ok(permit)) => {
                self.instruments.record_acquired(started.elapsed());
                Ok((work, permit))
            }
            Ok(Err(_)) => Err(StoreError::closed()),
            Err(_) => {
                self.instruments.record_timeout(started.elapsed());
                Err(StoreError::new(ErrorKind::Timeout, "no connection in time"))
            }
        }
    }
}

fn lock(data: &Mutex<Data>) -> std::sync::MutexGuard<'_, Data> {
    data.lock().unwrap_or_else(|p| p.into_inner())
}

fn put_into(
    data: &Mutex<Data>,
    versions: &AtomicU64,
    key: &[u8],
    value: &[u8],
    condition: Condition,
) -> Result<Version> {
    if key.is_empty() {
        return Err(StoreError::invalid_input("empty key"));
    }
    let mut data = lock(data);
    if !condition.holds(data.get(key).map(|(_, v)| *v)) {
        return Err(StoreError::new(
            ErrorKind::ConditionFailed,
            "condition failed",
        ));
    }
    let raw = versions.fetch_add(1, SeqCst) + 1;
    let version = Version::new(raw).ok_or_else(|| StoreError::invalid_input("version"))?;
    data.insert(key.to_vec(), (value.to_vec(), version));
    Ok(version)
}

fn delete_from(data: &Mutex<Data>, key: &[u8], condition: Condition) -> Result<bool> {
    let mut data = lock(data);
    if !condition.holds(data.get(key).map(|(_, v)| *v)) {
        return Err(StoreError::new(
            ErrorKind::ConditionFailed,
            "condition failed",
        ));
    }
    Ok(data.remove(key).is_some())
}

fn entry(key: &[u8], (value, version): &(Vec<u8>, Version)) -> Entry {
    Entry {
        key: key.to_vec(),
        value: value.clone(),
        version: *version,
        expires_at: None,
    }
}

#[async_trait]
impl PooledStore for FakePool {
    fn backend_name(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::full(1 << 20, 10_000)
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        let _conn = self.acquire().await?;
        Ok(lock(&self.data).get(key).map(|e| entry(key, e)))
    }

    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        let _conn = self.acquire().await?;
        put_into(&self.data, &self.versions, key, value, options.condition)
    }

    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool> {
        let _conn = self.acquire().await?;
        delete_from(&self.data, key, condition)
    }

    async fn scan(&self, options: ScanOptions) -> Result<Vec<Entry>> {
        let _conn = self.acquire().await?;
        let data = lock(&self.data);
        let limit = options.limit.unwrap_or(10_000);
        Ok(data
            .iter()
            .filter(|(k, _)| options.selects(k))
            .take(limit)
            .map(|(k, e)| entry(k, e))
            .collect())
    }

    async fn batch(&self, _ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        Err(StoreError::unsupported("batch"))
    }

    async fn purge_expired(&self) -> Result<u64> {
        Ok(0)
    }

    async fn begin(&self, _options: TxOptions) -> Result<Box<dyn Transaction>> {
        let (work, permit) = self.acquire().await?;
        Ok(Box::new(FakeTx {
            _work: work,
            _permit: permit,
            data: Arc::clone(&self.data),
            versions: Arc::clone(&self.versions),
        }))
    }

    async fn health_check(&self) -> PoolHealth {
        if self.lifecycle.is_closed() {
            return PoolHealth::closed();
        }
        let started = Instant::now();
        match self.acquire().await {
            Ok(_conn) => PoolHealth::new(
                HealthStatus::Healthy,
                started.elapsed(),
                Duration::from_micros(1),
                "",
            ),
            Err(e) if e.kind() == ErrorKind::Closed => PoolHealth::closed(),
            Err(_) => PoolHealth::new(
                HealthStatus::Saturated,
                started.elapsed(),
                Duration::ZERO,
                "no connection in time",
            ),
        }
    }

    async fn validate_connections(&self) -> Result<ConnectionValidation> {
        let _work = self.lifecycle.enter()?;
        let idle = self.permits.available_permits() as u32;
        Ok(ConnectionValidation::new(idle, 0, self.size))
    }

    fn pool_metrics(&self) -> PoolMetrics {
        self.instruments.snapshot(PoolGauges {
            max: self.size,
            min_idle: 0,
            size: self.size,
            idle: self.permits.available_permits() as u32,
        })
    }

    async fn close(&self) -> CloseReport {
        let drain = self.lifecycle.close(Duration::from_secs(5)).await;
        self.permits.close();
        CloseReport::new(
            !drain.first,
            drain.in_flight,
            drain.remaining,
            drain.waited,
            if drain.first { self.size } else { 0 },
        )
    }
}

/// Holds a permit (a "connection") until dropped; writes apply at once.
#[derive(Debug)]
struct FakeTx {
    _work: InFlight,
    _permit: OwnedSemaphorePermit,
    data: Arc<Mutex<Data>>,
    versions: Arc<AtomicU64>,
}

#[async_trait]
impl Transaction for FakeTx {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        Ok(lock(&self.data).get(key).map(|e| entry(key, e)))
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        put_into(&self.data, &self.versions, key, value, options.condition)
    }

    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool> {
        delete_from(&self.data, key, condition)
    }

    async fn scan(&mut self, _options: ScanOptions) -> Result<Vec<Entry>> {
        Err(StoreError::unsupported("scan in a transaction"))
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
