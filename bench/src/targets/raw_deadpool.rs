//! A deadpool-sqlite pool used directly: `pool.get()` then `interact`, running the same
//! statements as raw rusqlite.

use std::path::Path;
use std::sync::Arc;

use deadpool_sqlite::{Config, Hook, HookError, Pool, PoolError, Runtime, rusqlite::Connection};

use crate::drive::Target;
use crate::ops::{MAX_CAS_ATTEMPTS, Op, OpResult, modified};
use crate::plan::pool_size;
use crate::sql::Statements;
use crate::targets::{ACQUIRE_TIMEOUT, raw_rusqlite as raw};

/// A deadpool-sqlite pool of [`pool_size`] connections.
#[derive(Debug)]
pub(crate) struct RawDeadpool {
    pool: Pool,
    statements: Arc<Statements>,
}

impl RawDeadpool {
    /// Builds the pool; each new connection gets the shared SQLite settings.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let configure = Hook::async_fn(|conn, _| {
            Box::pin(async move {
                conn.interact(|c| raw::configure(c))
                    .await
                    .map_err(|e| HookError::message(e.to_string()))?
                    .map_err(HookError::Backend)
            })
        });
        let pool = Config::new(path)
            .builder(Runtime::Tokio1)
            .map_err(|e| e.to_string())?
            .max_size(pool_size() as usize)
            .wait_timeout(Some(ACQUIRE_TIMEOUT))
            .post_create(configure)
            .build()
            .map_err(|e| format!("building the deadpool pool: {e}"))?;
        Ok(Self {
            pool,
            statements: Arc::new(Statements::new()),
        })
    }

    /// Checks a connection out and runs `f` on it on the blocking pool.
    async fn interact<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &Statements) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, &'static str> {
        let conn = self.pool.get().await.map_err(|e| classify(&e))?;
        let statements = self.statements.clone();
        conn.interact(move |c| f(c, &statements))
            .await
            .map_err(|_| "interact_failed")?
            .map_err(|e| raw::classify(&e))
    }

    async fn read_modify_write(&self, key: Vec<u8>) -> OpResult {
        let key = Arc::new(key);
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let k = key.clone();
            let Some((value, version)) = self.interact(move |c, s| raw::get(c, s, &k)).await?
            else {
                return Err("missing");
            };
            let k = key.clone();
            let applied = self
                .interact(move |c, s| raw::cas_put(c, s, &k, &modified(&value), version))
                .await?;
            if applied {
                return Ok(attempt);
            }
        }
        Err("cas_exhausted")
    }
}

/// The error kind of a pool error.
fn classify(e: &PoolError) -> &'static str {
    match e {
        PoolError::Timeout(_) => "timeout",
        PoolError::Closed => "closed",
        PoolError::Backend(e) => raw::classify(e),
        _ => "backend",
    }
}

impl Target for RawDeadpool {
    async fn run(&self, op: Op) -> OpResult {
        match op {
            Op::Get(key) => self
                .interact(move |c, s| raw::get(c, s, &key))
                .await?
                .map(|_| 0)
                .ok_or("missing"),
            Op::Put(key, value) => {
                self.interact(move |c, s| raw::put(c, s, &key, &value))
                    .await?;
                Ok(0)
            }
            Op::Batch(pairs) => {
                self.interact(move |c, s| raw::batch(c, s, &pairs)).await?;
                Ok(0)
            }
            Op::Scan(start) => {
                self.interact(move |c, s| raw::scan(c, s, &start)).await?;
                Ok(0)
            }
            Op::ReadModifyWrite(key) => self.read_modify_write(key).await,
            Op::Acquire => {
                self.interact(|c, _| raw::select_one(c)).await?;
                Ok(0)
            }
        }
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
        let pool = RawDeadpool::open(&path).unwrap();
        assert_eq!(pool.run(Op::Get(key(3))).await, Ok(0));
        assert_eq!(pool.run(Op::Get(key(200))).await, Err("missing"));
        assert_eq!(pool.run(Op::Put(key(3), vec![0; 64])).await, Ok(0));
        assert_eq!(pool.run(Op::ReadModifyWrite(key(3))).await, Ok(0));
        let (value, version) = pool
            .interact(|c, s| raw::get(c, s, &key(3)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&value[..8], &1u64.to_le_bytes());
        assert_eq!(version, 202);
        assert_eq!(pool.run(Op::Scan(key(0))).await, Ok(0));
        assert_eq!(pool.run(Op::Acquire).await, Ok(0));
        let busy: i64 = pool
            .interact(|c, _| c.query_row("PRAGMA busy_timeout", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(busy, 5_000);
    }
}
