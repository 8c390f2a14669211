//! Opening a SQLite store: connection options, the database file, the schema and
//! the pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlite_common::schema::prepare_database_file;
use sqlite_common::wal::AUTOCHECKPOINT_OFF;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection, SqlitePool};
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, Result, StoreError, StoreOptions, Synchronous};

use super::errors::map_error;
use super::packed;
use super::schema;
use super::statements::Statements;
use crate::common::accounting::ConnectionAccounting;
use sqlite_common::scratch::ScratchDir;

/// Where a SQLite store keeps its data.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// A database file.
    File(&'a Path),
    /// A private temporary database (see [`ScratchDir`]).
    Memory,
}

/// What [`open`] produces.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) pool: SqlitePool,
    /// The database file (for `sqlite::memory:`, the private one).
    pub(crate) path: PathBuf,
    /// For `sqlite::memory:`: the directory of the private database.
    pub(crate) scratch: Option<ScratchDir>,
    pub(crate) schema_version: i64,
    /// The connection that prepared the database, kept open outside the pool until
    /// the store closes (see [`Shared`](super::shared::Shared)'s `keeper`).
    pub(crate) keeper: SqliteConnection,
    /// Whether the database is in WAL mode (with automatic checkpoints off).
    pub(crate) wal: bool,
    /// Whether short scans may run packed (see [`packed::supported`]).
    pub(crate) packed_scans: bool,
}

/// Prepares the database (file, journal mode, schema) on a dedicated connection,
/// then opens the pool; the dedicated connection stays open as the store's keeper.
pub(crate) async fn open(
    options: &StoreOptions,
    target: Target<'_>,
    sql: &Statements,
    accounting: &Arc<ConnectionAccounting>,
    instruments: &PoolInstruments,
) -> Result<Opened> {
    let (path, scratch) = match target {
        Target::File(path) => (path.to_path_buf(), None),
        Target::Memory => {
            let scratch = ScratchDir::create("sqlx")?;
            (scratch.db_path(), Some(scratch))
        }
    };
    prepare_database_file(&path)?;
    let fail = |e| map_error(e, "open", None, &path, instruments);
    // The private database always uses WAL: it is what lets readers and a writer
    // share it, and nobody else opens the file.
    let wal = options.sqlite.enable_wal || scratch.is_some();
    let mut connect = connect_options(options, scratch.is_some()).filename(&path);
    if wal {
        let (pragma, value) = AUTOCHECKPOINT_OFF;
        connect = connect
            .journal_mode(SqliteJournalMode::Wal)
            .pragma(pragma, value);
    }
    let mut setup = tokio::time::timeout(options.acquire_timeout, connect.clone().connect())
        .await
        .map_err(|_| open_timeout(options.acquire_timeout))?
        .map_err(fail)?;
    let prepared = async {
        let version = schema::prepare(&mut setup, options, wal, &path, sql, instruments).await?;
        let packed = packed::supported(&mut setup).await.map_err(fail)?;
        Ok((version, packed))
    }
    .await;
    let (schema_version, packed_scans) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            close_setup(setup).await;
            return Err(error);
        }
    };
    let pool = accounting
        .install(pool_options_for(options), options.max_lifetime)
        .connect_with(connect)
        .await;
    let pool = match pool {
        Ok(pool) => pool,
        Err(error) => {
            close_setup(setup).await;
            return Err(fail(error));
        }
    };
    Ok(Opened {
        pool,
        path,
        scratch,
        schema_version,
        keeper: setup,
        wal,
        packed_scans,
    })
}

/// Closes the connection that prepared the database, without waiting long: a
/// connection dropped unclosed is closed by its worker thread anyway.
async fn close_setup(setup: SqliteConnection) {
    let _ = tokio::time::timeout(Duration::from_secs(5), setup.close()).await;
}

/// The error of an open that could not connect within the acquire timeout.
fn open_timeout(waited: Duration) -> StoreError {
    StoreError::new(
        ErrorKind::Timeout,
        format!(
            "open: timed out opening a connection after {:.3} s",
            waited.as_secs_f64()
        ),
    )
}

/// The options every connection shares. `busy_timeout` is applied when the
/// connection opens, before sqlx runs the `journal_mode` and `synchronous` pragmas.
/// A private temporary database (`ephemeral`) never syncs: it dies with the store.
fn connect_options(options: &StoreOptions, ephemeral: bool) -> SqliteConnectOptions {
    let busy_timeout = options
        .busy_timeout
        .min(Duration::from_millis(i32::MAX as u64));
    let synchronous = match options.sqlite.synchronous {
        _ if ephemeral => SqliteSynchronous::Off,
        Synchronous::Normal => SqliteSynchronous::Normal,
        Synchronous::Full => SqliteSynchronous::Full,
    };
    SqliteConnectOptions::new()
        .busy_timeout(busy_timeout)
        .synchronous(synchronous)
        .create_if_missing(false)
}

/// The pool settings from the store options. sqlx gets no `max_lifetime`: the
/// accounting hooks enforce it, so every retirement is counted.
fn pool_options_for(options: &StoreOptions) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(options.max_connections)
        .min_connections(options.min_idle)
        .acquire_timeout(options.acquire_timeout)
        .idle_timeout(options.idle_timeout)
        .max_lifetime(None)
        // Local SQLite connections do not go stale; skipping the ping keeps acquire
        // free of extra round trips and of cancellation points.
        .test_before_acquire(false)
}
