//! [`MysqlEngine`]: what a MySQL or MariaDB store is to the shared layer: its
//! statements, how a put draws its version, and what its health check reads.

use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use sqlx::mysql::{MySql, MySqlQueryResult, MySqlRow};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, SqlStr};
use storage_api::{ErrorKind, Result, StoreError};

use super::statements::{BEGIN_READ_ONLY, BEGIN_READ_WRITE, Statements};
use crate::common::engine::lease::Lease;
use crate::common::engine::queries::KeyedRow;
use crate::common::engine::sessions::Sessions;
use crate::common::engine::statements::KeyStatements;
use crate::common::engine::{Engine, NewRow};

/// What every session's setup reads back, in its own round trip, for the health check:
/// the server's version and the session settings the store relies on (strict SQL mode,
/// the lock wait bound), as the server took them.
pub(crate) const SESSION_READBACK: &str = "SELECT VERSION(), @@SESSION.sql_mode, \
     CAST(@@SESSION.innodb_lock_wait_timeout AS CHAR)";

/// The step between `AUTO_INCREMENT` values one insert draws.
const AUTOINC_STEP: &str = "SELECT CAST(@@SESSION.auto_increment_increment AS UNSIGNED)";

/// One MySQL or MariaDB store's engine: its statements and the server open found.
#[derive(Debug)]
pub(crate) struct MysqlEngine {
    pub(crate) sql: Statements,
    /// The server's name and version (`VERSION()`), as found at open.
    pub(crate) server_version: String,
    /// The sessions' `auto_increment_increment`, once read.
    pub(crate) autoinc_step: OnceLock<i64>,
    /// What each connection's setup read back of its session.
    pub(crate) sessions: Arc<Sessions>,
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

    /// The rows are locked by the read before: versions are drawn after it.
    const WRITE_READS_ROWS: bool = false;

    /// One `IN (…) FOR UPDATE` read.
    async fn current_rows<'a>(
        &'a self,
        lease: &'a mut Lease<Self>,
        keys: &'a [&'a [u8]],
    ) -> Result<Vec<KeyedRow>> {
        let mut read = sqlx::query_as::<_, KeyedRow>(self.sql.current_rows(keys.len()));
        for key in keys {
            read = read.bind(*key);
        }
        let found = read.fetch_all(lease.start()).await;
        lease.finish("put", found)
    }

    /// One statement draws a version per row, one forgets the drawn rows (checking
    /// they were all this transaction's) and one upserts every row.
    async fn write_rows<'a>(
        &'a self,
        lease: &'a mut Lease<Self>,
        rows: &'a [NewRow<'a>],
    ) -> Result<Vec<i64>> {
        let versions = self.draw_many(lease, rows.len()).await?;
        let mut upsert = sqlx::query(self.sql.upsert_rows(rows.len()));
        for (row, version) in rows.iter().zip(&versions) {
            upsert = upsert
                .bind(row.key)
                .bind(row.value)
                .bind(*version)
                .bind(row.expires_at);
        }
        let written = upsert.execute(lease.start()).await;
        lease.finish("put", written)?;
        Ok(versions)
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

    /// Every session's setup read back what health reports.
    fn health_query(&self) -> Option<&'static str> {
        None
    }

    /// The server version, the sessions' SQL mode and lock wait timeout, as their setup
    /// read them back.
    fn health_detail(&self, row: Option<&MySqlRow>) -> sqlx::Result<(String, String)> {
        match row {
            Some(row) => session_detail(row),
            None => self
                .sessions
                .report()
                .ok_or_else(|| sqlx::Error::Protocol("no session setup was recorded".into())),
        }
    }
}

/// The server version and what the health detail says of the session (its SQL mode and
/// lock wait timeout), from the row of [`SESSION_READBACK`].
pub(crate) fn session_detail(row: &MySqlRow) -> sqlx::Result<(String, String)> {
    let (version, sql_mode, lock_wait): (String, String, String) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let session = format!("; sql_mode {sql_mode}; innodb_lock_wait_timeout {lock_wait} s");
    Ok((version, session))
}

impl MysqlEngine {
    /// The next version: a fresh `AUTO_INCREMENT` value, whose row is removed again.
    async fn draw_version(&self, lease: &mut Lease<Self>) -> Result<i64> {
        let id = self.draw(lease).await?;
        let forgotten = sqlx::query(self.sql.forget.clone())
            .bind(id)
            .execute(lease.start())
            .await;
        lease.finish("put", forgotten)?;
        Ok(id)
    }

    /// `n` fresh versions from one multi-row insert into the sequence table (a simple
    /// insert, whose `AUTO_INCREMENT` values InnoDB allocates together: the first one
    /// and the next `n - 1` at the session's increment, with `innodb_autoinc_lock_mode`
    /// 0 or 1), whose rows are removed again. The removal checks that it removed `n`
    /// rows between the first and the last version, so versions are never assumed that
    /// another transaction drew: where the values were not consecutive (lock mode 2 on
    /// a busy server) the group fails and its puts are retried alone.
    async fn draw_many(&self, lease: &mut Lease<Self>, n: usize) -> Result<Vec<i64>> {
        let drawn = sqlx::query(self.sql.draw_rows(n))
            .execute(lease.start())
            .await;
        let first = version_id(lease.finish("put", drawn)?.last_insert_id())?;
        let step = self.increment(lease).await?;
        let versions: Vec<i64> = (0..n)
            .map(|k| first + step * i64::try_from(k).unwrap_or(i64::MAX))
            .collect();
        let last = versions.last().copied().unwrap_or(first);
        let count = u64::try_from(n).unwrap_or(u64::MAX);
        let forgotten = sqlx::query(self.sql.forget_drawn.clone())
            .bind(first)
            .bind(last)
            .bind(count)
            .execute(lease.start())
            .await;
        let forgotten = lease.finish("put", forgotten)?.rows_affected();
        if forgotten != count {
            return Err(StoreError::new(
                ErrorKind::Backend,
                "put: the versions drawn together were not all this transaction's",
            ));
        }
        Ok(versions)
    }

    /// The session's `auto_increment_increment`, read once per store.
    async fn increment(&self, lease: &mut Lease<Self>) -> Result<i64> {
        if let Some(step) = self.autoinc_step.get() {
            return Ok(*step);
        }
        let read = sqlx::query_scalar::<_, u64>(AUTOINC_STEP)
            .fetch_one(lease.start())
            .await;
        let step = i64::try_from(lease.finish("put", read)?)
            .unwrap_or(1)
            .max(1);
        Ok(*self.autoinc_step.get_or_init(|| step))
    }

    /// A fresh `AUTO_INCREMENT` value; its row stays until forgotten.
    async fn draw(&self, lease: &mut Lease<Self>) -> Result<i64> {
        let drawn = sqlx::query(self.sql.draw.clone())
            .execute(lease.start())
            .await;
        version_id(lease.finish("put", drawn)?.last_insert_id())
    }
}

/// A drawn `AUTO_INCREMENT` value as a version.
fn version_id(id: u64) -> Result<i64> {
    i64::try_from(id).map_err(|_| {
        StoreError::new(
            ErrorKind::Corrupt,
            "put: the version sequence is past the largest version",
        )
    })
}
