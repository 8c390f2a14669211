//! The SQL of a MySQL or MariaDB store: one row per key in the store's table (`key
//! VARBINARY(1024)`, so equality, ranges and order are bytewise whatever the
//! database's collation), versions drawn from the table's `AUTO_INCREMENT` sequence
//! table.
//!
//! Identifiers come from [`Names`] (a validated table name and names derived from it)
//! and are always backquoted; every value is a bound parameter. On MariaDB each
//! single-key statement that can wait on another transaction's lock (a write's first
//! read `FOR UPDATE`, an insert into a gap, a read in a transaction) carries `SET
//! STATEMENT max_statement_time = busy timeout`, so the wait ends after the busy
//! timeout to the millisecond (InnoDB's own `innodb_lock_wait_timeout` counts whole
//! seconds; it still bounds scans). The rest (the version draw on the store's own
//! sequence row, updates and deletes of a row already locked) never waits on another
//! transaction and runs unwrapped.

use std::fmt::Write;
use std::ops::Bound;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use crate::common::names::Names;

/// Every statement operations run against the store's table, built once per store.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    table: String,
    /// key, now (ms): value, version, expires_at of a live entry. For single reads in
    /// autocommit: a consistent non-locking read, which never waits on a lock.
    pub(crate) get: SqlStr,
    /// As `get`, for reads in a transaction (which take shared locks): bounded by the
    /// busy timeout on MariaDB.
    pub(crate) get_locking: SqlStr,
    /// key: version and expires_at of the key's row, live or expired, locked for
    /// update (a missing key's gap is locked).
    pub(crate) current: SqlStr,
    /// Draws the next version: inserts a row into the sequence table.
    pub(crate) draw: SqlStr,
    /// id: removes a drawn version's row (the counter keeps counting).
    pub(crate) forget: SqlStr,
    /// key, value, version, expires_at: inserts a new row.
    pub(crate) insert: SqlStr,
    /// value, version, expires_at, key: replaces the row's contents.
    pub(crate) update: SqlStr,
    /// key: deletes the row.
    pub(crate) delete: SqlStr,
    /// now (ms): deletes expired rows.
    pub(crate) purge: SqlStr,
}

impl Statements {
    /// The statements for the table `names` describes; `lock_bound` is the MariaDB
    /// `max_statement_time` (seconds) for single-key statements that may wait on a
    /// lock, `None` on MySQL.
    pub(crate) fn new(names: &Names, lock_bound: Option<&str>) -> Self {
        let t = quote(&names.table);
        let seq = quote(&names.sequence);
        let bounded = |sql: String| match lock_bound {
            Some(secs) => sql_str(format!(
                "SET STATEMENT max_statement_time = {secs} FOR {sql}"
            )),
            None => sql_str(sql),
        };
        let get = format!(
            "SELECT `value`, version, expires_at FROM {t} \
             WHERE `key` = ? AND (expires_at IS NULL OR expires_at > ?)"
        );
        Self {
            get_locking: bounded(get.clone()),
            get: sql_str(get),
            current: bounded(format!(
                "SELECT version, expires_at FROM {t} WHERE `key` = ? FOR UPDATE"
            )),
            draw: sql_str(format!("INSERT INTO {seq} () VALUES ()")),
            forget: sql_str(format!("DELETE FROM {seq} WHERE id = ?")),
            insert: bounded(format!(
                "INSERT INTO {t} (`key`, `value`, version, expires_at) VALUES (?, ?, ?, ?)"
            )),
            update: sql_str(format!(
                "UPDATE {t} SET `value` = ?, version = ?, expires_at = ? WHERE `key` = ?"
            )),
            delete: sql_str(format!("DELETE FROM {t} WHERE `key` = ?")),
            purge: sql_str(format!(
                "DELETE FROM {t} WHERE expires_at IS NOT NULL AND expires_at <= ?"
            )),
            table: t,
        }
    }

    /// A scan of live rows (first parameter: now in ms) between the bounds,
    /// ascending, then the bounded sides' keys in order (lower, upper) and last the
    /// limit.
    pub(crate) fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> SqlStr {
        let mut sql = format!(
            "SELECT `key`, `value`, version, expires_at FROM {} \
             WHERE (expires_at IS NULL OR expires_at > ?)",
            self.table
        );
        for (bound, inclusive, exclusive) in [(lower, ">=", ">"), (upper, "<=", "<")] {
            let op = match bound {
                Bound::Included(_) => inclusive,
                Bound::Excluded(_) => exclusive,
                Bound::Unbounded => continue,
            };
            let _ = write!(sql, " AND `key` {op} ?");
        }
        sql.push_str(" ORDER BY `key` LIMIT ?");
        sql_str(sql)
    }
}

/// `name` as a quoted identifier. Names here are validated identifiers
/// (`[A-Za-z_][A-Za-z0-9_]*`), so they never contain a backquote.
pub(crate) fn quote(name: &str) -> String {
    format!("`{name}`")
}

/// A statement string shared cheaply between calls.
pub(crate) fn sql_str(sql: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(sql)).into_sql_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_bind_only_the_bounded_sides() {
        let sql = Statements::new(&Names::new("kv"), None);
        let both = sql.scan(Bound::Excluded(b"a"), Bound::Included(b"b"));
        assert!(
            both.as_str()
                .ends_with("AND `key` > ? AND `key` <= ? ORDER BY `key` LIMIT ?"),
            "{}",
            both.as_str()
        );
        let none = sql.scan(Bound::Unbounded, Bound::Unbounded);
        assert!(none.as_str().ends_with("> ?) ORDER BY `key` LIMIT ?"));
    }

    #[test]
    fn single_key_statements_are_bounded_on_mariadb_only() {
        let maria = Statements::new(&Names::new("kv"), Some("0.400"));
        assert!(
            maria
                .current
                .as_str()
                .starts_with("SET STATEMENT max_statement_time = 0.400 FOR SELECT")
        );
        assert!(!maria.purge.as_str().starts_with("SET STATEMENT"));
        assert!(!maria.get.as_str().starts_with("SET STATEMENT"));
        assert!(maria.get_locking.as_str().starts_with("SET STATEMENT"));
        let mysql = Statements::new(&Names::new("kv"), None);
        assert!(mysql.current.as_str().starts_with("SELECT version"));
        assert!(mysql.draw.as_str().contains("`kv_version_seq`"));
    }
}
