//! Deliberately broken backends: a correct `MemoryStore` behind a wrapper that
//! introduces exactly one bug. The kit must report each one as failing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance::{Faults, Harness};
use storage_api::{
    Capabilities, CloseReport, Condition, ConnectionValidation, Entry, ErrorKind, PoolHealth,
    PoolMetrics, PooledStore, PutOptions, Result, ScanOptions, StoreError, StoreOptions,
    Transaction, TxOptions, Version, WriteOp, WriteResult, async_trait,
};

use crate::common::MemoryHarness;

/// The one bug a [`Broken`] store has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bug {
    /// No bug: the control that must pass what the broken variants fail.
    None,
    /// `Condition::Version` is ignored: lost updates.
    IgnoreVersionCondition,
    /// `Condition::Absent` is ignored.
    IgnoreAbsentCondition,
    /// Conditional writes check, pause, then write unconditionally: a race.
    RacyCompareAndSwap,
    /// Scans come back in descending order.
    ReversedScan,
    /// Scans ignore the `after` cursor.
    ScanIgnoresAfter,
    /// TTLs are dropped: nothing ever expires.
    TtlIgnored,
    /// Capabilities claim no TTL support, yet TTL puts succeed.
    CapabilitiesLie,
    /// Batches apply operation by operation and stop at the first failure.
    BatchNotAtomic,
    /// `delete` always reports that something was removed.
    DeleteAlwaysTrue,
    /// Versions restart at 1 after a key is deleted.
    VersionsReusedAfterDelete,
    /// Transaction writes go straight to the store; rollback does nothing.
    DirtyTransactions,
    /// Transactions read a snapshot and commit their writes blindly, without checking
    /// for conflicting commits (snapshot isolation without validation).
    SnapshotWithoutValidation,
    /// A transaction dropped without commit never gives its connection back.
    LeakOnDrop,
    /// `close` returns at once instead of waiting for in-flight work.
    CloseNoWait,
    /// `close` reports success but closes nothing.
    CloseDoesNothing,
    /// The acquire timeout never fires: callers wait forever.
    TimeoutNeverFires,
    /// An exhausted pool fails with `Timeout` at once instead of waiting.
    TimeoutFiresAtOnce,
    /// Health timings are rounded to whole milliseconds.
    HealthRounded,
    /// The `acquired` counter never moves.
    MetricsFrozen,
    /// `validate_connections` reports every connection valid without checking.
    ValidateNothing,
    /// The pool opens one connection more than `max_connections` (and reports the
    /// configured maximum).
    PoolSizeOffByOne,
    /// The acquire timeout applies twice: once waiting for a slot, once more opening
    /// the connection.
    AcquireTimeoutDoubled,
    /// The acquire wait histogram records every wait as zero seconds.
    WaitHistogramZero,
    /// Health checks report a zero acquire time.
    HealthAcquireZero,
    /// `min_idle` is reported but never kept open.
    MinIdleIgnored,
    /// `idle_timeout` is ignored: idle connections are never retired.
    IdleTimeoutIgnored,
    /// `max_lifetime` is ignored: connections are never retired for age.
    MaxLifetimeIgnored,
    /// `busy_timeout` is ignored: a blocked write waits the driver's default instead.
    BusyTimeoutIgnored,
    /// `leak_detection_threshold` is ignored: nothing is ever counted as a leak.
    LeakThresholdIgnored,
    /// Every `get` is counted as two acquisitions (both in `acquired` and the histogram).
    GetCountedTwice,
    /// The close report says no connection was closed.
    CloseReportsNoConnections,
    /// The close report says close waited no time at all.
    CloseReportsNoWait,
    /// With a cursor, the range end is treated as inclusive.
    ScanEndInclusiveWithCursor,
    /// Transactions run under snapshot isolation: a snapshot at begin, writes checked
    /// only against concurrent writes to the same keys (first committer wins), so write
    /// skew and phantoms commit.
    SnapshotIsolation,
}

/// A harness opening `MemoryStore`s with `bug` wrapped around them.
pub(crate) struct BrokenHarness {
    bug: Bug,
    memory: MemoryHarness,
}

