//! Pool cases: health, validation, metrics and the acquire timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_api::{
    Condition, ErrorKind, HealthStatus, PoolMetrics, PooledStore, PutOptions, ScanOptions,
    Transaction, TxOptions,
};

use super::support::{Need, check_reconciles, wait_quiet, wait_settled};
use crate::check::{CaseResult, Expect, Failure, Verdict, within};
use crate::context::Ctx;

pub(crate) const READ_ONLY: TxOptions = TxOptions { read_only: true };
/// Slack on top of a deadline before the kit calls an operation hung.
pub(crate) const HANG: Duration = Duration::from_secs(5);

/// Holds `n` connections with open read-only transactions.
pub(crate) async fn hold(
    store: &Arc<dyn PooledStore>,
    n: usize,
) -> Result<Vec<Box<dyn Transaction>>, Failure> {
    let mut held = Vec::new();
    for i in 0..n {
        let tx = within(HANG, "begin", store.begin(READ_ONLY))
            .await?
            .must(format_args!(
                "begin read-only transaction {i} to hold a connection"
            ))?;
        held.push(tx);
    }
    Ok(held)
}

/// Opens up to `n` connections (by holding them at once when transactions exist) and
/// releases them, so the pool has idle connections to look at.
pub(crate) async fn warm(store: &Arc<dyn PooledStore>, n: usize) -> Result<(), Failure> {
    if store.capabilities().transactions {
        for tx in hold(store, n).await? {
            tx.commit().await.must("commit read-only")?;
        }
    } else {
        store.get(b"warm").await.must("get")?;
    }
    Ok(())
}

/// `health_check` acquires and runs a round trip, reporting healthy with timings that
/// keep sub-millisecond precision.
pub(crate) async fn health_reports_timings(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let mut sub_millisecond = false;
    for i in 0..5 {
        let started = Instant::now();
        let health = within(HANG, "health_check", store.health_check()).await?;
        let elapsed = started.elapsed();
        ensure!(
            health.healthy && health.status == HealthStatus::Healthy,
            "health check {i} of an idle store: {health:?}"
        );
        ensure!(
            health.query_time > Duration::ZERO,
            "health check {i} reported a zero round-trip time"
        );
        ensure!(
            health.acquire_time > Duration::ZERO,
            "health check {i} reported a zero acquire time"
        );
        ensure!(
            health.acquire_time + health.query_time <= elapsed,
            "health check {i} reported {:?} acquiring plus {:?} querying, more than the \
             {elapsed:?} the whole check took",
            health.acquire_time,
            health.query_time
        );
        ensure!(!health.detail.is_empty(), "health check {i} gave no detail");
        ensure!(
            health.query_time < HANG && health.acquire_time < HANG,
            "health check {i} reported implausible timings {:?} / {:?}",
            health.acquire_time,
            health.query_time
        );
        for d in [health.acquire_time, health.query_time] {
            sub_millisecond |= d.as_nanos() % 1_000_000 != 0;
        }
    }
    ensure!(
        sub_millisecond,
        "every health timing was a whole number of milliseconds: durations are rounded"
    );
    Ok(Verdict::Passed)
}

/// With every connection held and the acquire timeout passing, `health_check` reports
/// `Saturated` (unhealthy) within a bounded time, and healthy again once released.
pub(crate) async fn health_saturated(ctx: Ctx) -> CaseResult {
    let acquire = Duration::from_millis(500);
    let store = ctx
        .open(|o| {
            o.max_connections = 1;
            o.acquire_timeout = acquire;
        })
        .await?;
    require!(store, Need::Transactions);
    let held = hold(&store, 1).await?;
    let started = Instant::now();
    let health = within(
        acquire + HANG,
        "health_check on a saturated pool",
        store.health_check(),
    )
    .await?;
    ensure!(
        !health.healthy && health.status == HealthStatus::Saturated,
        "health check with the only connection held for longer than the acquire timeout: \
         {health:?}"
    );
    let elapsed = started.elapsed();
    ensure!(
        elapsed < acquire + Duration::from_secs(3),
        "a saturated health check took {elapsed:?}"
    );
    ensure!(
        health.acquire_time >= acquire.mul_f32(0.9) && health.acquire_time <= elapsed,
        "a saturated health check waited {elapsed:?} for a connection but reported an \
         acquire time of {:?}",
        health.acquire_time
    );
    drop(held);
    wait_quiet(
        &store,
        Duration::from_secs(2),
        "after releasing the connection",
    )
    .await?;
    let health = within(HANG, "health_check", store.health_check()).await?;
    ensure!(
        health.healthy,
        "health check after the pool drained: {health:?}"
    );
    Ok(Verdict::Passed)
}

