//! Creating or checking the store's tables on open, in one transaction.

use rusqlite::{Connection, OptionalExtension, params};
use storage_api::schema::{META_TABLE, SCHEMA_VERSION};
use storage_api::{ErrorKind, StoreError};

use crate::errors::DbError;
use crate::ops::{Ctx, write_tx};

/// Creates the tables and registers the store's table if missing; a table written by a
/// newer schema is `Unsupported` and nothing is changed. Idempotent.
pub(crate) fn prepare(conn: &mut Connection, ctx: &Ctx) -> Result<(), DbError> {
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
