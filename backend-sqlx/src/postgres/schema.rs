//! The store's schema, set up once per open: the meta table (one row per store table
//! with its schema version), the version sequence, the table and its expiry index.
//!
//! An open whose table is already registered at this version and has the expected
//! layout changes nothing. Otherwise the setup runs in one transaction holding a
//! transaction-level advisory lock, so concurrent opens (of any table) take turns
//! instead of racing `CREATE … IF NOT EXISTS`, which is not safe under concurrency.

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, Result, StoreError};

use super::engine::PgEngine;
use super::statements::quote;
use crate::common::engine::errors::map_error;
use crate::common::engine::schema::{Catalog, META_TABLE, SCHEMA_VERSION, check, check_version};
use crate::common::engine::statements::sql_str;
use crate::common::names::Names;

/// The advisory lock key every schema setup takes ("pooledst" in ASCII).
const SETUP_LOCK: i64 = 0x706f_6f6c_6564_7374;

/// The columns a store table has, in order, with their types.
const LAYOUT: [(&str, &str); 4] = [
    ("key", "bytea"),
    ("value", "bytea"),
    ("version", "bigint"),
    ("expires_at", "bigint"),
];

/// Creates or checks the schema for `names`; returns the schema version found (or
/// created). `lock_timeout_ms` bounds every lock wait of the setup.
pub(crate) async fn prepare(
    conn: &mut PgConnection,
    names: &Names,
    lock_timeout_ms: u64,
    instruments: &PoolInstruments,
) -> Result<i64> {
    let fail = |e| map_error::<PgEngine>(e, "open", None, instruments);
    // In a transaction of its own, so it also runs through a transaction-mode pooler
    // (which may move statements outside a transaction to another server connection).
    let mut probe = conn
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY")
        .await
        .map_err(fail)?;
    let found = PgEngine::registered(&mut probe, names)
        .await
        .map_err(fail)?;
    if let Some(version) = found {
        check_version(names, version)?;
        if PgEngine::check_layout(&mut probe, names, instruments)
            .await
            .is_ok()
        {
            probe.commit().await.map_err(fail)?;
            return Ok(version);
        }
    }
    probe.rollback().await.map_err(fail)?;
    let mut tx = conn
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .map_err(fail)?;
    sqlx::query("SELECT set_config('lock_timeout', $1, true)")
        .bind(format!("{lock_timeout_ms}ms"))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SETUP_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    let [meta, sequence, table, index] = create_statements(names);
    for statement in [meta, sequence, table] {
        sqlx::query(sql_str(statement))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
    }
    // Before the index: `IF NOT EXISTS` skips a name taken by something else.
    let found = check::<PgEngine>(&mut tx, names, instruments).await?;
    sqlx::query(sql_str(index))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    sqlx::query(sql_str(format!(
        "INSERT INTO {META_TABLE} (table_name, schema_version) VALUES ($1, {SCHEMA_VERSION}) \
         ON CONFLICT (table_name) DO NOTHING"
    )))
    .bind(&names.table)
    .execute(&mut *tx)
    .await
    .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    Ok(found.unwrap_or(SCHEMA_VERSION))
}

/// The `CREATE … IF NOT EXISTS` statements, in order: meta table, sequence, table,
/// expiry index.
fn create_statements(names: &Names) -> [String; 4] {
    let table = quote(&names.table);
    let sequence = quote(&names.sequence);
    let index = quote(&names.expiry_index);
    [
        format!(
            "CREATE TABLE IF NOT EXISTS {META_TABLE} (table_name text PRIMARY KEY, \
             schema_version bigint NOT NULL)"
        ),
        format!("CREATE SEQUENCE IF NOT EXISTS {sequence} AS bigint MINVALUE 1"),
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (key bytea PRIMARY KEY, value bytea NOT NULL, \
             version bigint NOT NULL, expires_at bigint)"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_at) \
             WHERE expires_at IS NOT NULL"
        ),
    ]
}

impl Catalog for PgEngine {
    async fn registered(conn: &mut PgConnection, names: &Names) -> sqlx::Result<Option<i64>> {
        let meta_exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(META_TABLE)
            .fetch_one(&mut *conn)
            .await?;
        if !meta_exists {
            return Ok(None);
        }
        sqlx::query_scalar(sql_str(format!(
            "SELECT schema_version FROM {META_TABLE} WHERE table_name = $1"
        )))
        .bind(&names.table)
        .fetch_optional(&mut *conn)
        .await
    }

    /// The table must be a table with exactly the store's columns and types (`key
    /// bytea`: ordering never depends on a collation), and the sequence a sequence.
    async fn check_layout(
        conn: &mut PgConnection,
        names: &Names,
        instruments: &PoolInstruments,
    ) -> Result<()> {
        let fail = |e| map_error::<PgEngine>(e, "open", None, instruments);
        let kinds: (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT (SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)), \
                    (SELECT relkind::text FROM pg_class WHERE oid = to_regclass($2))",
        )
        .bind(quote(&names.table))
        .bind(quote(&names.sequence))
        .fetch_one(&mut *conn)
        .await
        .map_err(fail)?;
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        )
        .bind(quote(&names.table))
        .fetch_all(&mut *conn)
        .await
        .map_err(fail)?;
        let expected = LAYOUT
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()));
        let layout_ok = columns.iter().cloned().eq(expected);
        match kinds {
            (Some(table), Some(sequence)) if table == "r" && sequence == "S" && layout_ok => Ok(()),
            (Some(table), _) if table != "r" || !layout_ok => Err(StoreError::new(
                ErrorKind::Corrupt,
                format!(
                    "{} exists but is not a pooledstore table (expected the columns key bytea, \
                     value bytea, version bigint, expires_at bigint)",
                    names.table
                ),
            )),
            (Some(_), Some(_)) => Err(StoreError::new(
                ErrorKind::Corrupt,
                format!(
                    "{} exists but is not the version sequence of table {}",
                    names.sequence, names.table
                ),
            )),
            _ => Err(StoreError::new(
                ErrorKind::Backend,
                format!(
                    "the table {} or its sequence {} is missing",
                    names.table, names.sequence
                ),
            )),
        }
    }
}
