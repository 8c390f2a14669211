//! Transactions: one pooled connection held from `BEGIN` to `COMMIT`/`ROLLBACK`.
//! Dropping one without finishing rolls it back (see [`Lease`]'s drop) and frees the
//! connection at once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::Connection;
use storage_api::backend::LeakTimer;
use storage_api::{
    Condition, Entry, ErrorKind, Limits, PutOptions, Result, ScanOptions, StoreError, Transaction,
    Version,
};

use crate::connection::Autocheckpoint;
use crate::errors::DbError;
use crate::lease::Lease;
use crate::ops::{self, Ctx};
use crate::pool::ConnPool;

/// A transaction of a [`DeadpoolStore`](crate::DeadpoolStore).
#[derive(Debug)]
pub(crate) struct DeadpoolTransaction {
    lease: Lease,
    pool: Arc<ConnPool>,
    ctx: Arc<Ctx>,
    limits: Limits,
    /// Warns and counts once if the transaction outlives the leak threshold.
    leak_watch: Option<LeakTimer>,
}

impl DeadpoolTransaction {
    /// Wraps a lease whose connection has just run `BEGIN`. With a leak threshold, a
    /// transaction still open after it is warned about and counted once.
    pub(crate) fn new(
        lease: Lease,
        pool: Arc<ConnPool>,
        ctx: Arc<Ctx>,
        limits: Limits,
        leak_threshold: Option<Duration>,
    ) -> Self {
        let leak_watch = Some(LeakTimer::start(
            leak_threshold,
            pool.instruments(),
            "deadpool",
        ));
        Self {
            lease,
            pool,
            ctx,
            limits,
            leak_watch,
        }
    }

    async fn run<R, F>(&mut self, op: &'static str, f: F) -> Result<R>
    where
        F: FnOnce(&Connection, &Ctx) -> std::result::Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        self.usable(op)?;
        let ctx = Arc::clone(&self.ctx);
        let result = self
            .lease
            .run(Autocheckpoint::AsIs, move |conn| {
                if conn.is_autocommit() {
                    return Err(ended(op));
                }
                let out = f(conn, &ctx);
                if conn.is_autocommit() {
                    return Err(ended(op));
                }
                out
            })
            .await;
        result.map_err(|e| self.pool.fail(op, e))
    }

    async fn finish(mut self: Box<Self>, op: &'static str, sql: &'static str) -> Result<()> {
        self.leak_watch = None;
        if op == "commit" {
            self.usable(op)?;
        }
        let result = self
            .lease
            .run(Autocheckpoint::AsIs, move |conn| {
                if conn.is_autocommit() {
                    // Nothing open: a rollback has nothing to do, a commit nothing to keep.
                    return if sql == "ROLLBACK" {
                        Ok(())
                    } else {
                        Err(ended(op))
                    };
                }
                conn.execute_batch(sql).map_err(DbError::from)
            })
            .await;
        result.map_err(|e| self.pool.fail(op, e))
    }

    fn usable(&self, op: &str) -> Result<()> {
        if self.lease.was_interrupted() {
            return Err(StoreError::new(
                ErrorKind::Backend,
                format!(
                    "{op}: an earlier operation of this transaction was cancelled; roll it back"
                ),
            ));
        }
        Ok(())
    }
}

fn ended(op: &str) -> DbError {
    StoreError::new(
        ErrorKind::Backend,
        format!("{op}: the database ended the transaction; start a new one"),
    )
    .into()
}

#[async_trait]
impl Transaction for DeadpoolTransaction {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        let key = key.to_vec();
        self.run("get", move |conn, ctx| ops::get(conn, ctx, &key, ctx.now()))
            .await
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.run("put", move |conn, ctx| {
            let mut versions = ops::Versions::drawn();
            ops::put(conn, ctx, &mut versions, &key, &value, options, ctx.now())
        })
        .await
    }

    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool> {
        let key = key.to_vec();
        self.run("delete", move |conn, ctx| {
            ops::delete(conn, ctx, &key, condition, ctx.now())
        })
        .await
    }

    async fn scan(&mut self, options: ScanOptions) -> Result<Vec<Entry>> {
        let limit = self.limits.scan_limit(&options);
        self.run("scan", move |conn, ctx| {
            ops::scan(conn, ctx, &options, limit, ctx.now())
        })
        .await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.finish("commit", "COMMIT").await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.finish("rollback", "ROLLBACK").await
    }
}
