//! Settings that one engine reads and the others ignore, grouped per engine in
//! [`StoreOptions`](crate::StoreOptions) so that each lives with its engine.

use crate::synchronous::Synchronous;

/// What only SQLite stores read (`db_enable_wal`, `db_synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Write-ahead logging, so readers never block the writer.
    pub enable_wal: bool,
    /// `PRAGMA synchronous`.
    pub synchronous: Synchronous,
}

/// What only PostgreSQL stores read (`db_transaction_pooler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The connections go through a transaction-mode pooler (PgBouncer
    /// `pool_mode = transaction`), so nothing may rely on session state.
    pub transaction_pooler: bool,
}