impl BrokenHarness {
    pub(crate) fn new(bug: Bug) -> Self {
        Self {
            bug,
            memory: MemoryHarness::default(),
        }
    }
}

#[async_trait]
impl Harness for BrokenHarness {
    fn name(&self) -> String {
        format!("broken-{:?}", self.bug)
    }

    fn isolate(&self, options: StoreOptions) -> StoreOptions {
        self.memory.isolate(options)
    }

    async fn open(&self, mut options: StoreOptions) -> Result<Arc<dyn PooledStore>> {
        let configured = options.clone();
        match self.bug {
            Bug::TimeoutNeverFires => options.acquire_timeout = Duration::from_secs(3600),
            Bug::PoolSizeOffByOne => options.max_connections += 1,
            Bug::AcquireTimeoutDoubled => options.acquire_timeout *= 2,
            Bug::MinIdleIgnored => options.min_idle = 0,
            Bug::IdleTimeoutIgnored => options.idle_timeout = None,
            Bug::MaxLifetimeIgnored => options.max_lifetime = None,
            Bug::BusyTimeoutIgnored => options.busy_timeout = Duration::from_secs(5),
            Bug::LeakThresholdIgnored => options.leak_detection_threshold = None,
            _ => {}
        }
        let inner = self.memory.open(options).await?;
        Ok(Arc::new(Broken {
            bug: self.bug,
            inner,
            configured,
            closed: AtomicBool::new(false),
            renumbered: Mutex::new(HashMap::new()),
            extra_acquisitions: AtomicU64::new(0),
        }))
    }

    fn faults(&self) -> Option<&dyn Faults> {
        Some(&self.memory)
    }
}

/// Versions as a store with [`Bug::VersionsReusedAfterDelete`] reports them.
#[derive(Debug, Default)]
struct Renumbered {
    count: u64,
    current: Option<(Version, Version)>,
}

#[derive(Debug)]
struct Broken {
    bug: Bug,
    inner: Arc<dyn PooledStore>,
    /// The options the kit asked for, before the bug changed them.
    configured: StoreOptions,
    closed: AtomicBool,
    /// Acquisitions counted without happening ([`Bug::GetCountedTwice`]).
    extra_acquisitions: AtomicU64,
    /// Per key: puts since the last delete, and the (inner, reported) current version.
    renumbered: Mutex<HashMap<Vec<u8>, Renumbered>>,
}

const NEVER_ISSUED: u64 = 1 << 61;

