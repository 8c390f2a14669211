//! The layer the server engines (PostgreSQL, MySQL) share: one store, transaction, lease,
//! retry loop, operation flow, health check, open and schema-check flow, generic over
//! the [`Engine`] each of them implements for what really differs.
//!
//! An engine supplies its statements ([`Engine`]), its error codes ([`ErrorCodes`]), how
//! it connects, checks the server and sets up sessions ([`Open`](open::Open)), and its
//! catalog queries ([`Catalog`](schema::Catalog)). Everything else is here, once:
//! [`EngineStore`](store::EngineStore) is the `PooledStore`, [`EngineTx`](tx::EngineTx)
//! the `Transaction`, both running the key-value operations of [`ops`] on a [`Lease`]
//! taken through [`Shared`](shared::Shared) (a connection an operation ended cleanly on
//! is parked in the [`Stash`](crate::common::stash::Stash) for the next one), with the
//! retry loop of [`run`]; writes outside transactions share commits through the
//! group-commit [`writer`].
//!
//! SQLite keeps its own structure (its single writer connection) beside this one.

pub(crate) mod close;
pub(crate) mod conditions;
pub(crate) mod errors;
pub(crate) mod health;
pub(crate) mod lease;
pub(crate) mod open;
pub(crate) mod ops;
pub(crate) mod queries;
pub(crate) mod run;
pub(crate) mod runs;
pub(crate) mod schema;
pub(crate) mod scratch;
pub(crate) mod sessions;
pub(crate) mod shared;
pub(crate) mod statements;
pub(crate) mod store;
pub(crate) mod tx;
pub(crate) mod url;
pub(crate) mod work;
pub(crate) mod writer;

use std::fmt;
use std::ops::Bound;

use sqlx::{Database, SqlStr};
use storage_api::Result;

pub(crate) use errors::ErrorCodes;
use lease::Lease;
use queries::{KeyedRow, Queries};
use statements::KeyStatements;

/// A connection of engine `E`'s database.
pub(crate) type Conn<E> = <<E as Engine>::Db as Database>::Connection;

/// A row a put writes: the key, the value and its expiry (ms since the epoch, or none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewRow<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
    pub(crate) expires_at: Option<i64>,
    /// Whether the key has a row already (live or expired), which the put replaces
    /// (MySQL updates it rather than inserting).
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) replaces: bool,
}

/// What a server engine is to the shared layer: its database, its statements and the
/// facts of one open store (what it found at open, how its transactions begin).
///
/// One value per store, built by [`Open::opened`](open::Open::opened) and kept in
/// [`Shared`](shared::Shared).
pub(crate) trait Engine: ErrorCodes + Send + Sync + Sized + 'static {
    /// The sqlx database the engine speaks.
    type Db: Queries;

    /// The name of the store type in `Debug` (`PostgresStore`).
    const STORE: &'static str;
    /// The name of the transaction type in `Debug` (`PgTx`).
    const TRANSACTION: &'static str;

    /// The engine's facts in a store's `Debug` (never a secret).
    fn describe(&self, out: &mut fmt::DebugStruct<'_, '_>);

    /// The statements of the single-key operations and the purge.
    fn statements(&self) -> &KeyStatements;

    /// A scan of live rows between the bounds, ascending: parameters now (ms), then the
    /// bounded sides' keys (lower, upper), then the limit.
    fn scan_statement(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> SqlStr;

    /// Writes `row` with a new version, returning the version. Runs inside a read-write
    /// transaction, after the key's row was read (and, where the engine locks, locked).
    fn write<'a>(
        &'a self,
        lease: &'a mut Lease<Self>,
        row: NewRow<'a>,
    ) -> impl Future<Output = Result<i64>> + Send + 'a;

    /// Whether [`write_rows`](Self::write_rows) reads the rows itself, as
    /// [`current_rows`](Self::current_rows) would, before drawing their versions: then
    /// puts that need nothing from the rows (no condition) skip the read before.
    const WRITE_READS_ROWS: bool;

    /// The rows (live or expired) of `keys`, all distinct, read as
    /// [`current`](KeyStatements::current) reads one (locked where the engine locks), in
    /// one statement: the row of each key found.
    fn current_rows<'a>(
        &'a self,
        lease: &'a mut Lease<Self>,
        keys: &'a [&'a [u8]],
    ) -> impl Future<Output = Result<Vec<KeyedRow>>> + Send + 'a;

    /// Writes `rows` (distinct keys, each read by [`current_rows`](Self::current_rows)
    /// first unless [`WRITE_READS_ROWS`](Self::WRITE_READS_ROWS)) with new versions in
    /// as few statements as the engine allows, returning the versions in the order of
    /// `rows`.
    fn write_rows<'a>(
        &'a self,
        lease: &'a mut Lease<Self>,
        rows: &'a [NewRow<'a>],
    ) -> impl Future<Output = Result<Vec<i64>>> + Send + 'a;

    /// How many rows a statement changed.
    fn rows_affected(result: &<Self::Db as Database>::QueryResult) -> u64;

    /// The statement that starts a serializable transaction (`READ ONLY` when
    /// `read_only`) on this store's connections.
    fn begin_statement(&self, read_only: bool) -> SqlStr;

    /// Whether single reads run in a transaction of their own (rather than as one
    /// statement outside any).
    fn reads_in_transaction(&self) -> bool;

    /// The health check's round trip where it must read what health reports itself (the
    /// server's version and what the detail says of the session): one text-protocol
    /// query (no prepared statement). `None` where every connection's setup read those
    /// facts back ([`Sessions`](sessions::Sessions)): the round trip is then a
    /// `SELECT 1`.
    fn health_query(&self) -> Option<&'static str>;

    /// The server version and what the health detail adds (starting with `; `), from
    /// the row of [`health_query`](Self::health_query), or, with none, from what the
    /// sessions' setup read.
    fn health_detail(
        &self,
        row: Option<&<Self::Db as Database>::Row>,
    ) -> sqlx::Result<(String, String)>;
}
