//! [`PgEngine`]: what a PostgreSQL store is to the shared layer: its statements, how its
//! transactions begin, and what its health check reads.

use std::collections::HashMap;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use sqlx::postgres::{PgQueryResult, PgRow, Postgres};
use sqlx::{Row, SqlStr};
use storage_api::{ErrorKind, Result, StoreError};

use super::statements::{BeginStatements, Statements};
use crate::common::engine::lease::Lease;
use crate::common::engine::queries::KeyedRow;
use crate::common::engine::sessions::Sessions;
use crate::common::engine::statements::KeyStatements;
use crate::common::engine::{Engine, NewRow};

/// The health check's round trip through a transaction-mode pooler (elsewhere every
/// session's setup reads the same): the server's version and whether this session is
/// encrypted. Simple query protocol, so it needs no prepared statement (and works
/// through the pooler). Behind a pooler, `pg_stat_ssl` describes the pooler's
/// connection to the server.
const HEALTH_QUERY: &str = "SELECT current_setting('server_version'), \
     coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)";

/// One PostgreSQL store's engine: its statements and what open found.
#[derive(Debug)]
pub(crate) struct PgEngine {
    pub(crate) sql: Statements,
    pub(crate) begin: BeginStatements,
    /// The `application_name` of every connection of this store.
    pub(crate) application_name: String,
    /// Whether connections go through a transaction-mode pooler: every statement runs
    /// in a transaction.
    pub(crate) transaction_pooler: bool,
    /// What open found about the server's free connection slots, when the pool cannot
    /// be filled; reported by every health check.
    pub(crate) sizing_warning: Option<String>,
    /// What each connection's setup read of its session (nothing through a pooler).
    pub(crate) sessions: Arc<Sessions>,
}

impl Engine for PgEngine {
    type Db = Postgres;
    const STORE: &'static str = "PostgresStore";
    const TRANSACTION: &'static str = "PgTx";

    fn describe(&self, out: &mut fmt::DebugStruct<'_, '_>) {
        out.field("application_name", &self.application_name);
    }

    fn statements(&self) -> &KeyStatements {
        &self.sql.keys
    }

    fn scan_statement(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> SqlStr {
        self.sql.scan(lower, upper)
    }

    /// One upsert drawing the version from the table's sequence.
    async fn write<'a>(&'a self, lease: &'a mut Lease<Self>, row: NewRow<'a>) -> Result<i64> {
        let written = sqlx::query_scalar::<_, i64>(self.sql.upsert.clone())
            .bind(row.key)
            .bind(row.value)
            .bind(row.expires_at)
            .fetch_one(lease.start())
            .await;
        lease.finish("put", written)
    }

    /// The upsert of many rows reads them in the same statement.
    const WRITE_READS_ROWS: bool = true;

    /// One `= ANY($1)` read.
    async fn current_rows<'a>(
        &'a self,
        lease: &'a mut Lease<Self>,
        keys: &'a [&'a [u8]],
    ) -> Result<Vec<KeyedRow>> {
        let found = sqlx::query_as::<_, KeyedRow>(self.sql.current_rows.clone())
            .bind(keys)
            .fetch_all(lease.start())
            .await;
        lease.finish("put", found)
    }

    /// One upsert over `unnest` of the rows, each drawing its version from the sequence.
    async fn write_rows<'a>(
        &'a self,
        lease: &'a mut Lease<Self>,
        rows: &'a [NewRow<'a>],
    ) -> Result<Vec<i64>> {
        let keys: Vec<&[u8]> = rows.iter().map(|row| row.key).collect();
        let values: Vec<&[u8]> = rows.iter().map(|row| row.value).collect();
        let expiries: Vec<Option<i64>> = rows.iter().map(|row| row.expires_at).collect();
        let written = sqlx::query_as::<_, (Vec<u8>, i64)>(self.sql.upsert_rows.clone())
            .bind(keys)
            .bind(values)
            .bind(expiries)
            .fetch_all(lease.start())
            .await;
        let versions: HashMap<Vec<u8>, i64> = lease.finish("put", written)?.into_iter().collect();
        rows.iter()
            .map(|row| versions.get(row.key).copied().ok_or_else(missing_version))
            .collect()
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    fn begin_statement(&self, read_only: bool) -> SqlStr {
        if read_only {
            self.begin.read_only.clone()
        } else {
            self.begin.read_write.clone()
        }
    }

    /// Through a transaction-mode pooler every statement runs in a transaction.
    fn reads_in_transaction(&self) -> bool {
        self.transaction_pooler
    }

    /// Through a transaction-mode pooler, which runs no session setup, the check reads
    /// the session itself.
    fn health_query(&self) -> Option<&'static str> {
        self.transaction_pooler.then_some(HEALTH_QUERY)
    }

    /// Whether the session uses TLS (each session's, as its setup read it, or the
    /// row's) and, when open found too few free connection slots on the server to fill
    /// the pool, that too.
    fn health_detail(&self, row: Option<&PgRow>) -> sqlx::Result<(String, String)> {
        let (version, mut detail) = match row {
            Some(row) => {
                let (version, encrypted): (String, bool) = (row.try_get(0)?, row.try_get(1)?);
                (version, session_encryption(encrypted).to_owned())
            }
            None => self.sessions.report().ok_or_else(no_session)?,
        };
        if let Some(warning) = &self.sizing_warning {
            detail.push_str("; ");
            detail.push_str(warning);
        }
        Ok((version, detail))
    }
}

/// The error for a row the multi-row upsert did not return.
fn missing_version() -> StoreError {
    StoreError::new(
        ErrorKind::Backend,
        "put: the upsert returned no version for a row",
    )
}

/// The error for a health check that found no session's setup recorded (the check's
/// connection was set up, so this is a bug).
fn no_session() -> sqlx::Error {
    sqlx::Error::Protocol("no session setup was recorded".into())
}

/// What the health detail says about the session's encryption.
pub(crate) fn session_encryption(encrypted: bool) -> &'static str {
    if encrypted {
        "; session encrypted (TLS)"
    } else {
        "; session not encrypted"
    }
}
