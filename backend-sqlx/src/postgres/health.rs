//! Pool introspection: health check, validation of idle connections, metrics.

use std::time::Instant;

use storage_api::{ConnectionValidation, HealthStatus, PoolHealth, PoolMetrics, Result};

use super::retry::{Next, Retry};
use super::shared::Shared;
use crate::common::health::{
    CHECK_BOUND, acquired_for_check, healthy, pool_metrics, round_trip_too_slow, validate_idle,
};

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
            let mut lease =
                match acquired_for_check(acquired, acquire_time, bound, &self.instruments) {
                    Ok(lease) => lease,
                    Err(health) => return health,
                };
            let started = Instant::now();
            let version =
                sqlx::query_scalar::<_, String>("SHOW server_version").fetch_one(lease.start());
            let version = tokio::time::timeout(bound, version).await;
            let query_time = started.elapsed();
            let version = match version {
                Ok(version) => lease.finish("health_check", version),
                // The lease is dropped with the statement in flight: it is evicted.
                Err(_) => return round_trip_too_slow(acquire_time, query_time, bound),
            };
            match version {
                Ok(version) => return healthy(acquire_time, query_time, version),
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
        let validation = validate_idle(
            &self.pool,
            Vec::new(),
            &self.accounting,
            self.options.max_connections,
            |conn| Box::pin(async move { sqlx::query("SELECT 1").execute(conn).await.is_ok() }),
        );
        let (report, _back_to_the_pool) = validation.await;
        Ok(report)
    }

    /// The pool's gauges and the shared counters.
    pub(crate) fn pool_metrics(&self) -> PoolMetrics {
        let (pool, gate, accounting) = (&self.pool, &self.gate, &self.accounting);
        pool_metrics(pool, 0, gate, accounting, &self.instruments, &self.options)
    }
}
