//! `Instrumented`: a layer around any store that times and counts every operation and
//! opens a `tracing` span for it, transactions included. Backends stay free of it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use storage_api::{
    Capabilities, CloseReport, Condition, ConnectionValidation, Entry, ErrorKind, HealthStatus,
    PoolHealth, PoolMetrics, PooledStore, PutOptions, Result, ScanOptions, Transaction, TxOptions,
    Version, WriteOp, WriteResult, async_trait,
};
use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
use tracing::{Instrument, Span, field::Empty};

use super::labels::{Op, Outcome};
use super::stats::{OperationStats, OperationsSnapshot};
use crate::Store;

/// A [`PooledStore`] that records `pooledstore_operations_total{op,outcome}`,
/// `pooledstore_operation_duration_seconds{op,outcome}` and a `debug` span per operation
/// (fields `backend`, `op`, `key_len`, `items`, `outcome`; never keys or values), then
/// delegates to the wrapped store.
///
/// Transactions it begins are wrapped too. An operation whose future is dropped before
/// it finishes counts as `outcome="cancelled"`.
#[derive(Debug)]
pub struct Instrumented {
    inner: Store,
    shared: Arc<Shared>,
}

/// What the store and its transactions share: the backend name, the counters, and
/// whether the store is known to be closed.
#[derive(Debug)]
struct Shared {
    backend: &'static str,
    engine: &'static str,
    stats: OperationStats,
    closed: AtomicBool,
}

impl Instrumented {
    /// Wraps `inner`; its counters start at zero.
    pub fn new(inner: Store) -> Self {
        let shared = Arc::new(Shared {
            backend: inner.backend_name(),
            engine: inner.engine_name(),
            stats: OperationStats::default(),
            closed: AtomicBool::new(false),
        });
        Self { inner, shared }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Store {
        &self.inner
    }

    /// A copy of the operation counters and histograms.
    pub fn operations(&self) -> OperationsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Whether the store is known to be closed: `close` was called through this layer,
    /// or an operation or health check reported it closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Relaxed)
    }
}

impl Shared {
    /// Runs `work` as operation `op`, timing and counting it.
    async fn observe<T>(
        &self,
        op: Op,
        key_len: Option<usize>,
        items: Option<usize>,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        // `key_len` and `items` given here (a `None` leaves the field empty) rather
        // than recorded afterwards: each `record` looks its field up by name, even on
        // a disabled span.
        let span = if spans_wanted() {
            tracing::debug_span!(
                "pooledstore_op",
                backend = self.backend,
                engine = self.engine,
                op = op.as_str(),
                key_len,
                items,
                outcome = Empty
            )
        } else {
            Span::none()
        };
        let timer = Timer {
            shared: self,
            op,
            started: Instant::now(),
            span,
            finished: false,
        };
        // Entering a disabled span costs nothing useful; skip the wrapper then.
        let result = if timer.span.is_disabled() {
            work.await
        } else {
            work.instrument(timer.span.clone()).await
        };
        timer.finish(Outcome::of(&result));
        result
    }

    fn record(&self, op: Op, outcome: Outcome, timer_started: Instant) {
        self.stats.record(op, outcome, timer_started.elapsed());
        if outcome == Outcome::Failed(ErrorKind::Closed) {
            self.closed.store(true, Relaxed);
        }
    }
}

/// Whether an operation's `debug` span could reach anyone: a subscriber that takes
/// `debug`, or (tracing's `log` feature, which a dependency may turn on) a `log` logger
/// that does. When neither does, the span and its records are skipped: building a
/// disabled span still formats its fields for `log` when tracing has that feature.
fn spans_wanted() -> bool {
    let debug = LevelFilter::DEBUG;
    (STATIC_MAX_LEVEL >= debug && LevelFilter::current() >= debug)
        || log::max_level() >= log::LevelFilter::Debug
}

/// Times one operation; records it as cancelled if dropped before `finish`.
struct Timer<'a> {
    shared: &'a Shared,
    op: Op,
    started: Instant,
    span: Span,
    finished: bool,
}

