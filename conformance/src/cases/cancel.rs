//! Cancellation: futures dropped at every await point leak no connection, leave no
//! write lock behind, and never leave a batch or transaction half-applied.
//!
//! Each operation is polled a growing number of times and then dropped, first with a
//! bare yield between polls (to stop at every await point the backend passes through
//! quickly) and then with a 1 ms pause (to stop while it waits on I/O or a blocking
//! thread), until the operation completes within the budget. After every drop a pool of
//! one connection must go quiet and serve a write.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use storage_api::{
    Condition, PooledStore, PutOptions, ScanOptions, StoreOptions, TxOptions, WriteOp,
};

use super::support::{Need, wait_quiet};
use crate::check::{CaseResult, Expect, Failure, Verdict, within};
use crate::context::Ctx;

/// Most polls before a drop in the yield sweep.
const YIELD_SWEEP: usize = 48;
/// Most polls before a drop in the paused sweep.
const PAUSE_SWEEP: usize = 40;

/// How the sweep waits between two polls.
#[derive(Debug, Clone, Copy)]
enum Pause {
    Yield,
    Sleep,
}

/// Polls `fut` up to `polls` times; returns its output if it finished, otherwise drops
/// it mid-flight and returns `None`.
async fn poll_then_drop<F: Future>(fut: F, polls: usize, pause: Pause) -> Option<F::Output> {
    let mut fut = pin!(fut);
    for _ in 0..polls {
        if let Poll::Ready(out) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
            return Some(out);
        }
        match pause {
            Pause::Yield => tokio::task::yield_now().await,
            Pause::Sleep => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    None
}

fn small_pool(o: &mut StoreOptions) {
    o.max_connections = 1;
    o.acquire_timeout = Duration::from_secs(2);
    o.busy_timeout = Duration::from_secs(1);
}

/// After a drop: the pool goes quiet and its only connection takes a write.
async fn check_recovered(store: &Arc<dyn PooledStore>, what: &str) -> Result<(), Failure> {
    wait_quiet(store, Duration::from_secs(2), what).await?;
    within(Duration::from_secs(8), what, async {
        store.put(b"sentinel", b"v", PutOptions::default()).await
    })
    .await?
    .must(format_args!(
        "{what}: a put on the pool of one (a connection or the write lock leaked)"
    ))?;
    Ok(())
}

/// Runs `make(n)` under both sweeps, dropping it after every poll count until it
/// completes, then `after(n)` checks what the dropped attempt left behind. `n` numbers
/// the attempts so each can use its own keys.
async fn sweep<F, Fut, A, AFut>(
    store: &Arc<dyn PooledStore>,
    name: &str,
    mut make: F,
    mut after: A,
) -> Result<(), Failure>
where
    F: FnMut(usize) -> Fut,
    Fut: Future,
    A: FnMut(usize) -> AFut,
    AFut: Future<Output = Result<(), Failure>>,
{
    let mut attempt = 0;
    for (pause, budget) in [(Pause::Yield, YIELD_SWEEP), (Pause::Sleep, PAUSE_SWEEP)] {
        for polls in 0..=budget {
            attempt += 1;
            let finished = poll_then_drop(make(attempt), polls, pause).await.is_some();
            let what = format!("{name} dropped after {polls} polls ({pause:?} sweep)");
            check_recovered(store, &what).await?;
            after(attempt).await?;
            if finished {
                break;
            }
        }
    }
    Ok(())
}

async fn no_check(_: usize) -> Result<(), Failure> {
    Ok(())
}

/// Every plain operation, dropped at any await point, returns its connection.
pub(crate) async fn cancel_operations(ctx: Ctx) -> CaseResult {
    let store = ctx.open(small_pool).await?;
    let caps = store.capabilities();
    store
        .put(b"k", b"v", PutOptions::default())
        .await
        .must("put k")?;
    let s = &store;
    sweep(s, "get", |_| s.get(b"k"), no_check).await?;
    sweep(
        s,
        "put",
        |n| async move {
            s.put(format!("put/{n}").as_bytes(), b"v", PutOptions::default())
                .await
        },
        no_check,
    )
    .await?;
    sweep(s, "delete", |_| s.delete(b"k", Condition::Any), no_check).await?;
    sweep(s, "scan", |_| s.scan(ScanOptions::default()), no_check).await?;
    if caps.ttl {
        sweep(s, "purge_expired", |_| s.purge_expired(), no_check).await?;
    }
    sweep(s, "health_check", |_| s.health_check(), no_check).await?;
    sweep(
        s,
        "validate_connections",
        |_| s.validate_connections(),
        no_check,
    )
    .await?;
    if caps.transactions {
        sweep(s, "begin", |_| s.begin(TxOptions::default()), no_check).await?;
    }
    Ok(Verdict::Passed)
}

/// A transaction dropped at any await point — in begin, a write, or commit — rolls
/// back or commits as a whole, and frees its connection and write lock.
pub(crate) async fn cancel_mid_transaction(ctx: Ctx) -> CaseResult {
    let store = ctx.open(small_pool).await?;
    require!(store, Need::Transactions);
    let s = &store;
    // The yields stand for application work between statements: a transaction can be
    // dropped there too, not only inside the backend's own awaits.
    let scenario = |n: usize| async move {
        let mut tx = s.begin(TxOptions::default()).await?;
        tokio::task::yield_now().await;
        tx.put(format!("tx/{n}/a").as_bytes(), b"v", PutOptions::default())
            .await?;
        tokio::task::yield_now().await;
        tx.get(b"sentinel").await?;
        tx.put(
            format!("tx/{n}/b").as_bytes(),
            b"v",
            PutOptions::if_absent(),
        )
        .await?;
        tokio::task::yield_now().await;
        tx.scan(ScanOptions::prefix(format!("tx/{n}/"))).await?;
        tx.commit().await
    };
    let atomic = |n: usize| async move {
        let written = s
            .scan(ScanOptions::prefix(format!("tx/{n}/")))
            .await
            .must("scan a dropped transaction's keys")?;
        ensure!(
            written.is_empty() || written.len() == 2,
            "a transaction dropped mid-flight left {} of its 2 writes (attempt {n})",
            written.len()
        );
        Ok(())
    };
    sweep(s, "transaction", scenario, atomic).await?;
    let read_only = |_| async move {
        let mut tx = s.begin(TxOptions { read_only: true }).await?;
        tokio::task::yield_now().await;
        tx.get(b"sentinel").await?;
        tx.scan(ScanOptions::default()).await?;
        tx.commit().await
    };
    sweep(s, "read-only transaction", read_only, no_check).await?;
    Ok(Verdict::Passed)
}

/// A batch dropped at any await point is applied entirely or not at all.
pub(crate) async fn cancel_mid_batch(ctx: Ctx) -> CaseResult {
    let store = ctx.open(small_pool).await?;
    let s = &store;
    const OPS: usize = 12;
    let batch = |n: usize| {
        let ops = (0..OPS)
            .map(|i| WriteOp::put(format!("batch/{n}/{i:02}"), "v"))
            .collect();
        s.batch(ops)
    };
    let atomic = |n: usize| async move {
        let written = s
            .scan(ScanOptions::prefix(format!("batch/{n}/")))
            .await
            .must("scan a dropped batch's keys")?;
        ensure!(
            written.is_empty() || written.len() == OPS,
            "a batch dropped mid-flight left {} of its {OPS} puts (attempt {n})",
            written.len()
        );
        Ok(())
    };
    sweep(s, "batch", batch, atomic).await?;
    Ok(Verdict::Passed)
}
