//! [`EngineTx`]: a `Transaction` over one pooled connection, serializable (`READ ONLY`
//! for read-only ones), with leak detection.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use storage_api::backend::{InFlight, LeakTimer};
use storage_api::{
    Condition, Entry, PutOptions, Result, ScanOptions, Transaction, TxOptions, Version,
};

use super::Engine;
use super::lease::Lease;
use super::ops;
use super::shared::Shared;

/// A transaction holding one pooled connection until commit, rollback or drop.
///
/// Dropping it (or a future of one of its methods) rolls back and returns the
/// connection, or closes it if a statement was cut off mid-flight.
pub(crate) struct EngineTx<E: Engine> {
    shared: Arc<Shared<E>>,
    lease: Lease<E>,
    read_only: bool,
    _work: InFlight,
    _leak: LeakTimer,
}

impl<E: Engine> fmt::Debug for EngineTx<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(E::TRANSACTION)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl<E: Engine> EngineTx<E> {
    /// Starts a transaction, counted as in-flight work until it ends.
    pub(crate) async fn begin(shared: &Arc<Shared<E>>, options: TxOptions) -> Result<Self> {
        let work = shared.enter()?;
        let lease = shared.begin_lease(options.read_only).await?;
        Ok(Self {
            shared: Arc::clone(shared),
            lease,
            read_only: options.read_only,
            _work: work,
            _leak: LeakTimer::start(
                shared.options.leak_detection_threshold,
                &shared.instruments,
                "sqlx",
            ),
        })
    }

    /// `Closed` once `close` gave up waiting for this transaction; the earlier error
    /// if a failed statement aborted it.
    fn check_usable(&self, operation: &str) -> Result<()> {
        self.shared.check_not_forced()?;
        self.lease.check_not_aborted(operation)
    }
}

#[async_trait]
impl<E: Engine> Transaction for EngineTx<E> {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        self.check_usable("get")?;
        let now = self.shared.now();
        ops::get(&self.shared, &mut self.lease, key, now, true).await
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        self.check_usable("put")?;
        let now = self.shared.now();
        ops::put(&self.shared, &mut self.lease, key, value, options, now).await
    }

    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool> {
        self.check_usable("delete")?;
        let now = self.shared.now();
        ops::delete(&self.shared, &mut self.lease, key, condition, now).await
    }

    async fn scan(&mut self, options: ScanOptions) -> Result<Vec<Entry>> {
        self.check_usable("scan")?;
        let limit = self.shared.options.limits.scan_limit(&options);
        let now = self.shared.now();
        ops::scan(&self.shared, &mut self.lease, &options, limit, now).await
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.shared.check_not_forced()?;
        self.lease.commit("commit").await
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        if self.lease.evicted() {
            // The connection is gone, and the server rolled back with it.
            return Ok(());
        }
        self.lease.rollback("rollback").await
    }
}
