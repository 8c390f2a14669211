//! The SQL of a PostgreSQL store: one row per key in the store's table (`key bytea`,
//! so ranges and order are bytewise whatever the database's collation), versions drawn
//! from the table's own sequence.
//!
//! Identifiers come from [`Names`] (a validated table name and names derived from it)
//! and are always double-quoted; every value is a bound parameter.

use std::fmt::Write;
use std::ops::Bound;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use crate::common::names::Names;

/// Every statement operations run against the store's table, built once per store.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    table: String,
    /// `$1` key, `$2` now (ms): value, version, expires_at of a live entry.
    pub(crate) get: SqlStr,
    /// `$1` key: version and expires_at of the key's row, live or expired.
    pub(crate) current: SqlStr,
    /// `$1` key, `$2` value, `$3` expires_at (ms or NULL): writes the row with the next
    /// version from the sequence, returning it.
    pub(crate) upsert: SqlStr,
    /// `$1` key: deletes the row.
    pub(crate) delete: SqlStr,
    /// `$1` now (ms): deletes expired rows.
    pub(crate) purge: SqlStr,
}

impl Statements {
    /// The statements for the table `names` describes.
    pub(crate) fn new(names: &Names) -> Self {
        let t = quote(&names.table);
        let sequence = quote(&names.sequence);
        Self {
            get: sql_str(format!(
                "SELECT value, version, expires_at FROM {t} \
                 WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)"
            )),
            current: sql_str(format!(
                "SELECT version, expires_at FROM {t} WHERE key = $1"
            )),
            upsert: sql_str(format!(
                "INSERT INTO {t} (key, value, version, expires_at) \
                 VALUES ($1, $2, nextval('{sequence}'), $3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                 version = excluded.version, expires_at = excluded.expires_at \
                 RETURNING version"
            )),
            delete: sql_str(format!("DELETE FROM {t} WHERE key = $1")),
            purge: sql_str(format!(
                "DELETE FROM {t} WHERE expires_at IS NOT NULL AND expires_at <= $1"
            )),
            table: t,
        }
    }

    /// A scan of live rows (`$1` now in ms) between the bounds, ascending, then the
    /// bounded sides' keys in order (lower, upper) and last the limit. Parameters are
    /// numbered in that order, so an unbounded side takes no parameter.
    pub(crate) fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> SqlStr {
        let mut sql = format!(
            "SELECT key, value, version, expires_at FROM {} \
             WHERE (expires_at IS NULL OR expires_at > $1)",
            self.table
        );
        let mut next = 2;
        for (bound, inclusive, exclusive) in [(lower, ">=", ">"), (upper, "<=", "<")] {
            let op = match bound {
                Bound::Included(_) => inclusive,
                Bound::Excluded(_) => exclusive,
                Bound::Unbounded => continue,
            };
            let _ = write!(sql, " AND key {op} ${next}");
            next += 1;
        }
        let _ = write!(sql, " ORDER BY key LIMIT ${next}");
        sql_str(sql)
    }
}

/// `name` as a quoted identifier. Names here are validated identifiers
/// (`[A-Za-z_][A-Za-z0-9_]*`), so they never contain a quote.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// A statement string shared cheaply between calls.
pub(crate) fn sql_str(sql: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(sql)).into_sql_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_number_only_the_bounded_sides() {
        let sql = Statements::new(&Names::new("kv"));
        let both = sql.scan(Bound::Excluded(b"a"), Bound::Excluded(b"b"));
        assert!(
            both.as_str()
                .ends_with("AND key > $2 AND key < $3 ORDER BY key LIMIT $4"),
            "{}",
            both.as_str()
        );
        let upper = sql.scan(Bound::Unbounded, Bound::Excluded(b"b"));
        assert!(
            upper
                .as_str()
                .ends_with("AND key < $2 ORDER BY key LIMIT $3")
        );
        let none = sql.scan(Bound::Unbounded, Bound::Unbounded);
        assert!(none.as_str().ends_with("> $1) ORDER BY key LIMIT $2"));
    }

    #[test]
    fn versions_come_from_the_tables_sequence() {
        let sql = Statements::new(&Names::new("kv"));
        assert!(
            sql.upsert
                .as_str()
                .contains("nextval('\"kv_version_seq\"')")
        );
    }
}
