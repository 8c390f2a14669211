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

use std::future::Future;
use std::pin::Pin;
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

/// The future of an operation, as `#[async_trait]` declares it.
type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The future of a call refused before it reached the backend.
fn refused<'a, T: Send + 'a>(error: StoreError) -> Pending<'a, T> {
    Box::pin(std::future::ready(Err(error)))
}

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

    // The data operations check their arguments when called and hand back the wrapped
    // store's future as it is: no future (and no allocation) of this layer's own.
    // Their signatures are what `#[async_trait]` makes of `async fn`.

    fn get<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 [u8],
    ) -> Pending<'async_trait, Option<Entry>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        match self.admit().and_then(|()| self.rules.check_key(key)) {
            Ok(()) => self.inner.get(key),
            Err(e) => refused(e),
        }
    }

    fn put<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        key: &'life1 [u8],
        value: &'life2 [u8],
        options: PutOptions,
    ) -> Pending<'async_trait, Version>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        match self
            .admit()
            .and_then(|()| self.rules.check_put(key, value, &options))
        {
            Ok(()) => self.inner.put(key, value, options),
            Err(e) => refused(e),
        }
    }

    fn delete<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 [u8],
        condition: Condition,
    ) -> Pending<'async_trait, bool>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        match self.admit().and_then(|()| self.rules.check_key(key)) {
            Ok(()) => self.inner.delete(key, condition),
            Err(e) => refused(e),
        }
    }

    fn scan<'life0, 'async_trait>(
        &'life0 self,
        mut options: ScanOptions,
    ) -> Pending<'async_trait, Vec<Entry>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let limit = self.admit().and_then(|()| self.rules.scan_limit(&options));
        match limit {
            Ok(limit) => {
                options.limit = Some(limit);
                self.inner.scan(options)
            }
            Err(e) => refused(e),
        }
    }

    fn batch<'life0, 'async_trait>(
        &'life0 self,
        ops: Vec<WriteOp>,
    ) -> Pending<'async_trait, Vec<WriteResult>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        match self.admit().and_then(|()| self.rules.check_batch(&ops)) {
            Ok(()) => self.inner.batch(ops),
            Err(e) => refused(e),
        }
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
