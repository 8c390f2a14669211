//! Close cases: idempotence, `Closed` for everything after, waiting for in-flight work
//! within the grace period, and forcing it after.

use std::time::{Duration, Instant};

use storage_api::{
    Condition, ErrorKind, HealthStatus, PutOptions, ScanOptions, TxOptions, WriteOp,
};

use super::support::{Need, wait_quiet};
use crate::check::{CaseResult, Expect, Failure, Verdict, within};
use crate::context::Ctx;

const HANG: Duration = Duration::from_secs(5);

/// `close` is idempotent, every operation afterwards fails with `Closed`, health
/// reports closed, and no connection stays open.
pub(crate) async fn close_semantics(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let caps = store.capabilities();
    store
        .put(b"a", b"v", PutOptions::default())
        .await
        .must("put a")?;
    let quiet = wait_quiet(&store, Duration::from_secs(2), "before close").await?;
    let first = within(HANG, "close", store.close()).await?;
    ensure_eq!(
        first.connections_closed,
        quiet.size,
        "connections_closed in the close report (the pool had {} open)",
        quiet.size
    );
    ensure_eq!(
        (first.in_flight, first.forced),
        (0, 0),
        "(in_flight, forced) in the report of closing a quiet store"
    );
    ensure!(
        first.waited < Duration::from_secs(1),
        "closing a quiet store reported waiting {:?}",
        first.waited
    );
    ensure!(
        !first.already_closed,
        "the first close reported already_closed"
    );
    let second = within(HANG, "second close", store.close()).await?;
    ensure!(
        second.already_closed,
        "a second close did not report already_closed"
    );
    ensure_eq!(
        second.connections_closed,
        0,
        "connections a second close reported closing"
    );
    let counted = store.pool_metrics().closed.shutdown - quiet.closed.shutdown;
    ensure_eq!(
        counted,
        u64::from(quiet.size),
        "connections counted as closed for reason shutdown"
    );

    let closed = ErrorKind::Closed;
    let t = HANG;
    within(t, "get", store.get(b"a"))
        .await?
        .must_fail(closed, "get after close")?;
    within(t, "put", store.put(b"a", b"w", PutOptions::default()))
        .await?
        .must_fail(closed, "put after close")?;
    within(t, "delete", store.delete(b"a", Condition::Any))
        .await?
        .must_fail(closed, "delete after close")?;
    within(t, "scan", store.scan(ScanOptions::default()))
        .await?
        .must_fail(closed, "scan after close")?;
    within(t, "batch", store.batch(vec![WriteOp::put("b", "v")]))
        .await?
        .must_fail(closed, "batch after close")?;
    let purge_kinds: &[ErrorKind] = if caps.ttl {
        &[closed]
    } else {
        &[closed, ErrorKind::Unsupported]
    };
    within(t, "purge_expired", store.purge_expired())
        .await?
        .must_fail_with(purge_kinds, "purge_expired after close")?;
    let begin_kinds: &[ErrorKind] = if caps.transactions {
        &[closed]
    } else {
        &[closed, ErrorKind::Unsupported]
    };
    within(t, "begin", store.begin(TxOptions::default()))
        .await?
        .must_fail_with(begin_kinds, "begin after close")?;
    within(t, "validate_connections", store.validate_connections())
        .await?
        .must_fail(closed, "validate_connections after close")?;
    let health = within(t, "health_check", store.health_check()).await?;
    ensure!(
        !health.healthy && health.status == HealthStatus::Closed,
        "health after close: {health:?}"
    );
    let m = store.pool_metrics();
    ensure!(
        m.size == 0 && m.in_use == 0,
        "connections still open after close: size {}, in_use {}",
        m.size,
        m.in_use
    );
    Ok(Verdict::Passed)
}

