//! The conformance cases, one async function per contract property, each named after
//! the `# Contract` bullet of `PooledStore` it checks (split where that names failures
//! better).

#[macro_use]
mod support;
mod basic;
mod batch;
mod cancel;
mod churn;
mod close;
mod concurrency;
mod history;
mod input;
mod linearizable;
mod model;
mod persistence;
mod pool;
mod property;
mod scan;
mod settings;
mod state_machine;
mod ttl;
mod tx;
mod wing_gong;

pub(crate) use basic::{
    condition_absent, condition_version, delete_reports_presence, get_absent, put_get_roundtrip,
    versions_increase,
};
pub(crate) use batch::{batch_atomic, batch_in_order};
pub(crate) use cancel::{cancel_mid_batch, cancel_mid_transaction, cancel_operations};
pub(crate) use churn::open_close_churn;
pub(crate) use close::{close_grace_bounded, close_semantics, close_while_busy};
pub(crate) use concurrency::cas_counter;
pub(crate) use history::tx_histories;
pub(crate) use input::invalid_input;
pub(crate) use linearizable::linearizable_histories;
pub(crate) use persistence::persistence_reopen;
pub(crate) use pool::{
    acquire_timeout, health_reports_timings, health_saturated, metrics_reconcile,
    validate_checks_idle, validate_evicts_broken,
};
pub(crate) use scan::{
    scan_combinations, scan_cursor, scan_limit, scan_order, scan_prefix, scan_range,
};
pub(crate) use settings::{
    busy_timeout_honoured, idle_timeout_retires, leak_detection_counts, max_lifetime_retires,
    min_idle_kept,
};
pub(crate) use state_machine::model_state_machine;
pub(crate) use support::SplitMix;
pub(crate) use ttl::{ttl_conditions, ttl_expiry, ttl_purge};
pub(crate) use tx::{
    tx_bank_transfer, tx_drop_rolls_back, tx_isolation, tx_read_only, tx_rollback, tx_serializable,
};
