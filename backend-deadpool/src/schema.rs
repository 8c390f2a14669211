//! Creating or checking the store's tables on open, in one transaction.

use rusqlite::{Connection, OptionalExtension, params};
use sqlite_common::schema::{
    Column, META_TABLE, SCHEMA_VERSION, Setup, TABLE_COLUMNS, TABLE_EXISTS, decide_setup,
};
use storage_api::{ErrorKind, StoreError};

use crate::errors::DbError;
use crate::ops::{Ctx, write_tx};

/// Checks the schema with reads alone and, only when tables must be created or the
/// table registered, writes in one transaction (so an existing store opens while
/// another process holds the write lock). A table written by a newer schema is
/// `Unsupported`, one of the right name with another layout `Corrupt`, and nothing is
/// changed. Idempotent.
pub(crate) fn prepare(conn: &mut Connection, ctx: &Ctx) -> Result<(), DbError> {
    let has_meta = conn.query_row(TABLE_EXISTS, params![META_TABLE], |row| {
        row.get::<_, i64>(0)
    })? > 0;
    let version = if has_meta {
        stored_version(conn, ctx)?
    } else {
        None
    };
    let columns = table_columns(conn, ctx.table())?;
    if let Setup::Ready(_) = decide_setup(ctx.table(), has_meta, version, &columns)? {
        return Ok(());
    }
    write_tx(conn, |tx| {
        if let Some(found) = stored_version(tx, ctx)?
            && found > SCHEMA_VERSION
        {
            return Err(StoreError::new(
                ErrorKind::Unsupported,
                format!(
                    "table {} has schema version {found}; this build understands up to \
                     {SCHEMA_VERSION}",
                    ctx.table()
                ),
            )
            .into());
        }
        for statement in &ctx.sql().create {
            tx.execute_batch(statement)?;
        }
        tx.execute(&ctx.sql().register, params![ctx.table()])?;
        Ok(())
    })
}

fn table_columns(conn: &Connection, table: &str) -> Result<Vec<Column>, DbError> {
    let mut stmt = conn.prepare(TABLE_COLUMNS)?;
    let rows = stmt.query_map(params![table], |row| {
        Ok(Column {
            name: row.get(0)?,
            decl_type: row.get(1)?,
            pk: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn stored_version(conn: &Connection, ctx: &Ctx) -> Result<Option<i64>, DbError> {
    let has_meta = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            params![META_TABLE],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !has_meta {
        return Ok(None);
    }
    let found = conn
        .query_row(&ctx.sql().schema_version, params![ctx.table()], |row| {
            row.get(0)
        })
        .optional()?;
    Ok(found)
}
