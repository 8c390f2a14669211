//! [`MysqlEngine`]: what a MySQL or MariaDB store is to the shared layer: its
//! statements, how a put draws its version, and what its health check reads.

use std::fmt;
use std::ops::Bound;

use sqlx::mysql::{MySql, MySqlQueryResult, MySqlRow};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, SqlStr};
use storage_api::{ErrorKind, Result, StoreError};

use super::statements::{BEGIN_READ_ONLY, BEGIN_READ_WRITE, Statements};
use crate::common::engine::lease::Lease;
use crate::common::engine::statements::KeyStatements;
use crate::common::engine::{Engine, NewRow};

/// The health check's round trip: the server's version and the session settings the
/// store relies on (strict SQL mode, the lock wait bound). Text protocol, so it needs
/// no prepared statement.
const HEALTH_QUERY: &str = "SELECT VERSION(), @@SESSION.sql_mode, \
     CAST(@@SESSION.innodb_lock_wait_timeout AS CHAR)";

/// One MySQL or MariaDB store's engine: its statements and the server open found.
#[derive(Debug)]
pub(crate) struct MysqlEngine {
    pub(crate) sql: Statements,
    /// The server's name and version (`VERSION()`), as found at open.
    pub(crate) server_version: String,
}

impl Engine for MysqlEngine {
    type Db = MySql;
    const STORE: &'static str = "MysqlStore";
    const TRANSACTION: &'static str = "MysqlTx";

    fn describe(&self, out: &mut fmt::DebugStruct<'_, '_>) {
        out.field("server_version", &self.server_version);
    }

    fn statements(&self) -> &KeyStatements {
        &self.sql.keys
    }

    fn scan_statement(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> SqlStr {
        self.sql.scan(lower, upper)
    }

    /// Draws a version, then updates the locked row or inserts a new one.
    async fn write<'a>(&'a self, lease: &'a mut Lease<Self>, row: NewRow<'a>) -> Result<i64> {
        let version = self.draw_version(lease).await?;
        let written = if row.replaces {
            sqlx::query(self.sql.update.clone())
                .bind(row.value)
                .bind(version)
                .bind(row.expires_at)
                .bind(row.key)
        } else {
            sqlx::query(self.sql.insert.clone())
                .bind(row.key)
                .bind(row.value)
                .bind(version)
                .bind(row.expires_at)
        }
        .execute(lease.start())
        .await;
        lease.finish("put", written)?;
        Ok(version)
    }

    fn rows_affected(result: &MySqlQueryResult) -> u64 {
        result.rows_affected()
    }

    /// The session's isolation is `SERIALIZABLE`, so these start serializable
    /// transactions.
    fn begin_statement(&self, read_only: bool) -> SqlStr {
        let statement = if read_only {
            BEGIN_READ_ONLY
        } else {
            BEGIN_READ_WRITE
        };
        AssertSqlSafe(statement).into_sql_str()
    }

    /// Single reads are one autocommit statement, a consistent snapshot.
    fn reads_in_transaction(&self) -> bool {
        false
    }

    const HEALTH_QUERY: &'static str = HEALTH_QUERY;

    /// The session's SQL mode and lock wait timeout.
    fn health_detail(&self, row: &MySqlRow) -> sqlx::Result<(String, String)> {
        let (version, sql_mode, lock_wait): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let session = format!("; sql_mode {sql_mode}; innodb_lock_wait_timeout {lock_wait} s");
        Ok((version, session))
    }
}

impl MysqlEngine {
    /// The next version: a fresh `AUTO_INCREMENT` value, whose row is removed again.
    async fn draw_version(&self, lease: &mut Lease<Self>) -> Result<i64> {
        let drawn = sqlx::query(self.sql.draw.clone())
            .execute(lease.start())
            .await;
        let id = lease.finish("put", drawn)?.last_insert_id();
        let id = i64::try_from(id).map_err(|_| {
            StoreError::new(
                ErrorKind::Corrupt,
                "put: the version sequence is past the largest version",
            )
        })?;
        let forgotten = sqlx::query(self.sql.forget.clone())
            .bind(id)
            .execute(lease.start())
            .await;
        lease.finish("put", forgotten)?;
        Ok(id)
    }
}