impl Timer<'_> {
    fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.shared.record(self.op, outcome, self.started);
        if !self.span.is_disabled() {
            self.span.record("outcome", outcome.as_str());
        }
        if let Outcome::Failed(kind) = outcome
            && kind != ErrorKind::ConditionFailed
        {
            tracing::debug!(parent: &self.span, outcome = kind.as_str(), "operation failed");
        }
    }
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.shared
                .record(self.op, Outcome::Cancelled, self.started);
            self.span.record("outcome", Outcome::Cancelled.as_str());
        }
    }
}

#[async_trait]
impl PooledStore for Instrumented {
    fn backend_name(&self) -> &'static str {
        self.shared.backend
    }

    fn engine_name(&self) -> &'static str {
        self.shared.engine
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        let work = self.inner.get(key);
        self.shared
            .observe(Op::Get, Some(key.len()), None, work)
            .await
    }

    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        let work = self.inner.put(key, value, options);
        self.shared
            .observe(Op::Put, Some(key.len()), None, work)
            .await
    }

    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool> {
        let work = self.inner.delete(key, condition);
        self.shared
            .observe(Op::Delete, Some(key.len()), None, work)
            .await
    }

    async fn scan(&self, options: ScanOptions) -> Result<Vec<Entry>> {
        let work = self.inner.scan(options);
        self.shared.observe(Op::Scan, None, None, work).await
    }

    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        let items = ops.len();
        let work = self.inner.batch(ops);
        self.shared
            .observe(Op::Batch, None, Some(items), work)
            .await
    }

    async fn purge_expired(&self) -> Result<u64> {
        let work = self.inner.purge_expired();
        self.shared
            .observe(Op::PurgeExpired, None, None, work)
            .await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        let work = self.inner.begin(options);
        let inner = self.shared.observe(Op::Begin, None, None, work).await?;
        Ok(Box::new(InstrumentedTx {
            inner,
            shared: Arc::clone(&self.shared),
        }))
    }

    async fn health_check(&self) -> PoolHealth {
        let health = self.inner.health_check().await;
        if health.status == HealthStatus::Closed {
            self.shared.closed.store(true, Relaxed);
        }
        health
    }

    async fn validate_connections(&self) -> Result<ConnectionValidation> {
        let work = self.inner.validate_connections();
        self.shared
            .observe(Op::ValidateConnections, None, None, work)
            .await
    }

    fn pool_metrics(&self) -> PoolMetrics {
        self.inner.pool_metrics()
    }

    async fn close(&self) -> CloseReport {
        self.shared.closed.store(true, Relaxed);
        self.inner.close().await
    }
}

/// A transaction begun through [`Instrumented`]: each call is timed and counted.
#[derive(Debug)]
struct InstrumentedTx {
    inner: Box<dyn Transaction>,
    shared: Arc<Shared>,
}

