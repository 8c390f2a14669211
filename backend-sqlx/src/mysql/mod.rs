//! The MySQL and MariaDB backend: a [`PooledStore`] over a `sqlx::MySqlPool`.
//!
//! Each file is one concern: [`connect_options`] turns the URL into connection
//! settings, [`connect`] checks the [`server`] and opens the pool after which
//! [`schema`] sets up the tables (names from [`Names`], SQL from [`statements`]);
//! [`shared`] is the state operations share and their acquire path, [`lease`] a
//! connection on loan that knows when it must not go back to the pool; [`ops`] holds
//! the SQL of each operation, [`work`] wraps them as retryable units that [`retry`]
//! runs; [`tx`] the transactions, [`health`] and [`close`] the pool-level operations;
//! [`errors`] maps MySQL's error numbers.
//!
//! Every session runs with strict SQL mode and `SERIALIZABLE` isolation, so every
//! transaction is serializable (InnoDB's locking form: reads in a transaction take
//! shared locks): applications' (read-only ones `READ ONLY`), and the one each single
//! write or batch runs in. Single reads are one autocommit statement, a consistent
//! snapshot.

mod close;
mod connect;
mod connect_options;
mod errors;
mod health;
mod lease;
mod ops;
mod retry;
mod schema;
mod server;
mod shared;
mod statements;
mod tx;
mod work;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use storage_api::backend::{PoolInstruments, redact_url};
use storage_api::{
    Capabilities, CloseReport, Condition, ConnectionValidation, Entry, PoolHealth, PoolMetrics,
    PooledStore, PutOptions, Result, ScanOptions, StoreOptions, Transaction, TxOptions, Version,
    WriteOp, WriteResult,
};

use crate::common::accounting::ConnectionAccounting;
use crate::common::names::Names;
pub(crate) use errors::{describe_server_error, is_transient_connect_error};
use shared::{Parts, Shared};
use statements::Statements;
use tx::MysqlTx;

/// A store over a pool of MySQL or MariaDB connections.
#[derive(Clone)]
pub(crate) struct MysqlStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlStore")
            .field("url", &redact_url(&self.shared.options.url))
            .field("table", &self.shared.options.table)
            .field("server_version", &self.shared.server_version)
            .field("closed", &self.shared.gate.is_closed())
            .finish_non_exhaustive()
    }
}

impl MysqlStore {
    /// Connects to the server `options.url` names, creating the schema if needed, and
    /// fills the pool up to `min_idle`.
    pub(crate) async fn open(options: StoreOptions) -> Result<Self> {
        let target = connect_options::target(&options)?;
        let names = Names::new(&options.table);
        let instruments = Arc::new(PoolInstruments::new());
        let accounting = ConnectionAccounting::new(Arc::clone(&instruments));
        let opened = connect::open(&options, &target, &names, &accounting, &instruments).await?;
        let lock_bound = opened
            .server
            .is_mariadb()
            .then(|| connect_options::statement_time(options.busy_timeout));
        tracing::debug!(
            backend = "sqlx",
            url = %redact_url(&options.url),
            server_version = %opened.server.version,
            schema_version = opened.schema_version,
            "opened MySQL store"
        );
        Ok(Self {
            shared: Shared::new(Parts {
                pool: opened.pool,
                sql: Statements::new(&names, lock_bound.as_deref()),
                options,
                schema_version: opened.schema_version,
                server_version: opened.server.version,
                instruments,
                accounting,
            }),
        })
    }

    /// The schema version of the store's table, as found or created at open.
    pub(crate) fn schema_version(&self) -> i64 {
        self.shared.schema_version
    }
}

#[async_trait]
impl PooledStore for MysqlStore {
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
        let _work = s.enter()?;
        s.run(&work::Get { key }).await
    }

    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        let s = &self.shared;
        let _work = s.enter()?;
        s.run(&work::Put {
            key,
            value,
            options,
        })
        .await
    }

    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool> {
        let s = &self.shared;
        let _work = s.enter()?;
        s.run(&work::Delete { key, condition }).await
    }

    async fn scan(&self, options: ScanOptions) -> Result<Vec<Entry>> {
        let s = &self.shared;
        let limit = s.options.limits.scan_limit(&options);
        let _work = s.enter()?;
        s.run(&work::Scan {
            options: &options,
            limit,
        })
        .await
    }

    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        let s = &self.shared;
        let _work = s.enter()?;
        s.run(&work::Batch { ops: &ops }).await
    }

    async fn purge_expired(&self) -> Result<u64> {
        let s = &self.shared;
        let _work = s.enter()?;
        s.run(&work::Purge).await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(MysqlTx::begin(&self.shared, options).await?))
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