impl Broken {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            Err(StoreError::closed())
        } else {
            Ok(())
        }
    }

    fn condition(&self, condition: Condition) -> Condition {
        match (self.bug, condition) {
            (Bug::IgnoreVersionCondition, Condition::Version(_)) => Condition::Any,
            (Bug::IgnoreAbsentCondition, Condition::Absent) => Condition::Any,
            _ => condition,
        }
    }

    fn options(&self, options: PutOptions) -> PutOptions {
        PutOptions {
            condition: self.condition(options.condition),
            ttl: if matches!(self.bug, Bug::TtlIgnored) {
                None
            } else {
                options.ttl
            },
        }
    }

    fn renumber_map(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Renumbered>> {
        self.renumbered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reported version → inner version, for conditions.
    fn to_inner(&self, key: &[u8], condition: Condition) -> Condition {
        let Condition::Version(reported) = condition else {
            return condition;
        };
        let map = self.renumber_map();
        let inner = map
            .get(key)
            .and_then(|r| r.current)
            .filter(|(_, shown)| *shown == reported)
            .map(|(inner, _)| inner);
        Condition::Version(inner.unwrap_or(Version::new(NEVER_ISSUED).unwrap_or(reported)))
    }

    fn racy_holds(&self, current: Option<Version>, condition: Condition) -> Result<()> {
        if condition.holds(current) {
            Ok(())
        } else {
            Err(StoreError::new(
                ErrorKind::ConditionFailed,
                "condition failed",
            ))
        }
    }
}

#[async_trait]
impl PooledStore for Broken {
    fn backend_name(&self) -> &'static str {
        "broken"
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = self.inner.capabilities();
        if self.bug == Bug::CapabilitiesLie {
            caps.ttl = false;
        }
        caps
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        self.check_open()?;
        let entry = self.inner.get(key).await?;
        if self.bug == Bug::GetCountedTwice {
            self.extra_acquisitions.fetch_add(1, Ordering::SeqCst);
        }
        if self.bug != Bug::VersionsReusedAfterDelete {
            return Ok(entry);
        }
        Ok(entry.map(|mut e| {
            if let Some((inner, shown)) = self.renumber_map().get(key).and_then(|r| r.current)
                && inner == e.version
            {
                e.version = shown;
            }
            e
        }))
    }

    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        self.check_open()?;
        match self.bug {
            Bug::RacyCompareAndSwap if options.condition != Condition::Any => {
                let current = self.inner.get(key).await?.map(|e| e.version);
                self.racy_holds(current, options.condition)?;
                tokio::time::sleep(Duration::from_millis(1)).await;
                let unconditional = PutOptions {
                    condition: Condition::Any,
                    ttl: options.ttl,
                };
                self.inner.put(key, value, unconditional).await
            }
            Bug::TimeoutFiresAtOnce => {
                let m = self.inner.pool_metrics();
                if m.in_use >= m.max {
                    return Err(StoreError::new(ErrorKind::Timeout, "no connection"));
                }
                self.inner.put(key, value, options).await
            }
            Bug::VersionsReusedAfterDelete => {
                let inner_options = PutOptions {
                    condition: self.to_inner(key, options.condition),
                    ttl: options.ttl,
                };
                let inner = self.inner.put(key, value, inner_options).await?;
                let mut map = self.renumber_map();
                let entry = map.entry(key.to_vec()).or_default();
                entry.count += 1;
                let shown = Version::new(entry.count).unwrap_or(inner);
                entry.current = Some((inner, shown));
                Ok(shown)
            }
            _ => self.inner.put(key, value, self.options(options)).await,
        }
    }

    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool> {
        self.check_open()?;
        match self.bug {
            Bug::RacyCompareAndSwap if condition != Condition::Any => {
                let current = self.inner.get(key).await?.map(|e| e.version);
                self.racy_holds(current, condition)?;
                tokio::time::sleep(Duration::from_millis(1)).await;
                self.inner.delete(key, Condition::Any).await
            }
            Bug::DeleteAlwaysTrue => {
                self.inner.delete(key, condition).await?;
                Ok(true)
            }
            Bug::VersionsReusedAfterDelete => {
                let inner_condition = self.to_inner(key, condition);
                let removed = self.inner.delete(key, inner_condition).await?;
                if removed {
                    self.renumber_map().remove(key);
                }
                Ok(removed)
            }
            _ => self.inner.delete(key, self.condition(condition)).await,
        }
    }

    async fn scan(&self, options: ScanOptions) -> Result<Vec<Entry>> {
        self.check_open()?;
        match self.bug {
            Bug::ReversedScan => {
                let mut entries = self.inner.scan(options).await?;
                entries.reverse();
                Ok(entries)
            }
            Bug::ScanIgnoresAfter => {
                let mut options = options;
                options.after = None;
                self.inner.scan(options).await
            }
            Bug::ScanEndInclusiveWithCursor if options.after.is_some() => {
                let mut options = options;
                if let Some(end) = options.range.end.as_mut() {
                    end.push(0);
                }
                self.inner.scan(options).await
            }
            _ => self.inner.scan(options).await,
        }
    }

    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        self.check_open()?;
        if self.bug == Bug::BatchNotAtomic {
            let mut results = Vec::new();
            for (index, op) in ops.into_iter().enumerate() {
                let result = match op {
                    WriteOp::Put {
                        key,
                        value,
                        options,
                    } => self
                        .inner
                        .put(&key, &value, options)
                        .await
                        .map(WriteResult::Put),
                    WriteOp::Delete { key, condition } => self
                        .inner
                        .delete(&key, condition)
                        .await
                        .map(WriteResult::Delete),
                };
                results.push(result.map_err(|e| e.with_batch_index(index))?);
                // One round trip per operation, as a backend without batches would make.
                tokio::task::yield_now().await;
            }
            return Ok(results);
        }
        let ops = ops
            .into_iter()
            .map(|op| match op {
                WriteOp::Put {
                    key,
                    value,
                    options,
                } => WriteOp::Put {
                    key,
                    value,
                    options: self.options(options),
                },
                WriteOp::Delete { key, condition } => WriteOp::Delete {
                    key,
                    condition: self.condition(condition),
                },
            })
            .collect();
        self.inner.batch(ops).await
    }

    async fn purge_expired(&self) -> Result<u64> {
        self.check_open()?;
        self.inner.purge_expired().await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        self.check_open()?;
        match self.bug {
            Bug::LeakOnDrop => Ok(Box::new(LeakyTx {
                inner: Some(self.inner.begin(options).await?),
            })),
            Bug::DirtyTransactions => Ok(Box::new(DirtyTx {
                store: Arc::clone(&self.inner),
                _hold: self.inner.begin(TxOptions { read_only: true }).await?,
                read_only: options.read_only,
            })),
            Bug::SnapshotIsolation => Ok(Box::new(SnapshotTx {
                store: Arc::clone(&self.inner),
                snapshot: self.inner.begin(TxOptions { read_only: true }).await?,
                writes: Vec::new(),
                first_seen: Vec::new(),
                read_only: options.read_only,
            })),
            Bug::SnapshotWithoutValidation => Ok(Box::new(OptimisticTx {
                store: Arc::clone(&self.inner),
                snapshot: self.inner.begin(TxOptions { read_only: true }).await?,
                writes: Vec::new(),
                read_only: options.read_only,
            })),
            _ => self.inner.begin(options).await,
        }
    }

    async fn health_check(&self) -> PoolHealth {
        if self.closed.load(Ordering::SeqCst) {
            return PoolHealth::closed();
        }
        let mut health = self.inner.health_check().await;
        if self.bug == Bug::HealthAcquireZero {
            health.acquire_time = Duration::ZERO;
        }
        if self.bug == Bug::HealthRounded {
            let round = |d: Duration| Duration::from_millis(d.as_millis() as u64);
            health.acquire_time = round(health.acquire_time);
            health.query_time = round(health.query_time);
        }
        health
    }

    async fn validate_connections(&self) -> Result<ConnectionValidation> {
        self.check_open()?;
        let report = self.inner.validate_connections().await?;
        if self.bug == Bug::ValidateNothing {
            let m = self.inner.pool_metrics();
            return Ok(ConnectionValidation::new(m.idle, 0, m.max));
        }
        Ok(report)
    }

    fn pool_metrics(&self) -> PoolMetrics {
        let mut m = self.inner.pool_metrics();
        match self.bug {
            Bug::MetricsFrozen => m.acquired = 0,
            Bug::PoolSizeOffByOne => m.max = self.configured.max_connections,
            Bug::MinIdleIgnored => m.min_idle = self.configured.min_idle,
            Bug::WaitHistogramZero => m.acquire_wait.sum = 0.0,
            Bug::GetCountedTwice => {
                let extra = self.extra_acquisitions.load(Ordering::SeqCst);
                m.acquired += extra;
                m.acquire_wait.count += extra;
                for count in &mut m.acquire_wait.counts {
                    *count += extra;
                }
            }
            _ => {}
        }
        m
    }

    async fn close(&self) -> CloseReport {
        match self.bug {
            Bug::CloseNoWait => {
                let first = !self.closed.swap(true, Ordering::SeqCst);
                let inner = Arc::clone(&self.inner);
                tokio::spawn(async move { inner.close().await });
                CloseReport::new(!first, 0, 0, Duration::ZERO, 0)
            }
            Bug::CloseDoesNothing => CloseReport::new(false, 0, 0, Duration::ZERO, 0),
            Bug::CloseReportsNoConnections => {
                let r = self.inner.close().await;
                CloseReport::new(r.already_closed, r.in_flight, r.forced, r.waited, 0)
            }
            Bug::CloseReportsNoWait => {
                let r = self.inner.close().await;
                let waited = Duration::ZERO;
                CloseReport::new(
                    r.already_closed,
                    r.in_flight,
                    r.forced,
                    waited,
                    r.connections_closed,
                )
            }
            _ => self.inner.close().await,
        }
    }
}