#[async_trait]
impl Transaction for InstrumentedTx {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        let work = self.inner.get(key);
        self.shared
            .observe(Op::TxGet, Some(key.len()), None, work)
            .await
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        let work = self.inner.put(key, value, options);
        self.shared
            .observe(Op::TxPut, Some(key.len()), None, work)
            .await
    }

    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool> {
        let work = self.inner.delete(key, condition);
        self.shared
            .observe(Op::TxDelete, Some(key.len()), None, work)
            .await
    }

    async fn scan(&mut self, options: ScanOptions) -> Result<Vec<Entry>> {
        let work = self.inner.scan(options);
        self.shared.observe(Op::TxScan, None, None, work).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let Self { inner, shared } = *self;
        shared.observe(Op::Commit, None, None, inner.commit()).await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        let Self { inner, shared } = *self;
        shared
            .observe(Op::Rollback, None, None, inner.rollback())
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use storage_api::backend::WAIT_BUCKETS;

    use super::*;
    use crate::observe::fake::Scripted;

    fn wrapped() -> Instrumented {
        Instrumented::new(Arc::new(Scripted::default()))
    }

    #[tokio::test]
    async fn counts_each_operation_by_outcome() {
        let store = wrapped();
        for _ in 0..3 {
            store.put(b"k", b"v", PutOptions::default()).await.unwrap();
        }
        let cas = store.put(b"cas", b"v", PutOptions::default()).await;
        assert_eq!(cas.unwrap_err().kind(), ErrorKind::ConditionFailed);
        assert_eq!(store.get(b"k").await.unwrap(), None);
        store.batch(vec![WriteOp::put("a", "b")]).await.unwrap();
        let purge = store.purge_expired().await.unwrap_err();
        assert_eq!(purge.kind(), ErrorKind::Unsupported);
        store.validate_connections().await.unwrap();

        let ops = store.operations();
        assert_eq!(ops.count(Op::Put, Outcome::Ok), 3);
        let cas_failed = Outcome::Failed(ErrorKind::ConditionFailed);
        assert_eq!(ops.count(Op::Put, cas_failed), 1);
        assert_eq!(ops.total(Op::Put), 4);
        assert_eq!(ops.duration(Op::Put).count, 4);
        assert_eq!(ops.duration(Op::Put).bounds, WAIT_BUCKETS);
        assert_eq!(ops.count(Op::Get, Outcome::Ok), 1);
        assert_eq!(ops.count(Op::Batch, Outcome::Ok), 1);
        let unsupported = Outcome::Failed(ErrorKind::Unsupported);
        assert_eq!(ops.count(Op::PurgeExpired, unsupported), 1);
        assert_eq!(ops.count(Op::ValidateConnections, Outcome::Ok), 1);
        assert_eq!(ops.total(Op::Delete), 0);
        assert!(!store.is_closed(), "ConditionFailed is not a store failure");
    }

    #[tokio::test]
    async fn transactions_are_instrumented_too() {
        let store = wrapped();
        let mut tx = store.begin(TxOptions::default()).await.unwrap();
        tx.put(b"k", b"v", PutOptions::default()).await.unwrap();
        tx.get(b"k").await.unwrap();
        assert_eq!(
            tx.delete(b"k", Condition::Any).await.unwrap_err().kind(),
            ErrorKind::Busy
        );
        tx.commit().await.unwrap();
        let tx = store.begin(TxOptions::default()).await.unwrap();
        tx.rollback().await.unwrap();

        let ops = store.operations();
        assert_eq!(ops.count(Op::Begin, Outcome::Ok), 2);
        assert_eq!(ops.count(Op::TxPut, Outcome::Ok), 1);
        assert_eq!(ops.count(Op::TxGet, Outcome::Ok), 1);
        let busy = Outcome::Failed(ErrorKind::Busy);
        assert_eq!(ops.count(Op::TxDelete, busy), 1);
        assert_eq!(ops.count(Op::Commit, Outcome::Ok), 1);
        assert_eq!(ops.count(Op::Rollback, Outcome::Ok), 1);
        assert_eq!(ops.total(Op::Put), 0, "transaction puts are counted apart");
    }

    #[tokio::test]
    async fn a_dropped_operation_counts_as_cancelled() {
        let store = wrapped();
        let slow = tokio::time::timeout(Duration::from_millis(20), store.get(b"slow")).await;
        assert!(slow.is_err(), "the scripted get never finishes");
        let ops = store.operations();
        assert_eq!(ops.count(Op::Get, Outcome::Cancelled), 1);
        assert_eq!(ops.count(Op::Get, Outcome::Ok), 0);
        assert!(
            ops.duration(Op::Get).sum >= 0.015,
            "{:?}",
            ops.duration(Op::Get)
        );
    }

    #[tokio::test]
    async fn close_and_closed_errors_mark_the_store_closed() {
        let store = wrapped();
        assert!(!store.is_closed());
        store.close().await;
        assert!(store.is_closed());

        let inner = Arc::new(Scripted::default());
        inner.closed.store(true, Relaxed);
        let other = Instrumented::new(inner);
        let e = other
            .put(b"k", b"v", PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Closed);
        assert!(other.is_closed());
        assert_eq!(
            other
                .operations()
                .count(Op::Put, Outcome::Failed(ErrorKind::Closed)),
            1
        );
    }

    #[tokio::test]
    async fn passes_identity_through() {
        let store = wrapped();
        assert_eq!(store.backend_name(), "scripted");
        assert_eq!(store.capabilities().max_value_bytes, 16);
        assert_eq!(store.inner().backend_name(), "scripted");
        assert_eq!(store.health_check().await.status, HealthStatus::Closed);
        assert!(store.is_closed(), "a Closed health report is remembered");
    }
}
