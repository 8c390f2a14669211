//! Pool introspection: health check, validation of idle connections, metrics.

use std::time::Instant;

use storage_api::{ConnectionValidation, HealthStatus, PoolHealth, PoolMetrics, Result};

use super::shared::Shared;
use crate::common::health::{
    CHECK_BOUND, acquired_for_check, healthy, pool_metrics, round_trip_too_slow, validate_idle,
};

impl Shared {
    /// Acquires a connection within `min(acquire_timeout, 5 s)` and runs
    /// `SELECT sqlite_version()`, timing both steps; the round trip is bounded by the
    /// same time, on the store's [`CheckClock`](crate::common::check_clock::CheckClock).
    pub(crate) async fn health_check(&self) -> PoolHealth {
        let Ok(_work) = self.enter() else {
            return PoolHealth::closed();
        };
        let bound = self.options.acquire_timeout.min(CHECK_BOUND);
        let started = Instant::now();
        let acquired = tokio::time::timeout(bound, self.acquire("health_check")).await;
        let acquire_time = started.elapsed();
        let mut conn = match acquired_for_check(acquired, acquire_time, bound, &self.instruments) {
            Ok(conn) => conn,
            Err(health) => return health,
        };
        let started = Instant::now();
        let version =
            sqlx::query_scalar::<_, String>("SELECT sqlite_version()").fetch_one(&mut **conn);
        let version = self.check_clock.within(bound, version).await;
        let query_time = started.elapsed();
        match version {
            Some(Ok(version)) => {
                self.release(conn);
                healthy(acquire_time, query_time, version)
            }
            Some(Err(e)) => PoolHealth::new(
                HealthStatus::Unreachable,
                acquire_time,
                query_time,
                format!("round trip failed: {}", self.fail("health_check", e)),
            ),
            None => {
                conn.close_on_drop();
                round_trip_too_slow(acquire_time, query_time, bound)
            }
        }
    }

    /// Takes every idle connection, parked ones included (without waiting for those
    /// in use), runs `SELECT 1` on each while holding them all, closes the ones that
    /// fail and lends the rest to the next operations (see
    /// [`Stash`](crate::common::stash::Stash)).
    pub(crate) async fn validate_connections(&self) -> Result<ConnectionValidation> {
        let _work = self.enter()?;
        let validation = validate_idle(
            &self.pool,
            &self.stash,
            &self.accounting,
            self.options.max_connections,
            |conn| Box::pin(async move { sqlx::query("SELECT 1").execute(conn).await.is_ok() }),
        );
        Ok(validation.await)
    }

    /// The pool's gauges and the shared counters. `pending` counts the calls queued for
    /// the writer and the reader too: they wait for a connection just as callers of
    /// the pool do, only behind the queue's task.
    pub(crate) fn pool_metrics(&self) -> PoolMetrics {
        let (pool, gate, accounting) = (&self.pool, &self.gate, &self.accounting);
        let (stash, instruments) = (&self.stash, &self.instruments);
        let mut metrics = pool_metrics(pool, stash, gate, accounting, instruments, &self.options);
        let queued = self.writer.queued() + self.reader.queued();
        metrics.pending = metrics
            .pending
            .saturating_add(u32::try_from(queued).unwrap_or(u32::MAX));
        metrics
    }
}
