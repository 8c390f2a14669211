//! An sqlx `SqlitePool` used directly, running pooledstore's statements.

use std::path::Path;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, SqlStr, Sqlite, Transaction};

use crate::drive::Target;
use crate::ops::{MAX_CAS_ATTEMPTS, Op, OpResult, modified};
use crate::plan::{SCAN_ROWS, pool_size};
use crate::sql::{Statements, TABLE, now_millis};
use crate::targets::{ACQUIRE_TIMEOUT, BUSY_TIMEOUT, owned_rows};

/// The statements as sqlx strings, cloned per query without copying.
#[derive(Debug)]
struct SqlxStatements {
    get: SqlStr,
    live_version: SqlStr,
    next_version: SqlStr,
    upsert: SqlStr,
    scan_from: SqlStr,
}

impl SqlxStatements {
    fn new() -> Self {
        let s = Statements::new();
        let shared = |sql: &str| AssertSqlSafe(std::sync::Arc::<str>::from(sql)).into_sql_str();
        Self {
            get: shared(&s.sql.get),
            live_version: shared(&s.sql.live_version),
            next_version: shared(&s.sql.next_version),
            upsert: shared(&s.sql.upsert),
            scan_from: shared(&s.scan_from),
        }
    }
}

/// An sqlx SQLite pool of [`pool_size`] connections, set up as backend-sqlx sets up
/// its own: no ping before each acquire (sqlx's default pings, one more round trip
/// to the connection's worker thread per checkout), otherwise sqlx's defaults.
#[derive(Debug)]
pub(crate) struct RawSqlx {
    pool: SqlitePool,
    sql: SqlxStatements,
}

/// The error kind of an sqlx error.
pub(crate) fn classify(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::PoolTimedOut => "timeout",
        sqlx::Error::PoolClosed => "closed",
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // SQLITE_BUSY and its extended codes, SQLITE_LOCKED.
            Some("5" | "6" | "261" | "517" | "773") => "busy",
            _ => "backend",
        },
        _ => "backend",
    }
}

impl RawSqlx {
    /// Connects the pool to `path` with WAL, `synchronous = NORMAL` and the busy timeout.
    pub(crate) async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let pool = SqlitePoolOptions::new()
            .max_connections(pool_size())
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            sql: SqlxStatements::new(),
        })
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    async fn get(&self, key: &[u8]) -> Result<Option<(Vec<u8>, i64)>, sqlx::Error> {
        let row = sqlx::query(self.sql.get.clone())
            .bind(key)
            .bind(now_millis())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    async fn write(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), sqlx::Error> {
        let version: i64 = sqlx::query_scalar(self.sql.next_version.clone())
            .bind(TABLE)
            .fetch_one(&mut **tx)
            .await?;
        sqlx::query(self.sql.upsert.clone())
            .bind(key)
            .bind(value)
            .bind(version)
            .bind(None::<i64>)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn batch(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (key, value) in pairs {
            self.write(&mut tx, key, value).await?;
        }
        tx.commit().await
    }

    async fn scan(&self, start: &[u8]) -> Result<usize, sqlx::Error> {
        let rows = sqlx::query(self.sql.scan_from.clone())
            .bind(now_millis())
            .bind(start)
            .bind(None::<Vec<u8>>)
            .bind(SCAN_ROWS as i64)
            .fetch_all(&self.pool)
            .await?;
        owned_rows(&rows)
    }

    async fn cas_put(&self, key: &[u8], value: &[u8], expected: i64) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<i64> = sqlx::query_scalar(self.sql.live_version.clone())
            .bind(key)
            .bind(now_millis())
            .fetch_optional(&mut *tx)
            .await?;
        if current != Some(expected) {
            tx.rollback().await?;
            return Ok(false);
        }
        self.write(&mut tx, key, value).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn read_modify_write(&self, key: &[u8]) -> Result<OpResult, sqlx::Error> {
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let Some((value, version)) = self.get(key).await? else {
                return Ok(Err("missing"));
            };
            if self.cas_put(key, &modified(&value), version).await? {
                return Ok(Ok(attempt));
            }
        }
        Ok(Err("cas_exhausted"))
    }

    async fn acquire(&self) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let _: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&mut *conn).await?;
        Ok(())
    }

    async fn run_inner(&self, op: Op) -> Result<OpResult, sqlx::Error> {
        Ok(match op {
            Op::Get(key) => self.get(&key).await?.map(|_| 0).ok_or("missing"),
            Op::Put(key, value) => {
                self.batch(&[(key, value)]).await?;
                Ok(0)
            }
            Op::Batch(pairs) => {
                self.batch(&pairs).await?;
                Ok(0)
            }
            Op::Scan(start) => {
                self.scan(&start).await?;
                Ok(0)
            }
            Op::ReadModifyWrite(key) => self.read_modify_write(&key).await?,
            Op::Acquire => {
                self.acquire().await?;
                Ok(0)
            }
        })
    }
}

impl Target for RawSqlx {
    async fn run(&self, op: Op) -> OpResult {
        self.run_inner(op)
            .await
            .unwrap_or_else(|e| Err(classify(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::build_template;
    use crate::ops::key;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn operations_run_through_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        build_template(&path, 200, 1).unwrap();
        let pool = RawSqlx::open(&path).await.unwrap();
        assert_eq!(pool.run(Op::Get(key(3))).await, Ok(0));
        assert_eq!(pool.run(Op::Get(key(200))).await, Err("missing"));
        assert_eq!(pool.run(Op::Put(key(3), vec![0; 64])).await, Ok(0));
        assert_eq!(pool.run(Op::ReadModifyWrite(key(3))).await, Ok(0));
        let (value, version) = pool.get(&key(3)).await.unwrap().unwrap();
        assert_eq!(&value[..8], &1u64.to_le_bytes());
        assert_eq!(version, 202);
        assert!(!pool.cas_put(&key(3), b"x", 201).await.unwrap());
        assert_eq!(pool.scan(&key(150)).await.unwrap(), 50);
        assert_eq!(pool.run(Op::Acquire).await, Ok(0));
        pool.close().await;
        assert_eq!(pool.run(Op::Acquire).await, Err("closed"));
    }
}
