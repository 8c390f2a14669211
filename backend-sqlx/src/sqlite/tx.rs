//! `Transaction` over one pooled SQLite connection, with leak detection.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use storage_api::backend::InFlight;
use storage_api::{
    Condition, Entry, PutOptions, Result, ScanOptions, Transaction, TxOptions, Version,
};

use super::ops;
use super::shared::{PooledTx, Shared};
use super::writer;
use storage_api::backend::LeakTimer;

/// A transaction holding one pooled connection until commit, rollback or drop.
///
/// Dropping it (or a future of one of its methods) queues a `ROLLBACK` on the
/// connection, which then returns to the pool.
pub(crate) struct SqliteTx {
    shared: Arc<Shared>,
    tx: PooledTx,
    read_only: bool,
    _work: InFlight,
    _leak: LeakTimer,
}

impl fmt::Debug for SqliteTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteTx")
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl SqliteTx {
    /// Starts a transaction, counted as in-flight work until it ends.
    pub(crate) async fn begin(shared: &Arc<Shared>, options: TxOptions) -> Result<Self> {
        let work = shared.enter()?;
        let tx = shared
            .spin(shared.begin("begin", options.read_only))
            .await?;
        Ok(Self {
            shared: Arc::clone(shared),
            tx,
            read_only: options.read_only,
            _work: work,
            _leak: LeakTimer::start(
                shared.options.leak_detection_threshold,
                &shared.instruments,
                "sqlx",
            ),
        })
    }
}

#[async_trait]
impl Transaction for SqliteTx {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        self.shared.check_not_forced()?;
        let now = self.shared.now();
        let s = &self.shared;
        s.spin(ops::get(s, &mut self.tx, key, now)).await
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        self.shared.check_not_forced()?;
        let now = self.shared.now();
        let s = &self.shared;
        s.spin(ops::put(s, &mut self.tx, key, value, options, now))
            .await
    }

    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool> {
        self.shared.check_not_forced()?;
        let now = self.shared.now();
        let s = &self.shared;
        s.spin(ops::delete(s, &mut self.tx, key, condition, now))
            .await
    }

    async fn scan(&mut self, options: ScanOptions) -> Result<Vec<Entry>> {
        self.shared.check_not_forced()?;
        let limit = self.shared.options.limits.scan_limit(&options);
        let now = self.shared.now();
        ops::scan(&self.shared, &mut self.tx, &options, limit, now).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.shared.check_not_forced()?;
        let Self {
            shared,
            tx,
            _work,
            read_only,
            ..
        } = *self;
        shared.spin(shared.commit("commit", tx)).await?;
        if !read_only {
            writer::committed(&shared, 1);
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        let Self {
            shared, tx, _work, ..
        } = *self;
        let rolled_back = shared.spin(tx.rollback()).await;
        rolled_back.map_err(|e| shared.fail("rollback", e))
    }
}
