//! Pool introspection: health check, validation of idle connections, metrics.

use std::time::Instant;

use storage_api::{
    ConnectionValidation, ErrorKind, HealthStatus, PoolHealth, PoolMetrics, Result, StoreError,
};

use super::Engine;
use super::queries::Queries;
use super::shared::Shared;
use crate::common::health::{
    CHECK_BOUND, acquired_for_check, healthy, pool_metrics, round_trip_too_slow, validate_idle,
};
use crate::common::retry::{Next, Retry};

impl<E: Engine> Shared<E> {
    /// Acquires a connection within `min(acquire_timeout, 5 s)` and runs the engine's
    /// round trip ([`Engine::health_query`], reading the server's version and what the
    /// detail says of the session, or `SELECT 1` where the sessions' setup read them),
    /// timing both steps; the round trip is bounded by the same time, on the store's
    /// [`CheckClock`](crate::common::check_clock::CheckClock). A connection found dead is
    /// evicted and the check moves to another one, as operations do. A check alone in
    /// the store polls its round trip ([`spin`](Self::spin)).
    pub(crate) async fn health_check(&self) -> PoolHealth {
        let Ok(_work) = self.enter() else {
            return PoolHealth::closed();
        };
        self.spin(self.check_health()).await
    }

    /// [`health_check`](Self::health_check), once admitted.
    async fn check_health(&self) -> PoolHealth {
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
            let query = self.engine.health_query();
            let row = async {
                match query {
                    Some(sql) => E::Db::fetch_raw(lease.start(), sql).await.map(Some),
                    None => E::Db::select_one(lease.start()).await.map(|()| None),
                }
            };
            // Bounded by the store's check clock rather than a timer of its own (see
            // `check_clock`).
            let row = self.check_clock.within(bound, row).await;
            let query_time = started.elapsed();
            let row = match row {
                Some(row) => lease.finish("health_check", row),
                // The lease is dropped with the statement in flight: it is evicted.
                None => return round_trip_too_slow(acquire_time, query_time, bound),
            };
            match row.and_then(|row| self.read_health_row(row.as_ref())) {
                Ok((version, detail)) => {
                    let mut health = healthy(acquire_time, query_time, version);
                    health.detail.push_str(&detail);
                    return health;
                }
                Err(e) if retry.next(&e, lease.failure()) == Next::OtherConnection => continue,
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

    /// The server version and the health detail, from the round trip's row if it read
    /// them.
    fn read_health_row(
        &self,
        row: Option<&<E::Db as sqlx::Database>::Row>,
    ) -> Result<(String, String)> {
        self.engine.health_detail(row).map_err(|e| {
            StoreError::new(
                ErrorKind::Backend,
                "health_check: unexpected answer to the round trip",
            )
            .with_source(e)
        })
    }

    /// Takes every idle connection, parked ones included (without waiting for those
    /// in use), runs `SELECT 1` on each while holding them all, closes the ones that
    /// fail (a server that ended the session, a dropped network path) and lends the
    /// rest to the next operations.
    pub(crate) async fn validate_connections(&self) -> Result<ConnectionValidation> {
        let _work = self.enter()?;
        let validation = validate_idle(
            &self.pool,
            &self.stash,
            &self.accounting,
            self.options.max_connections,
            |conn| Box::pin(async move { E::Db::execute_raw(conn, "SELECT 1").await.is_ok() }),
        );
        Ok(validation.await)
    }

    /// The pool's gauges and the shared counters. `pending` counts the writes queued
    /// for the group-commit writer too: they wait for a connection just as callers of
    /// the pool do, only behind the writer's task.
    pub(crate) fn pool_metrics(&self) -> PoolMetrics {
        let (pool, gate, accounting) = (&self.pool, &self.gate, &self.accounting);
        let (stash, instruments) = (&self.stash, &self.instruments);
        let mut metrics = pool_metrics(pool, stash, gate, accounting, instruments, &self.options);
        let queued = u32::try_from(self.writes.queued()).unwrap_or(u32::MAX);
        metrics.pending = metrics.pending.saturating_add(queued);
        metrics
    }
}
