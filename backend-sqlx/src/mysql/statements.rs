//! The SQL of a MySQL or MariaDB store: one row per key in the store's table (`key
//! VARBINARY(1024)`, so equality, ranges and order are bytewise whatever the
//! database's collation), versions drawn from the table's `AUTO_INCREMENT` sequence
//! table.
//!
//! Every write first reads the key's row (live or expired) `FOR UPDATE` and only then
//! draws a version from the sequence table. The lock (on the row, or on the gap where
//! a missing key would go) is held until commit, so any earlier writer of the key has
//! committed (having drawn its version before) and any later one waits: versions of a
//! key only ever grow, across deletes too. `AUTO_INCREMENT` values are never handed out
//! twice, even by transactions that roll back, and the counter survives restarts
//! (MySQL 8, MariaDB 10.2.4 and newer); the drawn row is deleted at once, so the
//! sequence table stays empty.
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

use sqlx::SqlStr;

use crate::common::engine::statements::{KeyStatements, sql_str};
use crate::common::names::Names;

/// Starts a read-write transaction (the session's isolation is `SERIALIZABLE`).
pub(crate) const BEGIN_READ_WRITE: &str = "START TRANSACTION READ WRITE";
/// Starts a read-only transaction.
pub(crate) const BEGIN_READ_ONLY: &str = "START TRANSACTION READ ONLY";

/// Every statement operations run against the store's table, built once per store.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    table: String,
    /// The sequence table, quoted.
    sequence: String,
    /// The MariaDB `max_statement_time` (seconds) of statements that may wait on a lock.
    lock_bound: Option<String>,
    /// The shared operations' statements. `get` is for single reads in autocommit: a
    /// consistent non-locking read, which never waits on a lock; `get_in_transaction`
    /// is for reads in a transaction (which take shared locks), bounded by the busy
    /// timeout on MariaDB; `current` locks the key's row for update (a missing key's
    /// gap is locked).
    pub(crate) keys: KeyStatements,
    /// Draws the next version: inserts a row into the sequence table.
    pub(crate) draw: SqlStr,
    /// id: removes a drawn version's row (the counter keeps counting).
    pub(crate) forget: SqlStr,
    /// first id, last id, how many: removes the rows of versions drawn together, in
    /// order from the first, stopping at the last one drawn. A range, not an `IN (…)`
    /// list: for the nearly empty sequence table the optimizer answers such a list
    /// with a scan, which locks the rows other transactions have drawn and not yet
    /// removed; and the limit ends the scan without reading (and locking) the row
    /// after the range.
    pub(crate) forget_drawn: SqlStr,
    /// key, value, version, expires_at: inserts a new row.
    pub(crate) insert: SqlStr,
    /// value, version, expires_at, key: replaces the row's contents.
    pub(crate) update: SqlStr,
}

impl Statements {
    /// The statements for the table `names` describes; `lock_bound` is the MariaDB
    /// `max_statement_time` (seconds) for single-key statements that may wait on a
    /// lock, `None` on MySQL.
    pub(crate) fn new(names: &Names, lock_bound: Option<&str>) -> Self {
        let t = quote(&names.table);
        let seq = quote(&names.sequence);
        let bounded = |sql: String| bounded(lock_bound, sql);
        let get = format!(
            "SELECT `value`, version, expires_at FROM {t} \
             WHERE `key` = ? AND (expires_at IS NULL OR expires_at > ?)"
        );
        Self {
            keys: KeyStatements {
                get_in_transaction: bounded(get.clone()),
                get: sql_str(get),
                current: bounded(format!(
                    "SELECT version, expires_at FROM {t} WHERE `key` = ? FOR UPDATE"
                )),
                delete: sql_str(format!("DELETE FROM {t} WHERE `key` = ?")),
                purge: sql_str(format!(
                    "DELETE FROM {t} WHERE expires_at IS NOT NULL AND expires_at <= ?"
                )),
            },
            draw: sql_str(format!("INSERT INTO {seq} () VALUES ()")),
            forget: sql_str(format!("DELETE FROM {seq} WHERE id = ?")),
            forget_drawn: sql_str(format!(
                "DELETE FROM {seq} WHERE id >= ? AND id <= ? ORDER BY id LIMIT ?"
            )),
            insert: bounded(format!(
                "INSERT INTO {t} (`key`, `value`, version, expires_at) VALUES (?, ?, ?, ?)"
            )),
            update: sql_str(format!(
                "UPDATE {t} SET `value` = ?, version = ?, expires_at = ? WHERE `key` = ?"
            )),
            table: t,
            sequence: seq,
            lock_bound: lock_bound.map(str::to_owned),
        }
    }

