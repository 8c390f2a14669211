//! The SQLite backend: a [`PooledStore`] over a `sqlx::SqlitePool`.
//!
//! Each file is one concern: [`connect`] opens the database and the pool after
//! [`schema`] has set up the tables; [`shared`] is the state operations share and
//! their acquire path; [`ops`] holds the SQL of each operation; [`reader`] coalesces
//! concurrent point reads and [`writer`] is the single writer with group commit that
//! puts, deletes, batches and purges go through ([`group`] applies one group of
//! writes), both served from a [`sqlite_common::queue`], the writer with the failure
//! rule and WAL checkpoint schedule of [`sqlite_common::writer`]; [`tx`] holds the
//! transactions, [`health`] and [`close`] the pool-level operations; [`errors`] is the
//! one error mapping, and [`sqlite_common::scratch`] the private database behind
//! `sqlite::memory:`. Connection accounting, admission and the acquire path, the
//! pool's close, health-check outcomes, idle validation, metrics, row conversion, leak
//! detection and the connection stash live in [`crate::common`], shared with the
//! server engines.

mod close;
mod connect;
mod errors;
mod group;
mod health;
mod ops;
mod packed;
mod reader;
mod schema;
mod shared;
mod statements;
mod tx;
mod writer;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use sqlite_common::SqliteLocation;
use storage_api::backend::{PoolInstruments, redact_url};
use storage_api::{
    Capabilities, CloseReport, Condition, ConnectionValidation, Entry, PoolHealth, PoolMetrics,
    PooledStore, PutOptions, Result, ScanOptions, StoreOptions, Transaction, TxOptions, Version,
    WriteOp, WriteResult,
};

use connect::Target;
use shared::{Parts, Shared};
use statements::Statements;
use tx::SqliteTx;

use crate::common::accounting::ConnectionAccounting;

/// A store over a pool of SQLite connections: a database file, or a private
/// temporary database (see [`sqlite_common::scratch`]) that lives until the store closes.
#[derive(Clone)]
pub(crate) struct SqliteStore {
    shared: Arc<Shared>,
    /// The database file in the process's registry of open files (file stores only).
    open_file: Option<Arc<sqlite_common::OpenFile>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("url", &redact_url(&self.shared.options.url))
            .field("table", &self.shared.options.table)
            .field("persistent", &self.shared.persistent)
            .field("closed", &self.shared.gate.is_closed())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `location` (a SQLite file or memory), creating the
    /// schema if needed, and fills the pool up to `min_idle`.
    pub(crate) async fn open(options: StoreOptions, location: &SqliteLocation) -> Result<Self> {
        let target = match location {
            SqliteLocation::File(path) => Target::File(path),
            SqliteLocation::Memory => Target::Memory,
        };
        let persistent = matches!(target, Target::File(_));
        let sql = Statements::new(&options.table);
        let instruments = Arc::new(PoolInstruments::new());
        let accounting = ConnectionAccounting::new(Arc::clone(&instruments));
        let opened = connect::open(&options, target, &sql, &accounting, &instruments).await?;
        let open_file =
            persistent.then(|| Arc::new(sqlite_common::OpenFile::register(&opened.path)));
        tracing::debug!(
            backend = "sqlx",
            url = %redact_url(&options.url),
            schema_version = opened.schema_version,
            "opened SQLite store"
        );
        Ok(Self {
            shared: Shared::new(Parts {
                pool: opened.pool,
                sql,
                options,
                persistent,
                path: opened.path,
                schema_version: opened.schema_version,
                instruments,
                accounting,
                scratch: opened.scratch,
                keeper: opened.keeper,
                manual_checkpoints: opened.wal,
                packed_scans: opened.packed_scans,
            }),
            open_file,
        })
    }

    /// The schema version of the store's table, as found or created at open.
    pub(crate) fn schema_version(&self) -> i64 {
        self.shared.schema_version
    }

    /// The database file.
    pub(crate) fn database_path(&self) -> &Path {
        &self.shared.path
    }
}

#[async_trait]
impl PooledStore for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "sqlx"
    }

    fn capabilities(&self) -> Capabilities {
        let limits = self.shared.options.limits;
        let mut capabilities = Capabilities::full(limits.max_value_bytes, limits.max_scan_limit);
        capabilities.persistent = self.shared.persistent;
        capabilities
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        let s = &self.shared;
        let _work = s.enter()?;
        s.spin(reader::get(s, key)).await
    }

    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        let s = &self.shared;
        let _work = s.enter()?;
        s.spin(writer::put(s, key, value, options)).await
    }

    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool> {
        let s = &self.shared;
        let _work = s.enter()?;
        s.spin(writer::delete(s, key, condition)).await
    }

    async fn scan(&self, options: ScanOptions) -> Result<Vec<Entry>> {
        let s = &self.shared;
        let limit = s.options.limits.scan_limit(&options);
        let _work = s.enter()?;
        let mut conn = s.acquire("scan").await?;
        let entries = ops::scan(s, &mut conn, &options, limit, s.now()).await?;
        s.release(conn);
        Ok(entries)
    }

    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        let s = &self.shared;
        let _work = s.enter()?;
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        s.spin(writer::batch(s, ops)).await
    }

    async fn purge_expired(&self) -> Result<u64> {
        let s = &self.shared;
        let _work = s.enter()?;
        s.spin(writer::purge_expired(s)).await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(SqliteTx::begin(&self.shared, options).await?))
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
        let report = self.shared.close().await;
        if let Some(open_file) = &self.open_file {
            open_file.release();
        }
        report
    }
}
