//! Settings cases: every pool setting of `StoreOptions` with an observable effect is
//! checked to take that effect (idle floor, idle timeout, maximum lifetime, busy
//! timeout, leak detection), within bounds that catch both "too early" and "too late".

use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_api::{ErrorKind, PoolMetrics, PooledStore, PutOptions, TxOptions};

use super::pool::{HANG, READ_ONLY, warm};
use super::support::{Need, wait_quiet};
use crate::check::{CaseResult, Expect, Failure, Verdict, within};
use crate::context::Ctx;

/// How long a case polls for background pool maintenance (reapers, warmers) to act.
const MAINTENANCE: Duration = Duration::from_secs(3);

/// Polls the metrics until `done` holds, failing with `what` and the last snapshot
/// after [`MAINTENANCE`].
async fn poll_metrics(
    store: &Arc<dyn PooledStore>,
    what: &str,
    done: impl Fn(&PoolMetrics) -> bool,
) -> Result<PoolMetrics, Failure> {
    let started = Instant::now();
    loop {
        let m = store.pool_metrics();
        if done(&m) {
            return Ok(m);
        }
        if started.elapsed() > MAINTENANCE {
            fail!("{what}: not within {MAINTENANCE:?}; last metrics {m:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `min_idle` connections are open and idle soon after `open`, are reported as the
/// `min_idle` gauge, and stay open when idle connections above the floor retire.
pub(crate) async fn min_idle_kept(ctx: Ctx) -> CaseResult {
    let store = ctx
        .open(|o| {
            o.max_connections = 4;
            o.min_idle = 2;
            o.idle_timeout = Some(Duration::from_millis(250));
        })
        .await?;
    let warmed = poll_metrics(&store, "two idle connections (db_min_idle = 2)", |m| {
        m.idle >= 2
    })
    .await?;
    ensure_eq!(warmed.min_idle, 2, "metrics min_idle (db_min_idle)");
    warm(&store, 4).await?;
    wait_quiet(&store, Duration::from_secs(2), "after warming the pool").await?;
    tokio::time::sleep(Duration::from_millis(900)).await;
    store
        .get(b"floor")
        .await
        .must("get after the idle timeout")?;
    let settled = poll_metrics(
        &store,
        "idle connections above db_min_idle retired, down to the floor of 2",
        |m| m.in_use == 0 && m.size == 2,
    )
    .await?;
    ensure!(
        settled.closed.idle_timeout >= 1,
        "connections above the floor left without being counted as idle_timeout: {settled:?}"
    );
    Ok(Verdict::Passed)
}

/// Connections idle past `idle_timeout` are closed and counted as `idle_timeout`;
/// connections idle for less are kept.
pub(crate) async fn idle_timeout_retires(ctx: Ctx) -> CaseResult {
    let idle_timeout = Duration::from_millis(250);
    let store = ctx
        .open(|o| {
            o.max_connections = 3;
            o.min_idle = 0;
            o.idle_timeout = Some(idle_timeout);
        })
        .await?;
    warm(&store, 3).await?;
    let warmed = wait_quiet(&store, Duration::from_secs(2), "after warming the pool").await?;
    store.get(b"fresh").await.must("get right after warming")?;
    let fresh = store.pool_metrics();
    ensure_eq!(
        fresh.closed.idle_timeout,
        warmed.closed.idle_timeout,
        "connections closed as idle_timeout after being idle for less than {idle_timeout:?}"
    );
    tokio::time::sleep(idle_timeout * 4).await;
    store
        .get(b"late")
        .await
        .must("get after the idle timeout")?;
    let after = poll_metrics(
        &store,
        "connections idle past db_idle_timeout closed and counted",
        |m| m.in_use == 0 && m.size <= 1 && m.closed.idle_timeout >= warmed.closed.idle_timeout + 2,
    )
    .await?;
    ensure!(
        after.created - after.closed.total() == u64::from(after.size),
        "connections created minus closed is not the pool size: {after:?}"
    );
    Ok(Verdict::Passed)
}

/// A connection older than `max_lifetime` is retired (counted as `max_lifetime`) once
/// it is returned, never while in use: a transaction outliving it still commits.
pub(crate) async fn max_lifetime_retires(ctx: Ctx) -> CaseResult {
    let lifetime = Duration::from_millis(300);
    let store = ctx
        .open(|o| {
            o.max_connections = 2;
            o.idle_timeout = None;
            o.max_lifetime = Some(lifetime);
        })
        .await?;
    require!(store, Need::Transactions);
    store
        .get(b"young")
        .await
        .must("get on a young connection")?;
    let young = wait_quiet(&store, Duration::from_secs(2), "after one get").await?;
    ensure_eq!(
        young.closed.max_lifetime,
        0,
        "connections retired for max_lifetime before reaching it"
    );
    let mut tx = store.begin(TxOptions::default()).await.must("begin")?;
    tokio::time::sleep(lifetime * 2).await;
    tx.put(b"old", b"v", PutOptions::default())
        .await
        .must("put in a transaction whose connection outlived max_lifetime")?;
    tx.commit()
        .await
        .must("commit of a transaction whose connection outlived max_lifetime")?;
    let got = store.get(b"old").await.must("get old")?;
    ensure!(
        got.is_some_and(|e| e.value == b"v"),
        "the write of a transaction that outlived max_lifetime was lost"
    );
    poll_metrics(
        &store,
        "connections past db_max_lifetime retired and counted as max_lifetime",
        |m| m.closed.max_lifetime >= 1,
    )
    .await?;
    Ok(Verdict::Passed)
}

/// A write that waits on a lock another transaction holds fails retryably after about
/// `busy_timeout` (not before, not much later) and is counted in `busy`: `Busy`, or
/// `Conflict` on an engine that reports a lock wait that ran out as a conflict to retry
/// (MySQL's 1205, as DESIGN.md names it).
pub(crate) async fn busy_timeout_honoured(ctx: Ctx) -> CaseResult {
    let busy_timeout = Duration::from_millis(400);
    let store = ctx
        .open(|o| {
            o.max_connections = 2;
            o.busy_timeout = busy_timeout;
        })
        .await?;
    require!(store, Need::Transactions);
    store
        .put(b"busy", b"0", PutOptions::default())
        .await
        .must("put busy")?;
    let before = store.pool_metrics();
    let mut tx = store.begin(TxOptions::default()).await.must("begin")?;
    tx.put(b"busy", b"1", PutOptions::default())
        .await
        .must("tx put busy")?;
    let started = Instant::now();
    let result = within(
        busy_timeout + HANG,
        "a put blocked by a transaction's lock",
        store.put(b"busy", b"2", PutOptions::default()),
    )
    .await?;
    let waited = started.elapsed();
    result.must_fail_with(
        &[ErrorKind::Busy, ErrorKind::Conflict],
        "a put blocked by another transaction's lock past busy_timeout",
    )?;
    ensure!(
        waited >= busy_timeout.mul_f32(0.9),
        "the blocked put gave up after {waited:?}, before the {busy_timeout:?} busy timeout"
    );
    let late = busy_timeout.mul_f32(1.5) + Duration::from_millis(250);
    ensure!(
        waited <= late,
        "the blocked put gave up only after {waited:?} (busy timeout {busy_timeout:?}, \
         allowed up to {late:?})"
    );
    let after = store.pool_metrics();
    ensure_eq!(
        after.busy - before.busy,
        1,
        "operations counted as busy after one lock wait that ran out"
    );
    tx.commit().await.must("commit of the lock holder")?;
    store
        .put(b"busy", b"3", PutOptions::default())
        .await
        .must("put once the lock is released")?;
    Ok(Verdict::Passed)
}

/// A transaction held longer than `leak_detection_threshold` is counted once in `leaks`;
/// one released in time is not.
pub(crate) async fn leak_detection_counts(ctx: Ctx) -> CaseResult {
    let threshold = Duration::from_millis(200);
    let store = ctx
        .open(|o| o.leak_detection_threshold = Some(threshold))
        .await?;
    require!(store, Need::Transactions);
    let start = store.pool_metrics().leaks;
    let quick = store.begin(READ_ONLY).await.must("begin")?;
    quick.commit().await.must("commit a quick transaction")?;
    store.get(b"quick").await.must("get")?;
    tokio::time::sleep(threshold * 2).await;
    ensure_eq!(
        store.pool_metrics().leaks - start,
        0,
        "leaks counted for work released well within the threshold"
    );
    let slow = store.begin(READ_ONLY).await.must("begin")?;
    tokio::time::sleep(threshold * 2).await;
    slow.commit().await.must("commit a slow transaction")?;
    let counted = poll_metrics(&store, "a transaction held past the leak threshold", |m| {
        m.leaks > start
    })
    .await?;
    ensure_eq!(
        counted.leaks - start,
        1,
        "leaks counted for one transaction held past the threshold"
    );
    Ok(Verdict::Passed)
}
