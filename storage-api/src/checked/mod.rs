//! The checking layer: a [`PooledStore`] around any other that applies the contract's
//! admission and argument rules before a call reaches the backend, so every backend
//! refuses bad calls with the same kind, wording and order, and implements storage
//! only.
//!
//! Order, for every call: a store whose `close` has begun refuses with `Closed`; then
//! a capability the store lacks is `Unsupported`; then the arguments are checked
//! ([`Rules`]); only then does the backend run. Scans reach the backend with their
//! `limit` filled in (`max_scan_limit` when the caller gave none).
//!
//! `pooledstore::open` and the conformance kit apply it; a backend opened by hand
//! should be wrapped with [`Checked::wrap`] before use.
//!
//! ```
//! # use std::sync::Arc;
//! # use storage_api::{PooledStore, ErrorKind};
//! # async fn demo(store: Arc<dyn PooledStore>) {
//! let store = storage_api::backend::Checked::wrap(store);
//! let empty_key = store.get(b"").await.unwrap_err();
//! assert_eq!(empty_key.kind(), ErrorKind::InvalidInput);
//! # }
//! ```

mod rules;
mod transaction;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use async_trait::async_trait;

pub use rules::Rules;
use transaction::CheckedTransaction;

use crate::error::{Result, StoreError};
use crate::reports::{CloseReport, ConnectionValidation, PoolHealth, PoolMetrics};
use crate::store::{PooledStore, Transaction};
use crate::types::{
    Capabilities, Condition, Entry, PutOptions, ScanOptions, TxOptions, Version, WriteOp,
    WriteResult,
};

/// A store whose calls pass the contract's checks before reaching the wrapped backend.
#[derive(Debug)]
pub struct Checked {
    inner: Arc<dyn PooledStore>,
    rules: Arc<Rules>,
    closed: AtomicBool,
}

impl Checked {
    /// Wraps `inner`, reading its capabilities once.
    pub fn new(inner: Arc<dyn PooledStore>) -> Self {
        let rules = Arc::new(Rules::new(inner.capabilities()));
        Self {
            inner,
            rules,
            closed: AtomicBool::new(false),
        }
    }

    /// Wraps `inner` and shares the result, ready to hand to applications.
    pub fn wrap(inner: Arc<dyn PooledStore>) -> Arc<dyn PooledStore> {
        Arc::new(Self::new(inner))
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &Arc<dyn PooledStore> {
        &self.inner
    }

    /// `Closed` once `close` has begun through this layer.
    fn admit(&self) -> Result<()> {
        if self.closed.load(SeqCst) {
            Err(StoreError::closed())
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl PooledStore for Checked {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    fn engine_name(&self) -> &'static str {
        self.inner.engine_name()
    }

    fn capabilities(&self) -> Capabilities {
        self.rules.capabilities().clone()
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        self.admit()?;
        self.rules.check_key(key)?;
        self.inner.get(key).await
    }

    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        self.admit()?;
        self.rules.check_put(key, value, &options)?;
        self.inner.put(key, value, options).await
    }

    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool> {
        self.admit()?;
        self.rules.check_key(key)?;
        self.inner.delete(key, condition).await
    }

    async fn scan(&self, mut options: ScanOptions) -> Result<Vec<Entry>> {
        self.admit()?;
        options.limit = Some(self.rules.scan_limit(&options)?);
        self.inner.scan(options).await
    }

    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        self.admit()?;
        self.rules.check_batch(&ops)?;
        self.inner.batch(ops).await
    }

    async fn purge_expired(&self) -> Result<u64> {
        self.admit()?;
        self.rules.check_purge()?;
        self.inner.purge_expired().await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        self.admit()?;
        self.rules.check_begin()?;
        let inner = self.inner.begin(options).await?;
        Ok(Box::new(CheckedTransaction::new(
            inner,
            Arc::clone(&self.rules),
            options.read_only,
        )))
    }

    async fn health_check(&self) -> PoolHealth {
        self.inner.health_check().await
    }

    async fn validate_connections(&self) -> Result<ConnectionValidation> {
        self.admit()?;
        self.inner.validate_connections().await
    }

    fn pool_metrics(&self) -> PoolMetrics {
        self.inner.pool_metrics()
    }

    async fn close(&self) -> CloseReport {
        self.closed.store(true, SeqCst);
        self.inner.close().await
    }
}
