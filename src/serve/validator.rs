//! The background `validate_connections` loop: finds broken idle connections before a
//! request does, logs what it found and keeps the result for `/health`.

use std::sync::Arc;
use std::time::Duration;

use storage_api::{ErrorKind, PooledStore};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::state::State;

/// Validates every `period` until `stop` changes or its sender is dropped.
pub(super) async fn run(state: Arc<State>, period: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let result = tokio::select! {
            result = state.store.validate_connections() => result,
            _ = stop.changed() => return,
        };
        state.record_validation(&result);
        match result {
            Ok(v) if v.invalid > 0 => tracing::warn!(
                checked = v.checked,
                invalid = v.invalid,
                "connection validation evicted broken connections"
            ),
            Ok(v) => tracing::debug!(checked = v.checked, "connection validation passed"),
            Err(e) if e.kind() == ErrorKind::Closed => return,
            Err(e) => tracing::warn!(error = %e, "connection validation failed"),
        }
    }
}
