//! What the HTTP handlers and the background validator share: the store, the metrics
//! exporter, the shutdown flag, and the latest check results reported by `/health`.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storage_api::{ConnectionValidation, PoolHealth, StoreError};

use crate::observe::{Instrumented, PrometheusExporter};

/// Shared by every connection task.
#[derive(Debug)]
pub(super) struct State {
    pub(super) store: Arc<Instrumented>,
    pub(super) exporter: PrometheusExporter,
    pub(super) ready_timeout: Duration,
    pub(super) started: Instant,
    shutting_down: AtomicBool,
    last_check: Mutex<Option<(Instant, PoolHealth)>>,
    last_validation: Mutex<Option<(Instant, ValidationResult)>>,
}

/// The outcome of one background `validate_connections`, kept for `/health`.
#[derive(Debug, Clone)]
pub(super) enum ValidationResult {
    /// It ran; these are its counts.
    Done(ConnectionValidation),
    /// It failed with this error kind and message.
    Failed(&'static str, String),
}

impl State {
    pub(super) fn new(
        store: Arc<Instrumented>,
        exporter: PrometheusExporter,
        ready_timeout: Duration,
    ) -> Self {
        Self {
            store,
            exporter,
            ready_timeout,
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            last_check: Mutex::new(None),
            last_validation: Mutex::new(None),
        }
    }

    /// Turns readiness off for good.
    pub(super) fn begin_shutdown(&self) {
        self.shutting_down.store(true, SeqCst);
    }

    pub(super) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(SeqCst)
    }

    pub(super) fn record_check(&self, health: &PoolHealth) {
        *lock(&self.last_check) = Some((Instant::now(), health.clone()));
    }

    pub(super) fn last_check(&self) -> Option<(Duration, PoolHealth)> {
        lock(&self.last_check)
            .as_ref()
            .map(|(at, h)| (at.elapsed(), h.clone()))
    }

    pub(super) fn record_validation(&self, result: &Result<ConnectionValidation, StoreError>) {
        let kept = match result {
            Ok(v) => ValidationResult::Done(*v),
            Err(e) => ValidationResult::Failed(e.kind().as_str(), e.message().to_owned()),
        };
        *lock(&self.last_validation) = Some((Instant::now(), kept));
    }

    pub(super) fn last_validation(&self) -> Option<(Duration, ValidationResult)> {
        lock(&self.last_validation)
            .as_ref()
            .map(|(at, v)| (at.elapsed(), v.clone()))
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