/// `validate_connections` checks every idle connection exactly once, keeps the good
/// ones, and neither counts nor waits for connections in use.
pub(crate) async fn validate_checks_idle(ctx: Ctx) -> CaseResult {
    let store = ctx.open(|o| o.max_connections = 3).await?;
    warm(&store, 3).await?;
    let before = wait_quiet(&store, Duration::from_secs(2), "after warming the pool").await?;
    let report = within(HANG, "validate_connections", store.validate_connections())
        .await?
        .must("validate_connections")?;
    ensure_eq!(
        report.checked,
        before.idle,
        "connections checked (the idle ones)"
    );
    ensure_eq!(report.valid, report.checked, "valid connections");
    ensure_eq!(report.invalid, 0, "invalid connections in a healthy pool");
    ensure!(
        report.passed,
        "validation of a healthy pool did not pass: {report:?}"
    );
    ensure_eq!(
        report.max_connections,
        3,
        "max_connections in the validation report"
    );
    let after = store.pool_metrics();
    ensure_eq!(
        after.size,
        before.size,
        "pool size after validating good connections"
    );

    if store.capabilities().transactions {
        let held = hold(&store, 1).await?;
        // Connections the first validation checked may still be on their way back.
        let busy =
            wait_settled(&store, 1, Duration::from_secs(2), "holding one connection").await?;
        let started = Instant::now();
        let report = within(HANG, "validate_connections", store.validate_connections())
            .await?
            .must("validate_connections with a connection in use")?;
        ensure!(
            started.elapsed() < Duration::from_secs(2),
            "validation waited {:?} for a connection in use",
            started.elapsed()
        );
        ensure_eq!(
            report.checked,
            busy.idle,
            "connections checked while one is in use (only idle ones count)"
        );
        drop(held);
    }
    Ok(Verdict::Passed)
}

/// Broken idle connections (from the harness's fault injection) are found by
/// `validate_connections`, evicted and counted, and the pool keeps serving.
pub(crate) async fn validate_evicts_broken(ctx: Ctx) -> CaseResult {
    let Some(faults) = ctx.faults() else {
        return Ok(Verdict::Skipped(
            "the harness offers no fault injection (Harness::faults is None)".into(),
        ));
    };
    let options = ctx.options(|o| o.max_connections = 3);
    let store = ctx.open_options(&options).await?;
    warm(&store, 3).await?;
    let before = wait_quiet(&store, Duration::from_secs(2), "after warming the pool").await?;
    let broken = faults
        .break_idle_connections(&options)
        .await
        .must("breaking idle connections")?;
    ensure!(
        broken > 0,
        "the harness broke no connection (the pool had {} idle)",
        before.idle
    );
    let report = within(HANG, "validate_connections", store.validate_connections())
        .await?
        .must("validate_connections")?;
    ensure_eq!(report.invalid, broken, "invalid connections found");
    ensure_eq!(report.checked, before.idle, "connections checked");
    ensure_eq!(report.valid, before.idle - broken, "valid connections");
    ensure!(
        !report.passed,
        "validation with broken connections passed: {report:?}"
    );
    let after = store.pool_metrics();
    ensure_eq!(
        after.closed.invalid - before.closed.invalid,
        u64::from(broken),
        "connections counted as closed for reason invalid"
    );
    ensure_eq!(
        after.size,
        before.size - broken,
        "pool size after evicting broken connections"
    );
    store
        .put(b"k", b"v", PutOptions::default())
        .await
        .must("put after evicting broken connections")?;
    let again = store.validate_connections().await.must("validate again")?;
    ensure!(
        again.passed && again.invalid == 0,
        "second validation: {again:?}"
    );
    Ok(Verdict::Passed)
}

