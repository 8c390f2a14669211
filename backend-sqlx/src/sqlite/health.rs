//! Pool introspection: health check, validation of idle connections, metrics.

use std::time::{Duration, Instant};

use storage_api::{
    CloseReason, ConnectionValidation, ErrorKind, HealthStatus, PoolGauges, PoolHealth,
    PoolMetrics, Result,
};

use super::shared::Shared;

/// The longest a health check or a validation round trip may take.
const CHECK_BOUND: Duration = Duration::from_secs(5);

impl Shared {
    /// Acquires a connection within `min(acquire_timeout, 5 s)` and runs
    /// `SELECT sqlite_version()`, timing both steps.
    pub(crate) async fn health_check(&self) -> PoolHealth {
        let Ok(_work) = self.enter() else {
            return PoolHealth::closed();
        };
        let bound = self.options.acquire_timeout.min(CHECK_BOUND);
        let started = Instant::now();
        let acquired = tokio::time::timeout(bound, self.acquire("health_check")).await;
        let acquire_time = started.elapsed();
        let mut conn = match acquired {
            Ok(Ok(conn)) => conn,
            Err(_) => return saturated(acquire_time, bound),
            Ok(Err(e)) if e.kind() == ErrorKind::Timeout => return saturated(acquire_time, bound),
            Ok(Err(e)) if e.kind() == ErrorKind::Closed => return PoolHealth::closed(),
            Ok(Err(e)) => {
                return PoolHealth::new(
                    HealthStatus::Unreachable,
                    acquire_time,
                    Duration::ZERO,
                    format!("cannot open a connection: {e}"),
                );
            }
        };
        let started = Instant::now();
        let version =
            sqlx::query_scalar::<_, String>("SELECT sqlite_version()").fetch_one(&mut *conn);
        let version = tokio::time::timeout(bound, version).await;
        let query_time = started.elapsed();
        match version {
            Ok(Ok(version)) => PoolHealth::new(
                HealthStatus::Healthy,
                acquire_time,
                query_time,
                "acquired a connection and ran a round trip",
            )
            .with_server_version(version),
            Ok(Err(e)) => PoolHealth::new(
                HealthStatus::Unreachable,
                acquire_time,
                query_time,
                format!("round trip failed: {}", self.fail("health_check", e)),
            ),
            Err(_) => {
                conn.close_on_drop();
                PoolHealth::new(
                    HealthStatus::Unreachable,
                    acquire_time,
                    query_time,
                    format!("round trip took over {:.3} s", bound.as_secs_f64()),
                )
            }
        }
    }

    /// Takes every idle connection (without waiting for those in use), runs
    /// `SELECT 1` on each while holding them all, closes the ones that fail and
    /// returns the rest.
    pub(crate) async fn validate_connections(&self) -> Result<ConnectionValidation> {
        let _work = self.enter()?;
        let idle = self.pool.num_idle();
        let mut held = Vec::with_capacity(idle);
        while held.len() < idle {
            match self.pool.try_acquire() {
                Some(conn) => held.push(conn),
                None => break,
            }
        }
        let (mut valid, mut invalid) = (0u32, 0u32);
        let mut passed = Vec::with_capacity(held.len());
        for mut conn in held {
            let ping = sqlx::query("SELECT 1").execute(&mut *conn);
            if matches!(tokio::time::timeout(CHECK_BOUND, ping).await, Ok(Ok(_))) {
                valid += 1;
                passed.push(conn);
            } else {
                invalid += 1;
                self.accounting.closing(CloseReason::Invalid);
                conn.close_on_drop();
            }
        }
        drop(passed);
        Ok(ConnectionValidation::new(
            valid,
            invalid,
            self.options.max_connections,
        ))
    }

    /// The pool's gauges and the shared counters.
    pub(crate) fn pool_metrics(&self) -> PoolMetrics {
        let reason = if self.lifecycle.is_closed() {
            CloseReason::Shutdown
        } else {
            CloseReason::IdleTimeout
        };
        self.accounting.reconcile(|| self.pool.size(), reason);
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        self.instruments.snapshot(PoolGauges {
            max: self.options.max_connections,
            min_idle: self.options.min_idle,
            size: self.pool.size(),
            idle,
        })
    }
}

fn saturated(acquire_time: Duration, bound: Duration) -> PoolHealth {
    PoolHealth::new(
        HealthStatus::Saturated,
        acquire_time,
        Duration::ZERO,
        format!(
            "no connection became free within {:.3} s",
            bound.as_secs_f64()
        ),
    )
}
