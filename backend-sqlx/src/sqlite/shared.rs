//! The state a SQLite store shares with its transactions, and the one path every
//! operation takes to get a connection.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlite_common::queue::{Lender, Queue};
use sqlite_common::scratch::ScratchDir;
use sqlite_common::writer::Writer;
use sqlx::{SqlSafeStr, Sqlite, SqliteConnection, SqlitePool};
use storage_api::backend::{InFlight, PoolInstruments};
use storage_api::{Entry, Result, StoreError, StoreOptions};

use super::errors::map_error;
use super::statements::Statements;
use crate::common::accounting::ConnectionAccounting;
use crate::common::alone;
use crate::common::check_clock::CheckClock;
use crate::common::gate::Gate;
use crate::common::stash::{Lent, Stash};

/// The longest a lone operation's answer from the worker thread is polled for before
/// it waits to be woken, well beyond a point read's round trip to that thread.
const SPIN: Duration = Duration::from_micros(200);

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
    /// pool's): background checkpoints and the final one run on it, and the pool
    /// never closes the database's last connection while the store is open, which
    /// would checkpoint and delete the WAL on a pool thread each time an idle pool
    /// empties, and rebuild it on the next open.
    pub(crate) keeper: tokio::sync::Mutex<Option<SqliteConnection>>,
    /// The single writer behind put, delete, batch and purge_expired, with the WAL
    /// checkpoint schedule.
    pub(crate) writer: Writer,
    /// Coalesces concurrent point reads.
    pub(crate) reader: Queue<Vec<u8>, Option<Entry>>,
    /// Connections lent from one operation to the next without a pool round trip.
    pub(crate) stash: Arc<Stash<Sqlite>>,
    /// What bounds health checks' round trips.
    pub(crate) check_clock: Arc<CheckClock>,
    /// Short scans are answered in one packed row (a UTF-8 database; see
    /// [`packed`](super::packed)).
    pub(crate) packed_scans: bool,
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
    /// Whether the store runs the WAL checkpoints itself (see [`sqlite_common::wal`]).
    pub(crate) manual_checkpoints: bool,
    /// Whether short scans may run packed (see [`packed`](super::packed)).
    pub(crate) packed_scans: bool,
}

impl Shared {
    /// An open store from its parts.
    pub(crate) fn new(parts: Parts) -> Arc<Self> {
        let stash = Stash::new(&parts.options);
        let gate = Gate::new(parts.path.display().to_string());
        Arc::new(Self {
            pool: parts.pool,
            sql: parts.sql,
            options: parts.options,
            persistent: parts.persistent,
            path: parts.path,
            schema_version: parts.schema_version,
            instruments: parts.instruments,
            accounting: parts.accounting,
            gate,
            scratch: parts.scratch,
            keeper: tokio::sync::Mutex::new(Some(parts.keeper)),
            writer: Writer::new(parts.manual_checkpoints),
            reader: Queue::default(),
            stash,
            check_clock: Arc::default(),
            packed_scans: parts.packed_scans,
        })
    }

    /// Admits one operation, or `Closed`.
    pub(crate) fn enter(&self) -> Result<InFlight> {
        self.gate.enter()
    }

    /// Runs `operation` (admitted with [`enter`](Self::enter)), polling it without
    /// sleeping for up to [`SPIN`] while it is the only work in the store
    /// ([`alone::spin`]). Statements that stream many rows (scans longer than
    /// [`PACKED_ROWS`](super::packed::PACKED_ROWS)) are not spun: the worker sends
    /// them one at a time, and a caller polling for each slows the worker down (a
    /// 100-row scan streamed ran at 0.8x).
    pub(crate) async fn spin<F: Future>(&self, operation: F) -> F::Output {
        alone::spin(self.gate.alone(), SPIN, operation).await
    }

    /// The current time from the store's clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.options.clock.now()
    }

    /// Maps a sqlx error raised by `operation`.
    pub(crate) fn fail(&self, operation: &str, error: sqlx::Error) -> StoreError {
        map_error(error, operation, None, &self.path, &self.instruments)
    }

    /// Acquires a connection for `operation`, feeding the instruments: the one an
    /// operation parked last (see [`Stash`]), else the first one released or freed in
    /// the pool.
    ///
    /// Fails with `Timeout` after the acquire timeout, and with `Closed` as soon as the
    /// store starts closing, even while waiting.
    pub(crate) async fn acquire(&self, operation: &str) -> Result<Lent<Sqlite>> {
        let map = |error, waited| {
            let path = &self.path;
            map_error(error, operation, Some(waited), path, &self.instruments)
        };
        let (pool, stash) = (&self.pool, &self.stash);
        self.gate.lend(pool, stash, &self.instruments, map).await
    }

    /// Hands back a connection whose operation ended cleanly, for the next operation.
    /// A connection whose operation failed or was cut off is dropped instead, so it
    /// goes back through the pool's checks.
    pub(crate) fn release(&self, conn: Lent<Sqlite>) {
        self.stash.park(conn);
    }

    /// Acquires a connection and starts a transaction on it: `BEGIN IMMEDIATE` for
    /// writes (a deferred transaction that reads then writes fails with
    /// `SQLITE_BUSY_SNAPSHOT` without waiting), plain `BEGIN` for read-only ones.
    ///
    /// Dropping the result at any point rolls back and returns the connection.
    pub(crate) async fn begin(&self, operation: &str, read_only: bool) -> Result<PooledTx> {
        let conn = self.acquire(operation).await?.into_inner();
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

/// The store's connections as its queues (the writer's, the reader's) borrow them.
impl Lender for Shared {
    type Conn = Lent<Sqlite>;

    async fn acquire(&self, operation: &'static str) -> Result<Lent<Sqlite>> {
        Shared::acquire(self, operation).await
    }

    fn release(&self, conn: Lent<Sqlite>) {
        Shared::release(self, conn);
    }

    /// Back to the pool now and then, which enforces `max_lifetime`.
    fn is_due(&self, conn: &Lent<Sqlite>) -> bool {
        conn.is_due()
    }

    fn instruments(&self) -> &PoolInstruments {
        &self.instruments
    }

    fn is_closing(&self) -> bool {
        self.gate.is_closing()
    }
}