/// Counters and gauges agree with what was done: acquisitions counted, no timeouts,
/// every acquisition in the wait histogram, `idle + in_use == size <= max` when quiet.
pub(crate) async fn metrics_reconcile(ctx: Ctx) -> CaseResult {
    let store = ctx.open(|o| o.max_connections = 4).await?;
    let start = wait_quiet(&store, Duration::from_secs(2), "a fresh store").await?;
    ensure_eq!(start.max, 4, "metrics max (db_pool_size)");
    ensure_eq!(start.min_idle, 0, "metrics min_idle (db_min_idle)");
    check_reconciles(&start, "a fresh store")?;

    let mut operations = 0u64;
    for i in 0..10 {
        let key = format!("m/{i}");
        store
            .put(key.as_bytes(), b"v", PutOptions::default())
            .await
            .must("put")?;
        operations += 1;
    }
    let before_reads = wait_quiet(&store, Duration::from_secs(2), "after the puts").await?;
    for i in 0..5 {
        store.get(format!("m/{i}").as_bytes()).await.must("get")?;
        operations += 1;
    }
    for _ in 0..3 {
        store.scan(ScanOptions::prefix("m/")).await.must("scan")?;
        operations += 1;
    }
    let after_reads = wait_quiet(&store, Duration::from_secs(2), "after the reads").await?;
    ensure_eq!(
        after_reads.acquired - before_reads.acquired,
        8,
        "acquired counter over 5 gets and 3 scans (one acquisition each)"
    );
    for i in 0..2 {
        store
            .delete(format!("m/{i}").as_bytes(), Condition::Any)
            .await
            .must("delete")?;
        operations += 1;
    }
    let concurrent = (0..8).map(|i| {
        let store = Arc::clone(&store);
        async move { store.get(format!("m/{i}").as_bytes()).await }
    });
    for result in futures::future::join_all(concurrent).await {
        result.must("concurrent get")?;
        operations += 1;
    }

    let end = wait_quiet(&store, Duration::from_secs(2), "after the operations").await?;
    check_reconciles(&end, "after the operations")?;
    ensure!(
        end.size >= 1,
        "no connection open after {operations} operations: {end:?}"
    );
    let acquired = end.acquired - start.acquired;
    // A write may take a second connection (a writer queue, say); a read takes one.
    ensure!(
        acquired >= operations && acquired <= operations + 12,
        "acquired counter rose by {acquired} over {operations} operations, 12 of them writes"
    );
    ensure_eq!(
        end.timeouts,
        start.timeouts,
        "timeouts counted without any timeout"
    );
    check_counts(&end)?;

    if store.capabilities().transactions {
        let held = hold(&store, 2).await?;
        let busy = store.pool_metrics();
        ensure!(
            busy.in_use >= 2,
            "two open transactions, but metrics report {} connections in use",
            busy.in_use
        );
        ensure!(
            busy.idle + busy.in_use == busy.size && busy.size <= busy.max,
            "metrics while busy: {busy:?}"
        );
        drop(held);
        let quiet = wait_quiet(&store, Duration::from_secs(2), "after the transactions").await?;
        check_reconciles(&quiet, "after the transactions")?;
    }
    Ok(Verdict::Passed)
}

/// The connection and histogram counters add up.
fn check_counts(m: &PoolMetrics) -> Result<(), Failure> {
    let closed = m.closed.total();
    ensure!(
        m.created >= closed && m.created - closed == u64::from(m.size),
        "connections created ({}) minus closed ({closed}) is not the pool size ({})",
        m.created,
        m.size
    );
    let histogram = &m.acquire_wait;
    ensure_eq!(
        histogram.count,
        m.acquired + m.timeouts,
        "acquire wait observations (one per acquisition or timeout)"
    );
    ensure!(
        histogram.counts.windows(2).all(|w| w[0] <= w[1])
            && histogram
                .counts
                .last()
                .is_none_or(|last| *last <= histogram.count),
        "the acquire wait histogram is not cumulative: {histogram:?}"
    );
    Ok(())
}

