//! The SQLite statements every SQLite configuration runs: pooledstore's own table
//! layout and statements (`sqlite_common::schema::SqliteSql`), so the raw anchors do the
//! same work as pooledstore, minus the pool abstraction.

use std::ops::Bound;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlite_common::schema::SqliteSql;

/// The store table, pooledstore's default.
pub(crate) const TABLE: &str = "pooledstore_kv";

/// The statements for [`TABLE`], ready to prepare.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// Schema, statements and version counter, as pooledstore's backends use them.
    pub(crate) sql: SqliteSql,
    /// `?1` now, `?2` first key, `?3` NULL, `?4` limit: rows from a key on.
    pub(crate) scan_from: String,
}

impl Statements {
    /// The statements for [`TABLE`].
    pub(crate) fn new() -> Self {
        let sql = SqliteSql::new(TABLE);
        let scan_from = sql.scan(Bound::Included(&[]), Bound::Unbounded);
        Self { sql, scan_from }
    }
}

/// The current time in Unix milliseconds, as the `now` parameter of reads.
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
