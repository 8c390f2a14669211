//! Churn: stores opening and closing beside a working one never stall it or themselves.
//!
//! A pool opens and closes connections all the time, and applications open and close
//! stores on a database another store is using. Engines have had bugs exactly there
//! (SQLite before 3.51.2 could deadlock when one thread closed a WAL database while
//! another opened it; before 3.51.3 a WAL reset could race a checkpoint). This case
//! drives that mix for a bounded time and fails, naming the step, when any open, close
//! or operation takes longer than [`STEP_BOUND`] instead of hanging.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_api::{PooledStore, PutOptions, StoreOptions, WriteOp};

use crate::check::{CaseResult, Expect, Failure, Verdict, within};
use crate::context::Ctx;

/// How long the churn runs.
const CHURN: Duration = Duration::from_secs(3);
/// The longest one open, close or operation may take (generous for 2 loaded cores).
const STEP_BOUND: Duration = Duration::from_secs(15);
/// Tasks that keep opening and closing stores.
const CHURNERS: usize = 3;
/// Tasks that keep working on the long-lived store.
const WORKERS: usize = 2;

/// While two tasks write (single puts and batches, so the engine checkpoints) and read
/// on one store, three others open stores for `CHURN`, alternately on the same
/// location and on fresh ones, use them and close them. Every open, close and
/// operation finishes within `STEP_BOUND`; every write is read back.
pub(crate) async fn open_close_churn(ctx: Ctx) -> CaseResult {
    let shared = ctx.options(|_| {});
    let store = ctx.open_options(&shared).await?;
    let deadline = Instant::now() + CHURN;
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| tokio::spawn(work(Arc::clone(&store), worker, deadline)))
        .collect();
    let fresh: Vec<StoreOptions> = (0..CHURNERS * 64).map(|_| ctx.options(|_| {})).collect();
    let ctx = Arc::new(ctx);
    let churners: Vec<_> = (0..CHURNERS)
        .map(|churner| {
            let ctx = Arc::clone(&ctx);
            let shared = shared.clone();
            let fresh: Vec<_> = fresh
                .iter()
                .skip(churner)
                .step_by(CHURNERS)
                .cloned()
                .collect();
            tokio::spawn(async move { churn(&ctx, churner, &shared, fresh, deadline).await })
        })
        .collect();
    let mut writes = 0;
    for worker in workers {
        writes += within(CHURN + STEP_BOUND, "a worker", worker)
            .await?
            .map_err(|e| Failure::new(format!("a worker panicked: {e}")))??;
    }
    let mut opens = 0;
    for churner in churners {
        opens += within(CHURN + STEP_BOUND, "a churner", churner)
            .await?
            .map_err(|e| Failure::new(format!("a churner panicked: {e}")))??;
    }
    ensure!(
        writes > 0,
        "the working store made no progress during the churn"
    );
    ensure!(
        opens >= CHURNERS,
        "only {opens} stores were opened during the churn"
    );
    Ok(Verdict::Passed)
}

/// Writes and reads back on `store` until `deadline`; the number of writes.
async fn work(
    store: Arc<dyn PooledStore>,
    worker: usize,
    deadline: Instant,
) -> Result<u64, Failure> {
    let mut writes = 0u64;
    while Instant::now() < deadline {
        let key = format!("w{worker}/{}", writes % 64);
        let value = writes.to_string();
        let step = format!("worker {worker}: put {key}");
        within(
            STEP_BOUND,
            &step,
            store.put(key.as_bytes(), value.as_bytes(), PutOptions::default()),
        )
        .await?
        .must(&step)?;
        let step = format!("worker {worker}: get {key}");
        let read = within(STEP_BOUND, &step, store.get(key.as_bytes()))
            .await?
            .must(&step)?;
        ensure!(
            read.is_some_and(|e| e.value == value.as_bytes()),
            "{step}: did not read back the value just written"
        );
        if writes.is_multiple_of(16) {
            let ops = (0..8)
                .map(|i| WriteOp::put(format!("b{worker}/{i}"), value.clone()))
                .collect();
            let step = format!("worker {worker}: batch");
            within(STEP_BOUND, &step, store.batch(ops))
                .await?
                .must(&step)?;
        }
        writes += 1;
    }
    Ok(writes)
}

/// Opens, uses and closes stores until `deadline`, alternately on `shared` and on the
/// next of `fresh`; the number of stores opened.
async fn churn(
    ctx: &Ctx,
    churner: usize,
    shared: &StoreOptions,
    fresh: Vec<StoreOptions>,
    deadline: Instant,
) -> Result<usize, Failure> {
    let mut fresh = fresh.into_iter();
    let mut opened = 0;
    while Instant::now() < deadline {
        let (options, which) = match (opened % 2, fresh.next()) {
            (1, Some(options)) => (options, "a fresh location"),
            _ => (shared.clone(), "the working store's location"),
        };
        let step = format!("churner {churner}: open #{opened} on {which}");
        let store = within(STEP_BOUND, &step, ctx.open_transient(&options)).await??;
        let key = format!("c{churner}");
        let step = format!("churner {churner}: put on {which}");
        within(
            STEP_BOUND,
            &step,
            store.put(key.as_bytes(), b"x", PutOptions::default()),
        )
        .await?
        .must(&step)?;
        let step = format!("churner {churner}: close #{opened} on {which}");
        within(STEP_BOUND, &step, store.close()).await?;
        opened += 1;
    }
    Ok(opened)
}