/// A transaction that leaks its inner transaction (and connection) when dropped
/// without commit or rollback.
#[derive(Debug)]
struct LeakyTx {
    inner: Option<Box<dyn Transaction>>,
}

impl LeakyTx {
    fn inner(&mut self) -> Result<&mut Box<dyn Transaction>> {
        self.inner
            .as_mut()
            .ok_or_else(|| StoreError::new(ErrorKind::Backend, "finished"))
    }
}

impl Drop for LeakyTx {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            std::mem::forget(inner);
        }
    }
}

#[async_trait]
impl Transaction for LeakyTx {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        self.inner()?.get(key).await
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        self.inner()?.put(key, value, options).await
    }

    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool> {
        self.inner()?.delete(key, condition).await
    }

    async fn scan(&mut self, options: ScanOptions) -> Result<Vec<Entry>> {
        self.inner()?.scan(options).await
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        match self.inner.take() {
            Some(inner) => inner.commit().await,
            None => Ok(()),
        }
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        match self.inner.take() {
            Some(inner) => inner.rollback().await,
            None => Ok(()),
        }
    }
}

/// A "transaction" whose writes go straight to the store.
#[derive(Debug)]
struct DirtyTx {
    store: Arc<dyn PooledStore>,
    _hold: Box<dyn Transaction>,
    read_only: bool,
}

