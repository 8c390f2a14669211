//! The probe answers: `/health` (liveness, cheap, never waits for the database) and
//! `/ready` (a bounded round trip through the pool).

use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Value, json};
use storage_api::{HealthStatus, PoolHealth, PooledStore};

use super::state::{State, ValidationResult};

/// Liveness: 200 while the process can serve, 503 once the store is closed (nothing
/// but a restart helps then). The body reports the pool's gauges and the latest check
/// and validation results; it never touches a connection.
pub(super) fn health(state: &State) -> (StatusCode, Value) {
    let store = &state.store;
    let closed = store.is_closed();
    let status = if closed {
        "closed"
    } else if state.is_shutting_down() {
        "shutting_down"
    } else {
        "ok"
    };
    let m = store.pool_metrics();
    let body = json!({
        "status": status,
        "backend": store.backend_name(),
        "engine": store.engine_name(),
        "uptime_secs": state.started.elapsed().as_secs(),
        "pool": {
            "max": m.max,
            "min_idle": m.min_idle,
            "size": m.size,
            "idle": m.idle,
            "in_use": m.in_use,
            "pending": m.pending,
            "timeouts": m.timeouts,
            "busy": m.busy,
        },
        "last_check": state.last_check().map(|(age, h)| check_json(&h, Some(age))),
        "last_validation": state.last_validation().map(|(age, v)| validation_json(&v, age)),
    });
    let code = if closed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, body)
}

/// Readiness: 200 when a round trip succeeds within `ready_timeout` and the server is
/// not shutting down; 503 otherwise, with the reason.
pub(super) async fn ready(state: &State) -> (StatusCode, Value) {
    if state.is_shutting_down() {
        return not_ready("shutting_down", "the server is shutting down");
    }
    if state.store.is_closed() {
        return not_ready("closed", "the store is closed");
    }
    let bound = state.ready_timeout;
    match tokio::time::timeout(bound, state.store.health_check()).await {
        Ok(health) => {
            state.record_check(&health);
            let mut body = check_json(&health, None);
            body["ready"] = json!(health.healthy);
            if health.healthy {
                (StatusCode::OK, body)
            } else {
                body["reason"] = json!(health.status.as_str());
                (StatusCode::SERVICE_UNAVAILABLE, body)
            }
        }
        Err(_) => timed_out(state, bound),
    }
}

/// The round trip did not finish in time: saturated when every connection is in use,
/// otherwise just slow.
fn timed_out(state: &State, bound: Duration) -> (StatusCode, Value) {
    let m = state.store.pool_metrics();
    let saturated = m.idle == 0 && m.size >= m.max;
    let (status, detail) = if saturated {
        (
            HealthStatus::Saturated,
            format!(
                "no connection within {} ms: all {} connections in use, {} waiting",
                bound.as_millis(),
                m.in_use,
                m.pending
            ),
        )
    } else {
        (
            HealthStatus::Unreachable,
            format!("no round trip within {} ms", bound.as_millis()),
        )
    };
    state.record_check(&PoolHealth::new(
        status,
        bound,
        Duration::ZERO,
        detail.clone(),
    ));
    let reason = if saturated { "saturated" } else { "timeout" };
    not_ready(reason, &detail)
}

fn not_ready(reason: &str, detail: &str) -> (StatusCode, Value) {
    let body = json!({ "ready": false, "reason": reason, "detail": detail });
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

fn check_json(h: &PoolHealth, age: Option<Duration>) -> Value {
    let mut body = json!({
        "status": h.status.as_str(),
        "healthy": h.healthy,
        "acquire_time_us": micros(h.acquire_time),
        "query_time_us": micros(h.query_time),
        "detail": h.detail,
        "server_version": h.server_version,
    });
    if let Some(age) = age {
        body["age_ms"] = json!(millis(age));
    }
    body
}

fn validation_json(v: &ValidationResult, age: Duration) -> Value {
    match v {
        ValidationResult::Done(v) => json!({
            "age_ms": millis(age),
            "checked": v.checked,
            "valid": v.valid,
            "invalid": v.invalid,
            "passed": v.passed,
        }),
        ValidationResult::Failed(kind, message) => json!({
            "age_ms": millis(age),
            "passed": false,
            "error_kind": kind,
            "error": message,
        }),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
