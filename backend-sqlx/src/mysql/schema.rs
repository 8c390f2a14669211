//! The store's tables in a MySQL or MariaDB database: created when missing, checked
//! when found, registered in `pooledstore_meta` with their schema version.
//!
//! Every table is InnoDB (transactions, row locks; the sessions' `NO_ENGINE_SUBSTITUTION`
//! makes a server without it refuse to create them). The store's table has `key
//! VARBINARY(1024)` as its primary key, so keys compare and sort bytewise (a binary
//! string has no collation, never a `_ci` one), and `value LONGBLOB`, which holds any
//! value `max_value_bytes` allows. Versions come from a separate table with an
//! `AUTO_INCREMENT` key. DDL commits implicitly in MySQL, so each statement is
//! idempotent (`IF NOT EXISTS`, `INSERT IGNORE`) and concurrent opens agree.

use sqlx::mysql::MySqlConnection;
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, Result, StoreError};

use super::engine::MysqlEngine;
use super::statements::quote;
use crate::common::engine::errors::map_error;
use crate::common::engine::schema::{Catalog, META_TABLE, SCHEMA_VERSION, check};
use crate::common::engine::statements::sql_str;
use crate::common::names::Names;

/// The store table's columns: name, `DATA_TYPE`, and the length of binary columns.
const LAYOUT: [(&str, &str); 4] = [
    ("key", "varbinary"),
    ("value", "longblob"),
    ("version", "bigint"),
    ("expires_at", "bigint"),
];

/// Creates the tables if missing, checks the ones found, and returns the table's
/// schema version. `Unsupported` for a newer schema; `Corrupt` for a table of that
/// name that is not a store's, or not InnoDB.
pub(crate) async fn prepare(
    conn: &mut MySqlConnection,
    names: &Names,
    instruments: &PoolInstruments,
) -> Result<i64> {
    let fail = |e| map_error::<MysqlEngine>(e, "open", None, instruments);
    for statement in create_statements(names) {
        sqlx::query(sql_str(statement))
            .execute(&mut *conn)
            .await
            .map_err(fail)?;
    }
    let found = check::<MysqlEngine>(conn, names, instruments).await?;
    sqlx::query(sql_str(format!(
        "INSERT IGNORE INTO {META_TABLE} (table_name, schema_version) VALUES (?, {SCHEMA_VERSION})"
    )))
    .bind(&names.table)
    .execute(&mut *conn)
    .await
    .map_err(fail)?;
    Ok(found.unwrap_or(SCHEMA_VERSION))
}

/// The meta table, the sequence table and the store's table, each if missing.
fn create_statements(names: &Names) -> [String; 3] {
    let table = quote(&names.table);
    let sequence = quote(&names.sequence);
    let index = quote(&names.expiry_index);
    [
        format!(
            "CREATE TABLE IF NOT EXISTS {META_TABLE} (table_name VARCHAR(64) NOT NULL PRIMARY \
             KEY, schema_version BIGINT NOT NULL) ENGINE=InnoDB"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {sequence} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY \
             KEY) ENGINE=InnoDB"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, \
             `value` LONGBLOB NOT NULL, version BIGINT NOT NULL, expires_at BIGINT NULL, \
             KEY {index} (expires_at)) ENGINE=InnoDB"
        ),
    ]
}

impl Catalog for MysqlEngine {
    async fn registered(conn: &mut MySqlConnection, names: &Names) -> sqlx::Result<Option<i64>> {
        sqlx::query_scalar(sql_str(format!(
            "SELECT schema_version FROM {META_TABLE} WHERE table_name = ?"
        )))
        .bind(&names.table)
        .fetch_optional(&mut *conn)
        .await
    }

    /// The table must have exactly the store's columns (`key` 1024 bytes), and both it
    /// and the sequence table must be InnoDB.
    async fn check_layout(
        conn: &mut MySqlConnection,
        names: &Names,
        instruments: &PoolInstruments,
    ) -> Result<()> {
        let fail = |e| map_error::<MysqlEngine>(e, "open", None, instruments);
        let columns: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), \
             CAST(CHARACTER_MAXIMUM_LENGTH AS SIGNED) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        )
        .bind(&names.table)
        .fetch_all(&mut *conn)
        .await
        .map_err(fail)?;
        let engines: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(COALESCE(ENGINE, '') AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?, ?)",
        )
        .bind(&names.table)
        .bind(&names.sequence)
        .fetch_all(&mut *conn)
        .await
        .map_err(fail)?;
        let layout_ok = columns.len() == LAYOUT.len()
            && columns
                .iter()
                .zip(LAYOUT)
                .all(|((name, kind, length), (n, t))| {
                    name == n
                        && kind.eq_ignore_ascii_case(t)
                        && (n != "key" || *length == Some(1024))
                });
        if !layout_ok {
            return Err(StoreError::new(
                ErrorKind::Corrupt,
                format!(
                    "{} exists but is not a pooledstore table (expected the columns key \
                     VARBINARY(1024), value LONGBLOB, version BIGINT, expires_at BIGINT)",
                    names.table
                ),
            ));
        }
        if engines.len() != 2 || !engines.iter().all(|e| e.eq_ignore_ascii_case("InnoDB")) {
            return Err(StoreError::new(
                ErrorKind::Corrupt,
                format!(
                    "{} and {} must be InnoDB tables (found engines {engines:?})",
                    names.table, names.sequence
                ),
            ));
        }
        Ok(())
    }
}
