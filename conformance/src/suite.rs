//! The macros: the one list of case names, and `suite!`, which turns it into one
//! named test per case.

/// The kit's cases, in run order: calls `callback! { prefix ; name, name, … }`.
/// The registry and `suite!` both expand from this list, so they cannot drift apart.
#[doc(hidden)]
#[macro_export]
macro_rules! __cases {
    ([$($callback:tt)+] $($prefix:tt)*) => {
        $($callback)+! {
            $($prefix)* ;
            get_absent,
            put_get_roundtrip,
            versions_increase,
            condition_absent,
            condition_version,
            delete_reports_presence,
            scan_order,
            scan_prefix,
            scan_range,
            scan_cursor,
            scan_limit,
            scan_combinations,
            batch_atomic,
            batch_in_order,
            ttl_expiry,
            ttl_conditions,
            ttl_purge,
            invalid_input,
            tx_isolation,
            tx_rollback,
            tx_drop_rolls_back,
            tx_read_only,
            tx_serializable,
            tx_bank_transfer,
            tx_histories,
            cas_counter,
            model_state_machine,
            linearizable_histories,
            health_reports_timings,
            health_saturated,
            validate_checks_idle,
            validate_evicts_broken,
            metrics_reconcile,
            acquire_timeout,
            min_idle_kept,
            idle_timeout_retires,
            max_lifetime_retires,
            busy_timeout_honoured,
            leak_detection_counts,
            cancel_operations,
            cancel_mid_transaction,
            cancel_mid_batch,
            close_semantics,
            close_while_busy,
            close_grace_bounded,
            persistence_reopen,
            open_close_churn,
        }
    };
}

/// Expands to one `#[test]` per conformance case, each named after the property it
/// checks, running on its own two-worker multi-thread tokio runtime (what
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` gives).
///
/// `suite!(harness_expr)` puts the tests in the current module; `suite!(name,
/// harness_expr)` puts them in a module `name`, so one test file can hold several
/// suites. `harness_expr` is evaluated afresh inside each test and must give a
/// [`Harness`](crate::Harness).
///
/// A failing case panics with the broken property, the seed and how to replay it; a
/// skipped case prints why and passes.
#[macro_export]
macro_rules! suite {
    ($name:ident, $harness:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::suite!($harness);
        }
    };
    ($harness:expr $(,)?) => {
        $crate::__cases!([$crate::__suite_tests]($harness));
    };
}

/// One `#[test]` per case name; see [`suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    (($harness:expr) ; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::__private::run_test(stringify!($case), || $harness);
            }
        )*
    };
}