    /// `n` keys: key, version and expires_at of each key's row, locked for update (the
    /// `current` read of many keys at once). Each key is its own lookup, locking its
    /// row or, for a missing key, the gap where it would go, as `current` does: for a
    /// small table the optimizer would answer an `IN (…)` list with a scan, locking
    /// every row and gap of the table.
    pub(crate) fn current_rows(&self, n: usize) -> SqlStr {
        let one = format!(
            "(SELECT `key`, version, expires_at FROM {} WHERE `key` = ? FOR UPDATE)",
            self.table
        );
        let sql = vec![one; n].join(" UNION ALL ");
        bounded(self.lock_bound.as_deref(), sql)
    }

    /// Draws `n` versions at once: inserts `n` rows into the sequence table.
    pub(crate) fn draw_rows(&self, n: usize) -> SqlStr {
        let sql = format!(
            "INSERT INTO {} () VALUES {}",
            self.sequence,
            placeholders("()", n)
        );
        sql_str(sql)
    }

    /// key, value, version, expires_at of `n` rows (distinct keys): inserts each row or
    /// replaces its contents.
    pub(crate) fn upsert_rows(&self, n: usize) -> SqlStr {
        let sql = format!(
            "INSERT INTO {} (`key`, `value`, version, expires_at) VALUES {} \
             ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), version = VALUES(version), \
             expires_at = VALUES(expires_at)",
            self.table,
            placeholders("(?, ?, ?, ?)", n)
        );
        bounded(self.lock_bound.as_deref(), sql)
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

/// `sql` bounded by MariaDB's `max_statement_time` of `lock_bound` seconds, if any.
fn bounded(lock_bound: Option<&str>, sql: String) -> SqlStr {
    match lock_bound {
        Some(secs) => sql_str(format!(
            "SET STATEMENT max_statement_time = {secs} FOR {sql}"
        )),
        None => sql_str(sql),
    }
}

/// `n` copies of `one`, comma-separated.
fn placeholders(one: &str, n: usize) -> String {
    vec![one; n].join(", ")
}

/// `name` as a quoted identifier. Names here are validated identifiers
/// (`[A-Za-z_][A-Za-z0-9_]*`), so they never contain a backquote.
pub(crate) fn quote(name: &str) -> String {
    format!("`{name}`")
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
                .keys
                .current
                .as_str()
                .starts_with("SET STATEMENT max_statement_time = 0.400 FOR SELECT")
        );
        assert!(!maria.keys.purge.as_str().starts_with("SET STATEMENT"));
        assert!(!maria.keys.get.as_str().starts_with("SET STATEMENT"));
        assert!(
            maria
                .keys
                .get_in_transaction
                .as_str()
                .starts_with("SET STATEMENT")
        );
        let mysql = Statements::new(&Names::new("kv"), None);
        assert!(mysql.keys.current.as_str().starts_with("SELECT version"));
        assert!(mysql.draw.as_str().contains("`kv_version_seq`"));
    }

    #[test]
    fn many_row_statements_have_a_placeholder_per_value() {
        let maria = Statements::new(&Names::new("kv"), Some("0.400"));
        let read = maria.current_rows(3);
        assert!(read.as_str().starts_with("SET STATEMENT"));
        assert_eq!(
            read.as_str().matches("WHERE `key` = ? FOR UPDATE)").count(),
            3
        );
        assert_eq!(read.as_str().matches(" UNION ALL ").count(), 2);
        assert!(
            maria
                .forget_drawn
                .as_str()
                .ends_with("WHERE id >= ? AND id <= ? ORDER BY id LIMIT ?")
        );
        assert!(maria.draw_rows(3).as_str().ends_with("VALUES (), (), ()"));
        let upsert = maria.upsert_rows(2);
        assert!(
            upsert
                .as_str()
                .contains("VALUES (?, ?, ?, ?), (?, ?, ?, ?) ON DUPLICATE")
        );
    }
}
