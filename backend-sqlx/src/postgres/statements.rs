//! The SQL of a PostgreSQL store: one row per key in the store's table (`key bytea`,
//! so ranges and order are bytewise whatever the database's collation), versions drawn
//! from the table's own sequence, and the statements that begin its transactions.
//!
//! Every write first reads the key's row (live or expired) and only then takes a
//! version from the sequence. Inside a serializable transaction that read is what makes
//! versions only ever grow: two transactions that both read and write a key cannot both
//! commit unless one began after the other committed, and the later one draws its
//! version after that commit. Sequences ignore transactions, so without the read a put
//! that drew its version just before another writer's put and delete of the same key
//! committed could still insert the key afterwards, with the older version.
//!
//! Identifiers come from [`Names`] (a validated table name and names derived from it)
//! and are always double-quoted; every value is a bound parameter.

use std::fmt::Write;
use std::ops::Bound;

use sqlx::SqlStr;

use crate::common::engine::statements::{KeyStatements, sql_str};
use crate::common::names::Names;

/// How an upsert replaces the key's row.
const REPLACE: &str = "ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
     version = excluded.version, expires_at = excluded.expires_at";

/// Starts a read-write transaction.
const BEGIN_READ_WRITE: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";
/// Starts a read-only transaction.
const BEGIN_READ_ONLY: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY";

/// Every statement operations run against the store's table, built once per store.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    table: String,
    /// `$1` key, `$2` now (ms) for the reads; `$1` key for the current row (the same
    /// read in and outside transactions: every read is serializable).
    pub(crate) keys: KeyStatements,
    /// `$1` key, `$2` value, `$3` expires_at (ms or NULL): writes the row with the next
    /// version from the sequence, returning it.
    pub(crate) upsert: SqlStr,
    /// `$1` keys: key, version and expires_at of each key's row, live or expired (the
    /// `current` read of many keys at once).
    pub(crate) current_rows: SqlStr,
    /// `$1` keys, `$2` values, `$3` expires_at (arrays of one length, distinct keys):
    /// reads the keys' rows (the read every write makes, in the same statement: its
    /// uncorrelated subquery runs before any row draws a version), then writes each
    /// row with the next version from the sequence, returning key and version.
    pub(crate) upsert_rows: SqlStr,
}

impl Statements {
    /// The statements for the table `names` describes.
    pub(crate) fn new(names: &Names) -> Self {
        let t = quote(&names.table);
        let sequence = quote(&names.sequence);
        let get = sql_str(format!(
            "SELECT value, version, expires_at FROM {t} \
             WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)"
        ));
        Self {
            keys: KeyStatements {
                get_in_transaction: get.clone(),
                get,
                current: sql_str(format!(
                    "SELECT version, expires_at FROM {t} WHERE key = $1"
                )),
                delete: sql_str(format!("DELETE FROM {t} WHERE key = $1")),
                purge: sql_str(format!(
                    "DELETE FROM {t} WHERE expires_at IS NOT NULL AND expires_at <= $1"
                )),
            },
            upsert: sql_str(format!(
                "INSERT INTO {t} (key, value, version, expires_at) \
                 VALUES ($1, $2, nextval('{sequence}'), $3) {REPLACE} RETURNING version"
            )),
            current_rows: sql_str(format!(
                "SELECT key, version, expires_at FROM {t} WHERE key = ANY($1)"
            )),
            upsert_rows: sql_str(format!(
                "WITH found AS (SELECT key FROM {t} WHERE key = ANY($1)) \
                 INSERT INTO {t} (key, value, version, expires_at) \
                 SELECT k, v, nextval('{sequence}'), e \
                 FROM unnest($1::bytea[], $2::bytea[], $3::int8[]) AS u(k, v, e) \
                 WHERE (SELECT count(*) FROM found) >= 0 \
                 {REPLACE} RETURNING key, version"
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

/// The statements that start a transaction on a store's connections. Through a
/// transaction-mode pooler, the session settings (which such a pooler would leak to
/// other clients or lose) are made local to each transaction instead, in the same
/// round trip.
#[derive(Debug, Clone)]
pub(crate) struct BeginStatements {
    pub(crate) read_write: SqlStr,
    pub(crate) read_only: SqlStr,
}

impl BeginStatements {
    /// `lock_timeout` is PostgreSQL's form of the busy timeout (digits and `ms`).
    pub(crate) fn new(transaction_pooler: bool, lock_timeout: &str) -> Self {
        let local = if transaction_pooler {
            format!(
                "; SET LOCAL lock_timeout = '{lock_timeout}'; \
                 SET LOCAL client_min_messages = error"
            )
        } else {
            String::new()
        };
        Self {
            read_write: sql_str(format!("{BEGIN_READ_WRITE}{local}")),
            read_only: sql_str(format!("{BEGIN_READ_ONLY}{local}")),
        }
    }
}

/// `name` as a quoted identifier. Names here are validated identifiers
/// (`[A-Za-z_][A-Za-z0-9_]*`), so they never contain a quote.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{name}\"")
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

    #[test]
    fn through_a_transaction_pooler_session_settings_are_local() {
        let pooled = BeginStatements::new(true, "400ms");
        assert!(pooled.read_only.as_str().starts_with(
            "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY; SET LOCAL lock_timeout = '400ms'"
        ));
        let direct = BeginStatements::new(false, "400ms");
        assert_eq!(direct.read_write.as_str(), BEGIN_READ_WRITE);
    }
}
