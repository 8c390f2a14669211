//! Pool introspection: health check, validation of idle connections, metrics.

use std::time::Instant;

use sqlx::Row;
use storage_api::{
    ConnectionValidation, ErrorKind, HealthStatus, PoolHealth, PoolMetrics, Result, StoreError,
};

use super::retry::{Next, Retry};
use super::shared::Shared;
use crate::common::health::{
    CHECK_BOUND, acquired_for_check, healthy, pool_metrics, round_trip_too_slow, validate_idle,
};

/// The health check's round trip: the server's version and the session settings the
/// store relies on (strict SQL mode, the lock wait bound). Text protocol, so it needs
/// no prepared statement.
const HEALTH_QUERY: &str = "SELECT VERSION(), @@SESSION.sql_mode, \
     CAST(@@SESSION.innodb_lock_wait_timeout AS CHAR)";

/// The server version and what the health detail says of the session settings,
/// from [`HEALTH_QUERY`]'s row.
fn read_health_row(row: &sqlx::mysql::MySqlRow) -> Result<(String, String)> {
    let read = || -> sqlx::Result<(String, String)> {
        let (version, sql_mode, lock_wait): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let session = format!("; sql_mode {sql_mode}; innodb_lock_wait_timeout {lock_wait} s");
        Ok((version, session))
    };
    read().map_err(|e| {
        StoreError::new(
            ErrorKind::Backend,
            "health_check: unexpected answer to the round trip",
        )
        .with_source(e)
    })
}

impl Shared {
    /// Acquires a connection within `min(acquire_timeout, 5 s)` and runs one round trip
    /// reading the server's version and the session's SQL mode and lock wait timeout,
    /// timing both steps. A connection found dead is evicted and the check moves to
    /// another one, as operations do.
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
            let row = sqlx::raw_sql(HEALTH_QUERY).fetch_one(lease.start());
            let row = tokio::time::timeout(bound, row).await;
            let query_time = started.elapsed();
            let row = match row {
                Ok(row) => lease.finish("health_check", row),
                // The lease is dropped with the statement in flight: it is evicted.
                Err(_) => return round_trip_too_slow(acquire_time, query_time, bound),
            };
            match row.and_then(|row| read_health_row(&row)) {
                Ok((version, session)) => {
                    let mut health = healthy(acquire_time, query_time, version);
                    health.detail.push_str(&session);
                    return health;
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
    /// `SELECT 1` on each while holding them all, closes the ones that fail (a killed
    /// session, a dropped network path) and returns the rest.
    pub(crate) async fn validate_connections(&self) -> Result<ConnectionValidation> {
        let _work = self.enter()?;
        let validation = validate_idle(
            &self.pool,
            Vec::new(),
            &self.accounting,
            self.options.max_connections,
            |conn| Box::pin(async move { sqlx::raw_sql("SELECT 1").execute(conn).await.is_ok() }),
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
