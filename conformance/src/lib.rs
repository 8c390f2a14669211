#![doc = include_str!("../README.md")]

#[macro_use]
mod check;
mod cases;
mod context;
pub mod differential;
mod harness;
mod report;
mod runner;
mod sqlite_harness;
mod suite;

pub use differential::{DifferentialOptions, DifferentialReport, Mismatch, differential};
pub use harness::{Faults, Harness};
pub use report::{CaseReport, Outcome, Report};
pub use runner::{FILTER_ENV, PROPTEST_CASES_ENV, RunOptions, SEED_ENV, case_names, run, run_case};
pub use sqlite_harness::{OpenFn, SqliteHarness};

/// What the `suite!` expansion calls; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::runner::run_test;
}
