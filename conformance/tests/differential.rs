//! Differential runs between the in-tree SQLite backends and the in-memory example
//! backend: the same seeded sequence of operations gives the same results on each.

mod common;

use std::sync::Arc;

use common::{Backend, MemoryHarness};
use conformance::{DifferentialOptions, Harness, differential};

/// Seeded sequences per pair: the seed from `CONFORMANCE_SEED`, else fresh ones.
const RUNS: usize = 3;

async fn agree(left: Arc<dyn Harness>, right: Arc<dyn Harness>) {
    for run in 0..RUNS {
        let mut options = DifferentialOptions::from_env();
        if options.seed.is_some() && run > 0 {
            break;
        }
        options.steps = 300;
        match differential(Arc::clone(&left), Arc::clone(&right), &options).await {
            Ok(report) => {
                println!(
                    "{} vs {}: seed {} agreed on {} steps ({} failed alike)",
                    left.name(),
                    right.name(),
                    report.seed,
                    report.steps,
                    report.errors
                );
                assert!(report.errors > 0, "the sequence exercised no error path");
            }
            Err(mismatch) => panic!("{mismatch}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_sqlite_vs_deadpool_sqlite() {
    agree(
        Arc::new(Backend::Sqlx.file()),
        Arc::new(Backend::Deadpool.file()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_sqlite_vs_memory() {
    agree(
        Arc::new(Backend::Sqlx.file()),
        Arc::new(MemoryHarness::default()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadpool_sqlite_vs_memory() {
    agree(
        Arc::new(Backend::Deadpool.memory()),
        Arc::new(MemoryHarness::default()),
    )
    .await;
}
