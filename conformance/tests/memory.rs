//! The whole kit through `run` (as a binary would call it) on the in-memory example
//! backend: every case passes except those its capabilities exclude, and the report
//! comes out as a table and as JSON.

mod common;

use std::sync::Arc;

use common::MemoryHarness;
use conformance::{Outcome, Report, RunOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_every_case_as_table_and_json() {
    let report = conformance::run(Arc::new(MemoryHarness::default()), &RunOptions::default()).await;
    println!("{report}");
    let names: Vec<&str> = report.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        conformance::case_names(),
        "every case runs, in kit order"
    );
    for case in &report.cases {
        let expected = if case.name == "persistence_reopen" {
            Outcome::Skipped
        } else {
            Outcome::Passed
        };
        assert_eq!(case.outcome, expected, "{}: {:?}", case.name, case.message);
    }
    assert!(report.is_success());
    let skipped = report.case("persistence_reopen").expect("persistence case");
    assert!(
        skipped
            .message
            .as_deref()
            .is_some_and(|m| m.contains("persistent = false")),
        "a skip says why: {skipped:?}"
    );
    let seeded = report
        .case("model_state_machine")
        .expect("state machine case");
    assert_eq!(
        seeded.seed,
        Some(report.seed),
        "randomised cases report their seed"
    );
    assert_eq!(report.case("get_absent").and_then(|c| c.seed), None);

    let table = report.to_string();
    for name in conformance::case_names() {
        assert!(table.contains(name), "the table lists {name}");
    }
    let back: Report = serde_json::from_str(&report.to_json()).expect("the JSON form parses");
    assert_eq!(back, report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_cases_and_unknown_names_are_none() {
    let harness = Arc::new(MemoryHarness::default());
    let options = RunOptions::default().with_filter(["scan_"]).with_seed(42);
    let report = conformance::run(harness.clone(), &options).await;
    let names: Vec<&str> = report.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "scan_order",
            "scan_prefix",
            "scan_range",
            "scan_cursor",
            "scan_limit",
            "scan_combinations"
        ]
    );
    assert_eq!(report.seed, 42);
    let none = conformance::run_case(harness, "no_such_case", &options).await;
    assert!(none.is_none());
}