/// `close` refuses new and waiting callers with `Closed` at once, but lets an in-flight
/// transaction finish within the grace period and returns only after it did.
pub(crate) async fn close_while_busy(ctx: Ctx) -> CaseResult {
    let options = ctx.options(|o| {
        o.max_connections = 1;
        o.close_grace = Duration::from_secs(4);
    });
    let store = ctx.open_options(&options).await?;
    require!(store, Need::Transactions);
    let mut tx = store.begin(TxOptions::default()).await.must("begin")?;
    tx.put(b"x", b"in flight", PutOptions::default())
        .await
        .must("tx put x")?;
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.get(b"x").await.err().map(|e| e.kind()) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let closer = {
        let store = store.clone();
        tokio::spawn(async move { store.close().await })
    };
    let close_started = Instant::now();
    tokio::time::sleep(Duration::from_millis(150)).await;
    ensure!(
        !closer.is_finished(),
        "close returned while a transaction was in flight, without waiting for it"
    );
    let waited = within(
        Duration::from_secs(1),
        "a caller waiting for a connection",
        waiter,
    )
    .await
    .map_err(|f| Failure::new(format!("{f}: close did not turn it away at once")))?
    .map_err(|e| Failure::new(format!("waiting get panicked: {e}")))?;
    ensure_eq!(
        waited,
        Some(ErrorKind::Closed),
        "a caller waiting for a connection during close"
    );
    within(Duration::from_secs(1), "get during close", store.get(b"x"))
        .await?
        .must_fail(ErrorKind::Closed, "a new get once close has begun")?;
    tx.commit()
        .await
        .must("commit of an in-flight transaction during the grace period")?;
    let committed = Instant::now();
    let report = within(HANG, "close after the transaction committed", closer)
        .await?
        .map_err(|e| Failure::new(format!("close panicked: {e}")))?;
    ensure!(
        committed.elapsed() < Duration::from_millis(1500),
        "close returned {:?} after the last in-flight work finished",
        committed.elapsed()
    );
    ensure!(
        (1..=2).contains(&report.in_flight),
        "close report in_flight: {} (one transaction was open, one caller waiting)",
        report.in_flight
    );
    ensure!(
        report.waited >= Duration::from_millis(100) && report.waited <= close_started.elapsed(),
        "close waited at least until the commit, {:?} after it began, but reported \
         waiting {:?}",
        close_started.elapsed(),
        report.waited
    );
    ensure_eq!(
        report.forced,
        0,
        "work forced although it finished within the grace"
    );
    if store.capabilities().persistent {
        let reopened = ctx.open_options(&options).await?;
        let x = reopened.get(b"x").await.must("get x after reopen")?;
        ensure!(
            x.is_some_and(|e| e.value == b"in flight"),
            "a transaction committed during the grace period was lost"
        );
    }
    Ok(Verdict::Passed)
}

/// Work still running when the grace period ends is forced: `close` returns after about
/// the grace period, reports it, and the abandoned transaction cannot commit.
pub(crate) async fn close_grace_bounded(ctx: Ctx) -> CaseResult {
    let grace = Duration::from_millis(300);
    let options = ctx.options(|o| {
        o.max_connections = 1;
        o.close_grace = grace;
    });
    let store = ctx.open_options(&options).await?;
    require!(store, Need::Transactions);
    let mut tx = store.begin(TxOptions::default()).await.must("begin")?;
    tx.put(b"y", b"abandoned", PutOptions::default())
        .await
        .must("tx put y")?;
    let started = Instant::now();
    let report = within(
        grace + HANG,
        "close with a transaction that never ends",
        store.close(),
    )
    .await?;
    let waited = started.elapsed();
    ensure!(
        waited >= grace.mul_f32(0.9),
        "close returned after {waited:?}, before the {grace:?} grace period"
    );
    ensure!(
        waited <= grace + Duration::from_secs(3),
        "close took {waited:?} with a {grace:?} grace period"
    );
    ensure!(report.in_flight >= 1, "close report in_flight: {report:?}");
    ensure!(report.forced >= 1, "close report forced: {report:?}");
    let commit = within(HANG, "commit after a forced close", tx.commit()).await?;
    ensure!(
        commit.is_err(),
        "a transaction abandoned by close committed after close returned"
    );
    if store.capabilities().persistent {
        let reopened = ctx.open_options(&options).await?;
        let y = reopened.get(b"y").await.must("get y after reopen")?;
        ensure!(y.is_none(), "the write of a forced transaction survived");
    }
    Ok(Verdict::Passed)
}
