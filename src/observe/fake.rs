//! A scripted in-memory store for the unit tests of this module.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use storage_api::{
    Capabilities, CloseReport, Condition, ConnectionValidation, Entry, ErrorKind, PoolHealth,
    PoolMetrics, PooledStore, PutOptions, Result, ScanOptions, StoreError, Transaction, TxOptions,
    Version, WriteOp, WriteResult, async_trait,
};

/// Answers from a script: puts fail with `ConditionFailed` when the key is `b"cas"`,
/// `get` of `b"slow"` never finishes, everything else succeeds.
#[derive(Debug, Default)]
pub(crate) struct Scripted {
    /// Set by `close`; puts fail with `Closed` once set.
    pub(crate) closed: AtomicBool,
    /// What `pool_metrics` reports.
    pub(crate) metrics: Mutex<PoolMetrics>,
}

#[derive(Debug)]
struct ScriptedTx;

fn v1() -> Version {
    Version::new(1).expect("non-zero")
}

#[async_trait]
impl PooledStore for Scripted {
    fn backend_name(&self) -> &'static str {
        "scripted"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::full(16, 16)
    }
    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        if key == b"slow" {
            std::future::pending::<()>().await;
        }
        Ok(None)
    }
    async fn put(&self, key: &[u8], _: &[u8], _: PutOptions) -> Result<Version> {
        if key == b"cas" {
            return Err(StoreError::new(ErrorKind::ConditionFailed, "version"));
        }
        if self.closed.load(Relaxed) {
            return Err(StoreError::closed());
        }
        Ok(v1())
    }
    async fn delete(&self, _: &[u8], _: Condition) -> Result<bool> {
        Ok(true)
    }
    async fn scan(&self, _: ScanOptions) -> Result<Vec<Entry>> {
        Ok(Vec::new())
    }
    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        Ok(ops.iter().map(|_| WriteResult::Put(v1())).collect())
    }
    async fn purge_expired(&self) -> Result<u64> {
        Err(StoreError::unsupported("purge_expired"))
    }
    async fn begin(&self, _: TxOptions) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(ScriptedTx))
    }
    async fn health_check(&self) -> PoolHealth {
        PoolHealth::closed()
    }
    async fn validate_connections(&self) -> Result<ConnectionValidation> {
        Ok(ConnectionValidation::new(1, 0, 1))
    }
    fn pool_metrics(&self) -> PoolMetrics {
        self.metrics.lock().unwrap().clone()
    }
    async fn close(&self) -> CloseReport {
        self.closed.store(true, Relaxed);
        CloseReport::default()
    }
}

#[async_trait]
impl Transaction for ScriptedTx {
    async fn get(&mut self, _: &[u8]) -> Result<Option<Entry>> {
        Ok(None)
    }
    async fn put(&mut self, _: &[u8], _: &[u8], _: PutOptions) -> Result<Version> {
        Ok(v1())
    }
    async fn delete(&mut self, _: &[u8], _: Condition) -> Result<bool> {
        Err(StoreError::new(ErrorKind::Busy, "locked"))
    }
    async fn scan(&mut self, _: ScanOptions) -> Result<Vec<Entry>> {
        Ok(Vec::new())
    }
    async fn commit(self: Box<Self>) -> Result<()> {
        Ok(())
    }
    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
