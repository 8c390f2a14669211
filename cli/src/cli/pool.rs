//! Pool commands: migrate, health, validate.

use std::process::ExitCode;

use pooledstore::{Store, StoreError};
use serde_json::json;

/// `migrate`: opening the store already created or checked the schema; report it.
pub(super) async fn migrate(store: &Store) -> Result<ExitCode, StoreError> {
    let health = store.health_check().await;
    if !health.healthy {
        return Err(StoreError::new(
            pooledstore::ErrorKind::Connection,
            format!(
                "schema ready, but the store is not healthy: {}",
                health.detail
            ),
        ));
    }
    println!("schema ready ({} backend)", store.backend_name());
    Ok(ExitCode::SUCCESS)
}

/// `health`: one round trip; exit 1 when unhealthy. Names the store's engine and
/// the version the backend reported.
pub(super) async fn health(store: &Store, as_json: bool) -> Result<ExitCode, StoreError> {
    let h = store.health_check().await;
    let engine = engine_display(store.engine_name());
    if as_json {
        let body = json!({
            "healthy": h.healthy,
            "status": h.status.as_str(),
            "backend": store.backend_name(),
            "engine": engine,
            "acquire_time_us": h.acquire_time.as_micros() as u64,
            "query_time_us": h.query_time.as_micros() as u64,
            "server_version": h.server_version,
            "detail": h.detail,
        });
        println!("{body}");
    } else {
        let version = h.server_version.as_deref().unwrap_or("version unknown");
        println!(
            "{} ({} backend, {engine} {version}): acquire {:.1} µs, query {:.1} µs{}",
            h.status.as_str(),
            store.backend_name(),
            micros(h.acquire_time),
            micros(h.query_time),
            if h.detail.is_empty() {
                String::new()
            } else {
                format!(" — {}", h.detail)
            }
        );
    }
    Ok(exit_if(h.healthy))
}

/// The name people know the store's engine (`PooledStore::engine_name`) by.
fn engine_display(engine: &'static str) -> &'static str {
    match engine {
        "sqlite" => "SQLite",
        "postgres" => "PostgreSQL",
        "mysql" => "MySQL/MariaDB",
        other => other,
    }
}

/// `validate`: check every idle connection; exit 1 when any was broken.
pub(super) async fn validate(store: &Store, as_json: bool) -> Result<ExitCode, StoreError> {
    let v = store.validate_connections().await?;
    if as_json {
        let body = json!({
            "checked": v.checked,
            "valid": v.valid,
            "invalid": v.invalid,
            "max_connections": v.max_connections,
            "passed": v.passed,
        });
        println!("{body}");
    } else {
        println!(
            "{}: {} checked, {} valid, {} invalid (max {})",
            if v.passed { "passed" } else { "failed" },
            v.checked,
            v.valid,
            v.invalid,
            v.max_connections
        );
    }
    Ok(exit_if(v.passed))
}

fn micros(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn exit_if(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_NEGATIVE)
    }
}
