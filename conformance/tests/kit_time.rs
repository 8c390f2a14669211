//! The whole kit, one case after another as `conformance::run` runs it, on one in-tree
//! SQLite backend (sqlx, file-backed) must finish within 30 s on a 2-core machine, so
//! it can run on every commit. Prints the report with its five slowest cases.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Backend, SqliteHarness};
use conformance::RunOptions;

/// The budget for the whole kit on one backend.
const BUDGET: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_kit_on_sqlx_sqlite_fits_the_budget() {
    let harness = Arc::new(SqliteHarness::file(Backend::Sqlx));
    let started = Instant::now();
    let report = conformance::run(harness, &RunOptions::default()).await;
    let elapsed = started.elapsed();
    println!("{report}");
    println!("wall time {elapsed:.1?}");
    assert!(report.is_success(), "{report}");
    assert_eq!(report.slowest(5).len(), 5);
    assert!(
        elapsed < BUDGET,
        "the kit took {elapsed:.1?} on sqlx-sqlite-file, over the {BUDGET:?} budget:\n{report}"
    );
}
