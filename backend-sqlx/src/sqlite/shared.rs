//! The state a SQLite store shares with its transactions, and the one path every
//! operation takes to get a connection.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use sqlx::pool::PoolConnection;
use sqlx::{SqlSafeStr, Sqlite, SqliteConnection, SqlitePool};
use storage_api::{InFlight, PoolInstruments, Result, StoreError, StoreOptions};

use super::errors::map_error;
use super::scratch::ScratchDir;
use super::statements::Statements;
use super::writer::Writer;
use crate::common::accounting::ConnectionAccounting;
use crate::common::gate::Gate;

/// A transaction on a pooled connection, owned (not borrowed from the pool).
pub(crate) type PooledTx = sqlx::Transaction<'static, Sqlite>;

/// Everything one open store owns: the pool, its statements, options and instruments.
pub(crate) struct Shared {
    pub(crate) pool: SqlitePool,
    pub(crate) sql: Statements,
    pub(crate) options: StoreOptions,
    /// `false` for in-memory databases.
    pub(crate) persistent: bool,
    /// The database file.
    pub(crate) path: PathBuf,
    /// The schema version found (or created) at open.
    pub(crate) schema_version: i64,
    pub(crate) instruments: Arc<PoolInstruments>,
    pub(crate) accounting: Arc<ConnectionAccounting>,
    /// Admission and closing.
    pub(crate) gate: Gate,
    /// For `sqlite::memory:`: the private database's directory, removed at close
    /// (or when the last handle drops).
    pub(crate) scratch: Option<ScratchDir>,
    /// A connection outside the pool, open from `open` until `close` ends (after the
    /// pool's), so the pool never closes the database's last connection while the
    /// store is open. SQLite 3.51.1 can deadlock when the last connection to a WAL
    /// database closes (checkpointing on the way) while another thread opens one to
    /// the same file, which an idle pool reaping and refilling itself would do.
    pub(crate) keeper: tokio::sync::Mutex<Option<SqliteConnection>>,
    /// The single writer behind put, delete, batch and purge_expired.
    pub(crate) writer: Writer,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("options", &self.options)
            .field("persistent", &self.persistent)
            .field("closed", &self.gate.is_closed())
            .finish_non_exhaustive()
    }
}

/// The parts [`Shared::new`] is built from.
pub(crate) struct Parts {
    pub(crate) pool: SqlitePool,
    pub(crate) sql: Statements,
    pub(crate) options: StoreOptions,
    pub(crate) persistent: bool,
    pub(crate) path: PathBuf,
    pub(crate) schema_version: i64,
    pub(crate) instruments: Arc<PoolInstruments>,
    pub(crate) accounting: Arc<ConnectionAccounting>,
    pub(crate) scratch: Option<ScratchDir>,
    pub(crate) keeper: SqliteConnection,
}

impl Shared {
    /// An open store from its parts.
    pub(crate) fn new(parts: Parts) -> Arc<Self> {
        Arc::new(Self {
            pool: parts.pool,
            sql: parts.sql,
            options: parts.options,
            persistent: parts.persistent,
            path: parts.path,
            schema_version: parts.schema_version,
            instruments: parts.instruments,
            accounting: parts.accounting,
            gate: Gate::new(),
            scratch: parts.scratch,
            keeper: tokio::sync::Mutex::new(Some(parts.keeper)),
            writer: Writer::default(),
        })
    }

    /// Admits one operation, or `Closed`.
    pub(crate) fn enter(&self) -> Result<InFlight> {
        self.gate.enter()
    }

    /// The current time from the store's clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.options.clock.now()
    }

    /// Maps a sqlx error raised by `operation`.
    pub(crate) fn fail(&self, operation: &str, error: sqlx::Error) -> StoreError {
        map_error(error, operation, None, &self.path, &self.instruments)
    }

    /// Acquires a pooled connection for `operation`, feeding the instruments.
    ///
    /// Fails with `Timeout` after the acquire timeout, and with `Closed` as soon as the
    /// store starts closing, even while waiting.
    pub(crate) async fn acquire(&self, operation: &str) -> Result<PoolConnection<Sqlite>> {
        let map = |error, waited| {
            map_error(
                error,
                operation,
                Some(waited),
                &self.path,
                &self.instruments,
            )
        };
        self.gate.acquire(&self.pool, &self.instruments, map).await
    }

    /// Acquires a connection and starts a transaction on it: `BEGIN IMMEDIATE` for
    /// writes (a deferred transaction that reads then writes fails with
    /// `SQLITE_BUSY_SNAPSHOT` without waiting), plain `BEGIN` for read-only ones.
    ///
    /// Dropping the result at any point rolls back and returns the connection.
    pub(crate) async fn begin(&self, operation: &str, read_only: bool) -> Result<PooledTx> {
        let conn = self.acquire(operation).await?;
        let statement = if read_only {
            "BEGIN"
        } else {
            "BEGIN IMMEDIATE"
        };
        // `Transaction::begin` is what `Pool::begin_with` runs after its own acquire;
        // calling it here keeps the acquire on the instrumented path above.
        sqlx::Transaction::begin(conn, Some(statement.into_sql_str()))
            .await
            .map_err(|e| self.fail(operation, e))
    }

    /// Commits a transaction started by [`begin`](Self::begin).
    pub(crate) async fn commit(&self, operation: &str, tx: PooledTx) -> Result<()> {
        tx.commit().await.map_err(|e| self.fail(operation, e))
    }

    /// `Closed` once `close` has given up on in-flight work.
    pub(crate) fn check_not_forced(&self) -> Result<()> {
        self.gate.check_not_forced()
    }
}
