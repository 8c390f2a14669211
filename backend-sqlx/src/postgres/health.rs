//! Pool introspection: health check, validation of idle connections, metrics.

use std::time::{Duration, Instant};

use storage_api::{
    CloseReason, ConnectionValidation, ErrorKind, HealthStatus, PoolGauges, PoolHealth,
    PoolMetrics, Result,
};

use super::retry::{Next, Retry};
use super::shared::Shared;

/// The longest a health check or a validation round trip may take.
const CHECK_BOUND: Duration = Duration::from_secs(5);

impl Shared {
    /// Acquires a connection within `min(acquire_timeout, 5 s)` and runs
    /// `SHOW server_version`, timing both steps. A connection found dead is evicted
    /// and the check moves to another one, as operations do.
    pub(crate) async fn health_check(&self) -> PoolHealth {
        let Ok(_work) = self.enter() else {
            return PoolHealth::closed();
        };
        let bound = self.options.acquire_timeout.min(CHECK_BOUND);
        let mut retry = Retry::new(self.options.max_connections);
        loop {
            let started = Instant::now();
            let acquired = tokio::time::timeout(bound, self.lease("health_check")).await;
            let acquire_time = started.elapsed();
            let mut lease = match acquired {
                Ok(Ok(lease)) => lease,
                Err(_) => return saturated(acquire_time, bound),
                Ok(Err(e)) if e.kind() == ErrorKind::Timeout => {
                    return saturated(acquire_time, bound);
                }
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
                sqlx::query_scalar::<_, String>("SHOW server_version").fetch_one(lease.start());
            let version = tokio::time::timeout(bound, version).await;
            let query_time = started.elapsed();
            let version = match version {
                Ok(version) => lease.finish("health_check", version),
                // The lease is dropped with the statement in flight: it is evicted.
                Err(_) => {
                    return PoolHealth::new(
                        HealthStatus::Unreachable,
                        acquire_time,
                        query_time,
                        format!("round trip took over {:.3} s", bound.as_secs_f64()),
                    );
                }
            };
            match version {
                Ok(version) => {
                    return PoolHealth::new(
                        HealthStatus::Healthy,
                        acquire_time,
                        query_time,
                        "acquired a connection and ran a round trip",
                    )
                    .with_server_version(version);
                }
                Err(e) if retry.next(&e, lease.stale()) == Next::OtherConnection => continue,
                Err(e) => {
                    return PoolHealth::new(
                        HealthStatus::Unreachable,
                        acquire_time,
                        query_time,
                        format!("round trip failed: {e}"),
                    );
                }
            }
        }
    }

    /// Takes every idle connection (without waiting for those in use), runs
    /// `SELECT 1` on each while holding them all, closes the ones that fail (a server
    /// that ended the session, a dropped network path) and returns the rest.
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
        let mut failed = Vec::new();
        for mut conn in held {
            let ping = sqlx::query("SELECT 1").execute(&mut *conn);
            if matches!(tokio::time::timeout(CHECK_BOUND, ping).await, Ok(Ok(_))) {
                valid += 1;
                passed.push(conn);
            } else {
                invalid += 1;
                self.accounting.closing(CloseReason::Invalid);
                failed.push(conn);
            }
        }
        drop(passed);
        // Closed before returning, so the pool's size already leaves them out. A
        // close that hangs is abandoned: dropping it still frees the pool slot.
        let closes = failed
            .into_iter()
            .map(|conn| tokio::time::timeout(CHECK_BOUND, conn.close()));
        futures::future::join_all(closes).await;
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
