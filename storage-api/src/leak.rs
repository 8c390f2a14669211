//! Leak detection for transactions: a timer that warns once and counts a leak when a
//! transaction stays open past `db_leak_detection_threshold`.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::instruments::PoolInstruments;

/// Warns once and counts a leak when its holder lives past the threshold; stops when
/// dropped.
#[derive(Debug)]
pub struct LeakTimer(Option<AbortHandle>);

impl LeakTimer {
    /// Starts the timer for a transaction of `backend`, or does nothing when detection
    /// is off (`threshold` is `None`). Must be called inside a tokio runtime.
    pub fn start(
        threshold: Option<Duration>,
        instruments: &Arc<PoolInstruments>,
        backend: &'static str,
    ) -> Self {
        let Some(threshold) = threshold else {
            return Self(None);
        };
        let instruments = Arc::clone(instruments);
        let task = tokio::spawn(async move {
            tokio::time::sleep(threshold).await;
            tracing::warn!(
                backend,
                threshold_ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX),
                "a transaction has been open longer than db_leak_detection_threshold_secs"
            );
            instruments.record_leak();
        });
        Self(Some(task.abort_handle()))
    }
}

impl Drop for LeakTimer {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}