/// With every connection held by open transactions, an operation fails with `Timeout`
/// after roughly the acquire timeout (not at once, not never), timeouts are counted,
/// waiters are served when a connection frees up, and the pool recovers.
pub(crate) async fn acquire_timeout(ctx: Ctx) -> CaseResult {
    let timeout = Duration::from_millis(500);
    let store = ctx
        .open(|o| {
            o.max_connections = 2;
            o.acquire_timeout = timeout;
        })
        .await?;
    require!(store, Need::Transactions);
    let mut held = hold(&store, 2).await?;
    let before = store.pool_metrics();
    // Slack for a loaded 2-core machine, tight enough that a timeout applied twice
    // (once per acquire phase, or retried once) is caught.
    let late = timeout.mul_f32(1.5) + Duration::from_millis(100);

    let ops: [(&str, KindFuture<'_>); 3] = [
        ("get", Box::pin(kind_of(store.get(b"k")))),
        (
            "put",
            Box::pin(kind_of(store.put(b"k", b"v", PutOptions::default()))),
        ),
        ("begin", Box::pin(kind_of(store.begin(READ_ONLY)))),
    ];
    for (name, op) in ops {
        let started = Instant::now();
        let kind = within(timeout + HANG, format!("{name} on an exhausted pool"), op).await?;
        let waited = started.elapsed();
        ensure_eq!(
            kind,
            Some(ErrorKind::Timeout),
            "{name} on an exhausted pool"
        );
        ensure!(
            waited >= timeout.mul_f32(0.9),
            "{name} timed out after {waited:?}, before the {timeout:?} acquire timeout"
        );
        ensure!(
            waited <= late,
            "{name} timed out only after {waited:?} (acquire timeout {timeout:?}, allowed up \
             to {late:?})"
        );
    }
    let after = store.pool_metrics();
    ensure_eq!(
        after.timeouts - before.timeouts,
        3,
        "timeouts counter over 3 timed-out acquisitions"
    );
    let waits =
        Duration::from_secs_f64((after.acquire_wait.sum - before.acquire_wait.sum).max(0.0));
    ensure!(
        waits >= (timeout * 3).mul_f32(0.9),
        "the acquire wait histogram grew by {waits:?} over 3 timeouts of {timeout:?} each"
    );

    let waiter = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { kind_of(store.get(b"k")).await })
    };
    // Sample while it waits (it waits for the whole acquire timeout).
    let mut most_pending = 0;
    let sampling_ends = Instant::now() + timeout + HANG;
    while !waiter.is_finished() && Instant::now() < sampling_ends {
        most_pending = most_pending.max(store.pool_metrics().pending);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ensure!(
        most_pending >= 1,
        "a caller waiting for a connection was never counted as pending"
    );
    let kind = within(timeout + HANG, "waiting get", waiter)
        .await?
        .map_err(|e| Failure::new(format!("waiting get panicked: {e}")))?;
    ensure_eq!(
        kind,
        Some(ErrorKind::Timeout),
        "a waiting get that nobody serves"
    );
    ensure_eq!(
        store.pool_metrics().timeouts - before.timeouts,
        4,
        "timeouts counter over 4 timed-out acquisitions"
    );

    let served = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { kind_of(store.get(b"k")).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    held.pop();
    let kind = within(
        timeout + HANG,
        "get served by a released connection",
        served,
    )
    .await?
    .map_err(|e| Failure::new(format!("served get panicked: {e}")))?;
    ensure_eq!(
        kind,
        None,
        "a waiting get when a connection is released within the acquire timeout"
    );
    drop(held);
    wait_quiet(
        &store,
        Duration::from_secs(2),
        "after releasing every connection",
    )
    .await?;
    let started = Instant::now();
    store.get(b"k").await.must("get after recovery")?;
    ensure!(
        started.elapsed() < Duration::from_secs(1),
        "the first get after recovery took {:?}",
        started.elapsed()
    );
    let after = wait_quiet(&store, Duration::from_secs(2), "after recovery").await?;
    check_reconciles(&after, "after recovery")?;
    Ok(Verdict::Passed)
}

/// An operation reduced to the kind of its error.
type KindFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<ErrorKind>> + Send + 'a>>;

/// The error kind of an operation's result, `None` on success.
async fn kind_of<T>(
    op: impl std::future::Future<Output = storage_api::Result<T>>,
) -> Option<ErrorKind> {
    op.await.err().map(|e| e.kind())
}
