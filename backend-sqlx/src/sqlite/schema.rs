//! The database's journal mode and the store's schema, set up once per open on a
//! dedicated connection before the pool opens.

use std::path::Path;

use sqlite_common::schema::{
    Column, META_TABLE, SCHEMA_VERSION, Setup, TABLE_COLUMNS, TABLE_EXISTS, decide_setup,
};
use sqlx::{Connection, SqliteConnection};
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, Result, StoreError, StoreOptions};

use super::errors::map_error;
use super::statements::Statements;

/// Applies the journal mode and checks the schema with reads alone; only when tables
/// must be created or the table registered does it write, in one transaction (so an
/// existing store opens while another process holds the write lock). A table of the
/// right name with another layout is `Corrupt`. Returns the schema version the
/// database is at.
pub(crate) async fn prepare(
    conn: &mut SqliteConnection,
    options: &StoreOptions,
    wal: bool,
    path: &Path,
    sql: &Statements,
    instruments: &PoolInstruments,
) -> Result<i64> {
    let fail = |e| map_error(e, "open", None, path, instruments);
    check_journal_mode(conn, wal, path, instruments).await?;
    let (has_meta, version, columns) = read_setup(conn, options, sql).await.map_err(fail)?;
    if let Setup::Ready(version) = decide_setup(&options.table, has_meta, version, &columns)? {
        return Ok(version);
    }
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(fail)?;
    let (create_meta, create_rest) = sql
        .create
        .split_first()
        .ok_or_else(|| StoreError::new(ErrorKind::Backend, "open: no schema statements"))?;
    sqlx::query(create_meta.clone())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    let found: Option<i64> = sqlx::query_scalar(sql.schema_version.clone())
        .bind(&options.table)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
    if let Some(found) = found.filter(|v| *v > SCHEMA_VERSION) {
        return Err(StoreError::new(
            ErrorKind::Unsupported,
            format!(
                "table {} has schema version {found}, newer than the version this build \
                 supports ({SCHEMA_VERSION})",
                options.table
            ),
        ));
    }
    for statement in create_rest {
        sqlx::query(statement.clone())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
    }
    sqlx::query(sql.register.clone())
        .bind(&options.table)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    Ok(found.unwrap_or(SCHEMA_VERSION))
}

/// Whether the meta table exists, the table's registered version and its columns.
async fn read_setup(
    conn: &mut SqliteConnection,
    options: &StoreOptions,
    sql: &Statements,
) -> sqlx::Result<(bool, Option<i64>, Vec<Column>)> {
    let has_meta: i64 = sqlx::query_scalar(TABLE_EXISTS)
        .bind(META_TABLE)
        .fetch_one(&mut *conn)
        .await?;
    let version: Option<i64> = if has_meta > 0 {
        sqlx::query_scalar(sql.schema_version.clone())
            .bind(&options.table)
            .fetch_optional(&mut *conn)
            .await?
    } else {
        None
    };
    let columns = sqlx::query_as::<_, (String, String, i64)>(TABLE_COLUMNS)
        .bind(&options.table)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(name, decl_type, pk)| Column {
            name,
            decl_type,
            pk,
        })
        .collect();
    Ok((has_meta > 0, version, columns))
}

/// Makes the file's journal mode match `enable_wal`: WAL must really be on (every
/// pooled connection also asks for it); otherwise a WAL database is switched back to
/// a rollback journal once, here, while no other pooled connection is open.
async fn check_journal_mode(
    conn: &mut SqliteConnection,
    enable_wal: bool,
    path: &Path,
    instruments: &PoolInstruments,
) -> Result<()> {
    let fail = |e| map_error(e, "open", None, path, instruments);
    let statement = if enable_wal {
        "PRAGMA journal_mode"
    } else {
        "PRAGMA journal_mode = DELETE"
    };
    let mode: String = sqlx::query_scalar(statement)
        .fetch_one(&mut *conn)
        .await
        .map_err(fail)?;
    let wanted = if enable_wal { "wal" } else { "delete" };
    if !mode.eq_ignore_ascii_case(wanted) {
        return Err(StoreError::new(
            ErrorKind::Unsupported,
            format!(
                "{}: SQLite kept journal mode {mode} where db_enable_wal asks for {wanted}",
                path.display()
            ),
        ));
    }
    Ok(())
}
