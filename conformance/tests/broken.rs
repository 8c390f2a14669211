//! The kit catches bugs: each deliberately broken backend must be reported failing by
//! the cases that guard the property it breaks, while the same wrapper without a bug
//! passes them.

mod broken_backends;
mod common;

use std::sync::Arc;

use broken_backends::{BrokenHarness, Bug};
use conformance::{Outcome, Report, RunOptions};

/// Generated cases for the property-based cases: more than the default, so a bug
/// that needs a particular sequence is found every run.
const PROPTEST_CASES: u32 = 64;

async fn run(bug: Bug, cases: &[&str]) -> Report {
    let mut options = RunOptions::default().with_filter(cases.iter().copied());
    options.proptest_cases = PROPTEST_CASES;
    conformance::run(Arc::new(BrokenHarness::new(bug)), &options).await
}

/// Runs `cases` against `bug` and asserts every one fails, after checking that the
/// bug-free wrapper passes them.
async fn assert_caught(bug: Bug, cases: &[&str]) {
    let control = run(Bug::None, cases).await;
    assert_eq!(control.cases.len(), cases.len(), "{control}");
    assert!(
        control.cases.iter().all(|c| c.outcome == Outcome::Passed),
        "the bug-free wrapper must pass these cases:\n{control}"
    );
    let report = run(bug, cases).await;
    println!("{report}");
    for name in cases {
        let case = report
            .case(name)
            .unwrap_or_else(|| panic!("case {name} did not run:\n{report}"));
        assert_eq!(
            case.outcome,
            Outcome::Failed,
            "{bug:?} was not caught by {name}:\n{report}"
        );
        assert!(case.message.is_some(), "{name} failed without saying why");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_version_condition_loses_updates() {
    let cases = ["condition_version", "cas_counter", "model_state_machine"];
    assert_caught(Bug::IgnoreVersionCondition, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_absent_condition() {
    let cases = ["condition_absent", "batch_in_order", "model_state_machine"];
    assert_caught(Bug::IgnoreAbsentCondition, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racy_compare_and_swap_is_not_linearizable() {
    let cases = ["cas_counter", "linearizable_histories"];
    assert_caught(Bug::RacyCompareAndSwap, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_scan_order() {
    let cases = [
        "scan_order",
        "scan_prefix",
        "scan_cursor",
        "model_state_machine",
    ];
    assert_caught(Bug::ReversedScan, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_ignores_cursor() {
    assert_caught(
        Bug::ScanIgnoresAfter,
        &["scan_cursor", "model_state_machine"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_ignored() {
    let cases = [
        "ttl_expiry",
        "ttl_conditions",
        "ttl_purge",
        "model_state_machine",
    ];
    assert_caught(Bug::TtlIgnored, &cases).await;
}

/// A backend that reports no TTL yet performs TTL puts cannot leak that to callers:
/// the checking layer the kit (like `pooledstore::open`) puts in front of every store
/// refuses the excluded operations with `Unsupported`, so the TTL cases are skipped
/// (their refusal checked), not failed and not silently passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_reported_false_is_refused_before_the_backend() {
    let cases = ["ttl_expiry", "ttl_purge"];
    let report = run(Bug::CapabilitiesLie, &cases).await;
    println!("{report}");
    for name in cases {
        let case = report
            .case(name)
            .unwrap_or_else(|| panic!("case {name} did not run:\n{report}"));
        assert_eq!(case.outcome, Outcome::Skipped, "{name}:\n{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_not_atomic() {
    let cases = ["batch_atomic", "cancel_mid_batch", "model_state_machine"];
    assert_caught(Bug::BatchNotAtomic, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_misreports_presence() {
    let cases = ["delete_reports_presence", "model_state_machine"];
    assert_caught(Bug::DeleteAlwaysTrue, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_reused_after_delete() {
    let cases = ["versions_increase", "model_state_machine"];
    assert_caught(Bug::VersionsReusedAfterDelete, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_without_isolation() {
    let cases = [
        "tx_isolation",
        "tx_rollback",
        "tx_drop_rolls_back",
        "model_state_machine",
    ];
    assert_caught(Bug::DirtyTransactions, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_that_are_not_serializable() {
    let cases = ["tx_serializable", "tx_bank_transfer"];
    assert_caught(Bug::SnapshotWithoutValidation, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_leaked_on_drop() {
    let cases = ["tx_drop_rolls_back", "cancel_mid_transaction"];
    assert_caught(Bug::LeakOnDrop, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_does_not_wait() {
    assert_caught(
        Bug::CloseNoWait,
        &["close_while_busy", "close_grace_bounded"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_does_not_close() {
    assert_caught(Bug::CloseDoesNothing, &["close_semantics"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_timeout_never_fires() {
    assert_caught(
        Bug::TimeoutNeverFires,
        &["acquire_timeout", "health_saturated"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_timeout_fires_at_once() {
    assert_caught(Bug::TimeoutFiresAtOnce, &["acquire_timeout"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_timings_rounded() {
    assert_caught(Bug::HealthRounded, &["health_reports_timings"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_that_do_not_count() {
    assert_caught(Bug::MetricsFrozen, &["metrics_reconcile"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_that_checks_nothing() {
    assert_caught(Bug::ValidateNothing, &["validate_evicts_broken"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_one_connection_too_large() {
    assert_caught(Bug::PoolSizeOffByOne, &["acquire_timeout"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_timeout_fires_too_late() {
    assert_caught(Bug::AcquireTimeoutDoubled, &["acquire_timeout"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_histogram_records_zero() {
    assert_caught(Bug::WaitHistogramZero, &["acquire_timeout"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_acquire_time_always_zero() {
    assert_caught(
        Bug::HealthAcquireZero,
        &["health_reports_timings", "health_saturated"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_idle_ignored() {
    assert_caught(Bug::MinIdleIgnored, &["min_idle_kept"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_ignored() {
    assert_caught(Bug::IdleTimeoutIgnored, &["idle_timeout_retires"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_lifetime_ignored() {
    assert_caught(Bug::MaxLifetimeIgnored, &["max_lifetime_retires"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_timeout_ignored() {
    assert_caught(Bug::BusyTimeoutIgnored, &["busy_timeout_honoured"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_threshold_ignored() {
    assert_caught(Bug::LeakThresholdIgnored, &["leak_detection_counts"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_counted_twice() {
    assert_caught(Bug::GetCountedTwice, &["metrics_reconcile"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_report_counts_no_connections() {
    assert_caught(Bug::CloseReportsNoConnections, &["close_semantics"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_report_waited_nothing() {
    assert_caught(Bug::CloseReportsNoWait, &["close_while_busy"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_end_inclusive_with_a_cursor() {
    assert_caught(Bug::ScanEndInclusiveWithCursor, &["scan_combinations"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_isolation_instead_of_serializable() {
    assert_caught(Bug::SnapshotIsolation, &["tx_histories"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dirty_transactions_show_in_histories() {
    assert_caught(Bug::DirtyTransactions, &["tx_histories"]).await;
}

/// A differential run against the correct backend finds a broken one and shrinks the
/// sequence to a few steps that still show the difference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential_runs_find_and_shrink_a_difference() {
    for bug in [
        Bug::ScanEndInclusiveWithCursor,
        Bug::TtlIgnored,
        Bug::DeleteAlwaysTrue,
    ] {
        let options = conformance::DifferentialOptions::default().with_seed(18);
        let found = conformance::differential(
            Arc::new(common::MemoryHarness::default()),
            Arc::new(BrokenHarness::new(bug)),
            &options,
        )
        .await;
        let mismatch = found.expect_err("the broken backend must disagree with the correct one");
        println!("{bug:?}:\n{mismatch}");
        assert_eq!(mismatch.seed, 18);
        assert!(
            !mismatch.minimal.is_empty() && mismatch.minimal.len() <= 6,
            "{bug:?}: the failing sequence was not shrunk:\n{mismatch}"
        );
        assert_ne!(mismatch.left, mismatch.right);
    }
    let same = conformance::differential(
        Arc::new(common::MemoryHarness::default()),
        Arc::new(BrokenHarness::new(Bug::None)),
        &conformance::DifferentialOptions::default().with_seed(18),
    )
    .await;
    assert!(same.is_ok(), "the bug-free wrapper agrees: {same:?}");
}
