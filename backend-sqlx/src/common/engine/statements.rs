//! The statements the shared operations run, as each engine writes them for its table.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

/// The statements of the single-key operations and the purge, built once per store.
/// Their parameters come in the order each field names.
#[derive(Debug, Clone)]
pub(crate) struct KeyStatements {
    /// key, now (ms): value, version, expires_at of a live entry, for a single read.
    pub(crate) get: SqlStr,
    /// As `get`, for a read inside a transaction.
    pub(crate) get_in_transaction: SqlStr,
    /// key: version and expires_at of the key's row, live or expired, as a write reads
    /// it before writing.
    pub(crate) current: SqlStr,
    /// key: deletes the row.
    pub(crate) delete: SqlStr,
    /// now (ms): deletes expired rows.
    pub(crate) purge: SqlStr,
}

/// A statement string shared cheaply between calls. Only for SQL this crate builds from
/// validated identifiers; values are always bound parameters.
pub(crate) fn sql_str(sql: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(sql)).into_sql_str()
}
