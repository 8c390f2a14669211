//! The shared SQLite statements ([`SqliteSql`]) as ready-to-run sqlx strings.

use std::ops::Bound;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};
use storage_api::schema::SqliteSql;

/// Every statement this backend runs against the store's table, built once per store.
///
/// The table name was validated as an identifier before it reached [`SqliteSql`];
/// every value is bound as a parameter.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    sql: SqliteSql,
    /// The `CREATE` statements, in order; the first creates the meta table.
    pub(crate) create: Vec<SqlStr>,
    pub(crate) register: SqlStr,
    pub(crate) schema_version: SqlStr,
    pub(crate) get: SqlStr,
    pub(crate) live_version: SqlStr,
    pub(crate) next_version: SqlStr,
    pub(crate) upsert: SqlStr,
    pub(crate) delete: SqlStr,
    pub(crate) purge: SqlStr,
}

impl Statements {
    /// The statements for `table`, a validated identifier.
    pub(crate) fn new(table: &str) -> Self {
        let sql = SqliteSql::new(table);
        Self {
            create: sql.create.iter().map(|s| sql_str(s)).collect(),
            register: sql_str(&sql.register),
            schema_version: sql_str(&sql.schema_version),
            get: sql_str(&sql.get),
            live_version: sql_str(&sql.live_version),
            next_version: sql_str(&sql.next_version),
            upsert: sql_str(&sql.upsert),
            delete: sql_str(&sql.delete),
            purge: sql_str(&sql.purge),
            sql,
        }
    }

    /// The scan between `lower` and `upper`; see [`SqliteSql::scan`] for its parameters.
    pub(crate) fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> SqlStr {
        AssertSqlSafe(self.sql.scan(lower, upper)).into_sql_str()
    }
}

/// A statement string shared cheaply between calls.
fn sql_str(sql: &str) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(sql)).into_sql_str()
}
