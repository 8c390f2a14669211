//! [`EngineStore`]: the `PooledStore` of a server engine, over its [`Shared`] state.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use group_commit::writes;
use storage_api::backend::redact_url;
use storage_api::{
    Capabilities, CloseReport, Condition, ConnectionValidation, Entry, PoolHealth, PoolMetrics,
    PooledStore, PutOptions, Result, ScanOptions, Transaction, TxOptions, Version, WriteOp,
    WriteResult,
};

use super::Engine;
use super::shared::Shared;
use super::tx::EngineTx;
use super::work;
use super::writer::GroupCommit;

/// A store over a pool of connections to engine `E`'s server. Clones share the pool.
pub(crate) struct EngineStore<E: Engine> {
    pub(crate) shared: Arc<Shared<E>>,
}

impl<E: Engine> Clone for EngineStore<E> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<E: Engine> fmt::Debug for EngineStore<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct(E::STORE);
        out.field("url", &redact_url(&self.shared.options.url))
            .field("table", &self.shared.options.table);
        self.shared.engine.describe(&mut out);
        out.field("closed", &self.shared.gate.is_closed())
            .finish_non_exhaustive()
    }
}

impl<E: Engine> EngineStore<E> {
    /// The schema version of the store's table, as found or created at open.
    pub(crate) fn schema_version(&self) -> i64 {
        self.shared.schema_version
    }
}

#[async_trait]
impl<E: Engine> PooledStore for EngineStore<E> {
    fn backend_name(&self) -> &'static str {
        "sqlx"
    }

    fn capabilities(&self) -> Capabilities {
        let limits = self.shared.options.limits;
        let mut capabilities = Capabilities::full(limits.max_value_bytes, limits.max_scan_limit);
        capabilities.persistent = true;
        capabilities
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        let s = &self.shared;
        s.admitted(s.run(&work::Get { key })).await
    }

    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        let s = &self.shared;
        s.admitted(writes::put::<GroupCommit<E>>(
            s,
            s.now(),
            key,
            value,
            options,
        ))
        .await
    }

    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool> {
        let s = &self.shared;
        s.admitted(writes::delete::<GroupCommit<E>>(s, s.now(), key, condition))
            .await
    }

    async fn scan(&self, options: ScanOptions) -> Result<Vec<Entry>> {
        let s = &self.shared;
        let limit = s.options.limits.scan_limit(&options);
        let options = &options;
        s.admitted(s.run(&work::Scan { options, limit })).await
    }

    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        let s = &self.shared;
        s.admitted(writes::batch::<GroupCommit<E>>(s, s.now(), ops))
            .await
    }

    async fn purge_expired(&self) -> Result<u64> {
        let s = &self.shared;
        let _work = s.enter()?;
        s.run(&work::Purge).await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(EngineTx::begin(&self.shared, options).await?))
    }

    async fn health_check(&self) -> PoolHealth {
        self.shared.health_check().await
    }

    async fn validate_connections(&self) -> Result<ConnectionValidation> {
        self.shared.validate_connections().await
    }

    fn pool_metrics(&self) -> PoolMetrics {
        self.shared.pool_metrics()
    }

    async fn close(&self) -> CloseReport {
        self.shared.close().await
    }
}
