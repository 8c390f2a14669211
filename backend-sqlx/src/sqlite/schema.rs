//! The database's journal mode and the store's schema, set up once per open on a
//! dedicated connection before the pool opens.

use std::path::Path;

use sqlx::{Connection, SqliteConnection};
use storage_api::schema::SCHEMA_VERSION;
use storage_api::{ErrorKind, PoolInstruments, Result, StoreError, StoreOptions};

use super::errors::map_error;
use super::statements::Statements;

/// Applies the journal mode and creates or checks the schema, in one transaction.
/// Returns the schema version the database is at.
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