impl DirtyTx {
    fn writable(&self) -> Result<()> {
        if self.read_only {
            Err(StoreError::invalid_input("read-only"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Transaction for DirtyTx {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        self.store.get(key).await
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        self.writable()?;
        self.store.put(key, value, options).await
    }

    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool> {
        self.writable()?;
        self.store.delete(key, condition).await
    }

    async fn scan(&mut self, options: ScanOptions) -> Result<Vec<Entry>> {
        self.store.scan(options).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// A transaction that reads a snapshot and applies its buffered writes at commit as one
/// unconditional batch, whatever was committed in between.
#[derive(Debug)]
struct OptimisticTx {
    store: Arc<dyn PooledStore>,
    snapshot: Box<dyn Transaction>,
    writes: Vec<WriteOp>,
    read_only: bool,
}

impl OptimisticTx {
    fn buffered(&self, key: &[u8]) -> Option<&WriteOp> {
        self.writes.iter().rev().find(|op| op.key() == key)
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            Err(StoreError::invalid_input("read-only"))
        } else {
            Ok(())
        }
    }

    fn unknown_version() -> Result<Version> {
        Version::new(NEVER_ISSUED).ok_or_else(|| StoreError::new(ErrorKind::Backend, "zero"))
    }
}

#[async_trait]
impl Transaction for OptimisticTx {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        match self.buffered(key) {
            Some(WriteOp::Put { value, .. }) => Ok(Some(Entry {
                key: key.to_vec(),
                value: value.clone(),
                version: Self::unknown_version()?,
                expires_at: None,
            })),
            Some(WriteOp::Delete { .. }) => Ok(None),
            None => self.snapshot.get(key).await,
        }
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        self.writable()?;
        self.writes.push(WriteOp::Put {
            key: key.to_vec(),
            value: value.to_vec(),
            options: PutOptions {
                condition: Condition::Any,
                ttl: options.ttl,
            },
        });
        Self::unknown_version()
    }

    async fn delete(&mut self, key: &[u8], _condition: Condition) -> Result<bool> {
        self.writable()?;
        let present = self.get(key).await?.is_some();
        self.writes.push(WriteOp::delete(key.to_vec()));
        Ok(present)
    }

    async fn scan(&mut self, options: ScanOptions) -> Result<Vec<Entry>> {
        self.snapshot.scan(options).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let Self {
            store,
            snapshot,
            writes,
            ..
        } = *self;
        drop(snapshot);
        if !writes.is_empty() {
            store.batch(writes).await?;
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// A snapshot-isolation transaction: reads come from a snapshot taken at begin (with
/// the transaction's own writes on top); at commit the buffered writes apply as one
/// batch conditioned on every written key still having its snapshot version, so
/// concurrent writes to the same key conflict but read-write conflicts go unnoticed.
#[derive(Debug)]
struct SnapshotTx {
    store: Arc<dyn PooledStore>,
    snapshot: Box<dyn Transaction>,
    writes: Vec<WriteOp>,
    /// Each written key with the version the snapshot had for it.
    first_seen: Vec<(Vec<u8>, Option<Version>)>,
    read_only: bool,
}

impl SnapshotTx {
    fn buffered(&self, key: &[u8]) -> Option<&WriteOp> {
        self.writes.iter().rev().find(|op| op.key() == key)
    }

    async fn write(&mut self, op: WriteOp, condition: Condition) -> Result<Option<Entry>> {
        if self.read_only {
            return Err(StoreError::invalid_input("read-only"));
        }
        let key = op.key().to_vec();
        let current = self.get(&key).await?;
        if !condition.holds(current.as_ref().map(|e| e.version)) {
            return Err(StoreError::new(
                ErrorKind::ConditionFailed,
                "condition failed",
            ));
        }
        if !self.first_seen.iter().any(|(k, _)| *k == key) {
            let seen = self.snapshot.get(&key).await?.map(|e| e.version);
            self.first_seen.push((key, seen));
        }
        self.writes.push(op);
        Ok(current)
    }
}

#[async_trait]
impl Transaction for SnapshotTx {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        match self.buffered(key) {
            Some(WriteOp::Put { value, .. }) => Ok(Some(Entry {
                key: key.to_vec(),
                value: value.clone(),
                version: OptimisticTx::unknown_version()?,
                expires_at: None,
            })),
            Some(WriteOp::Delete { .. }) => Ok(None),
            None => self.snapshot.get(key).await,
        }
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        let op = WriteOp::Put {
            key: key.to_vec(),
            value: value.to_vec(),
            options: PutOptions {
                condition: Condition::Any,
                ttl: options.ttl,
            },
        };
        self.write(op, options.condition).await?;
        OptimisticTx::unknown_version()
    }

    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool> {
        let present = self.write(WriteOp::delete(key.to_vec()), condition).await?;
        Ok(present.is_some())
    }

    async fn scan(&mut self, options: ScanOptions) -> Result<Vec<Entry>> {
        let limit = options.limit;
        let mut unlimited = options.clone();
        unlimited.limit = None;
        let mut entries = self.snapshot.scan(unlimited).await?;
        for op in &self.writes {
            if !options.selects(op.key()) {
                continue;
            }
            entries.retain(|e| e.key != op.key());
            if let WriteOp::Put { key, value, .. } = op {
                entries.push(Entry {
                    key: key.clone(),
                    value: value.clone(),
                    version: OptimisticTx::unknown_version()?,
                    expires_at: None,
                });
            }
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        if let Some(limit) = limit {
            entries.truncate(limit);
        }
        Ok(entries)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let Self {
            store,
            snapshot,
            mut writes,
            first_seen,
            ..
        } = *self;
        drop(snapshot);
        if writes.is_empty() {
            return Ok(());
        }
        // First committer wins: each written key must still have its snapshot version.
        for (key, seen) in first_seen {
            let condition = match seen {
                Some(version) => Condition::Version(version),
                None => Condition::Absent,
            };
            let check = WriteOp::Delete {
                key: key.clone(),
                condition,
            };
            match seen {
                // A conditional delete followed by the writes puts nothing back for a
                // key the transaction only deleted, which is what it wrote anyway.
                Some(_) => writes.insert(0, check),
                None => writes.insert(
                    0,
                    WriteOp::Put {
                        key: key.clone(),
                        value: Vec::new(),
                        options: PutOptions::if_absent(),
                    },
                ),
            }
        }
        match store.batch(writes).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::ConditionFailed => Err(StoreError::new(
                ErrorKind::Conflict,
                "a concurrent transaction wrote the same key",
            )),
            Err(e) => Err(e),
        }
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
