//! Pool introspection every database does alike: reading the outcome of a health
//! check's acquire, validating idle connections, and the pool's metrics.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::{Database, Pool};
use storage_api::backend::{PoolGauges, PoolInstruments};
use storage_api::{
    CloseReason, ConnectionValidation, ErrorKind, HealthStatus, PoolHealth, PoolMetrics, Result,
    StoreOptions,
};
use tokio::time::error::Elapsed;

use super::accounting::ConnectionAccounting;
use super::gate::Gate;
use super::stash::{Lent, Stash};

/// The longest a health check or a validation round trip may take.
pub(crate) const CHECK_BOUND: Duration = Duration::from_secs(5);

/// The connection a health check acquired within `bound`, or the health to report
/// when it got none: `Saturated` on a timeout, `Closed`, or `Unreachable` with the
/// error. A check that gave up at its own bound counts as an acquire timeout, as the
/// pool's own timeout does.
pub(crate) fn acquired_for_check<T>(
    acquired: std::result::Result<Result<T>, Elapsed>,
    acquire_time: Duration,
    bound: Duration,
    instruments: &PoolInstruments,
) -> std::result::Result<T, PoolHealth> {
    match acquired {
        Ok(Ok(conn)) => Ok(conn),
        Err(_) => {
            instruments.record_timeout(acquire_time);
            Err(saturated(acquire_time, bound))
        }
        Ok(Err(e)) if e.kind() == ErrorKind::Timeout => Err(saturated(acquire_time, bound)),
        Ok(Err(e)) if e.kind() == ErrorKind::Closed => Err(PoolHealth::closed()),
        Ok(Err(e)) => Err(PoolHealth::new(
            HealthStatus::Unreachable,
            acquire_time,
            Duration::ZERO,
            format!("cannot open a connection: {e}"),
        )),
    }
}

/// The health of a check whose round trip took longer than `bound`.
pub(crate) fn round_trip_too_slow(
    acquire_time: Duration,
    query_time: Duration,
    bound: Duration,
) -> PoolHealth {
    PoolHealth::new(
        HealthStatus::Unreachable,
        acquire_time,
        query_time,
        format!("round trip took over {:.3} s", bound.as_secs_f64()),
    )
}

/// The health of a check that acquired a connection and read `server_version`.
pub(crate) fn healthy(
    acquire_time: Duration,
    query_time: Duration,
    server_version: String,
) -> PoolHealth {
    PoolHealth::new(
        HealthStatus::Healthy,
        acquire_time,
        query_time,
        "acquired a connection and ran a round trip",
    )
    .with_server_version(server_version)
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

/// Takes every idle connection of `pool` and every one parked in `stash` (without
/// waiting for those in use), runs `ping` on each within [`CHECK_BOUND`] while holding
/// them all, closes the ones that fail (recording them as invalid) and parks the good
/// ones for the next operations (dropped, they would count as in use until sqlx's
/// tasks had put them back).
pub(crate) async fn validate_idle<DB, F>(
    pool: &Pool<DB>,
    stash: &Arc<Stash<DB>>,
    accounting: &ConnectionAccounting,
    max_connections: u32,
    ping: F,
) -> ConnectionValidation
where
    DB: Database,
    F: for<'c> Fn(&'c mut DB::Connection) -> BoxFuture<'c, bool>,
{
    let mut held = stash.take_all();
    let idle = pool.num_idle() + held.len();
    held.reserve(idle);
    while held.len() < idle {
        match pool.try_acquire() {
            Some(conn) => held.push(conn),
            None => break,
        }
    }
    let (mut valid, mut invalid) = (0u32, 0u32);
    let mut failed = Vec::new();
    for mut conn in held {
        if matches!(
            tokio::time::timeout(CHECK_BOUND, ping(&mut conn)).await,
            Ok(true)
        ) {
            valid += 1;
            stash.park(Lent::new(conn));
        } else {
            invalid += 1;
            accounting.closing(CloseReason::Invalid);
            failed.push(conn);
        }
    }
    // Closed before returning, so the pool's size already leaves them out. A close
    // that hangs is abandoned: dropping it still frees the pool slot.
    let closes = failed
        .into_iter()
        .map(|conn| tokio::time::timeout(CHECK_BOUND, conn.close()));
    futures::future::join_all(closes).await;
    ConnectionValidation::new(valid, invalid, max_connections)
}

/// The pool's gauges and the shared counters, attributing closes nobody recorded
/// to the idle reaper (or to shutdown once the store is closed). Connections parked
/// in `stash` count as idle (the pool counts them in use).
pub(crate) fn pool_metrics<DB: Database>(
    pool: &Pool<DB>,
    stash: &Stash<DB>,
    gate: &Gate,
    accounting: &ConnectionAccounting,
    instruments: &PoolInstruments,
    options: &StoreOptions,
) -> PoolMetrics {
    let reason = if gate.is_closed() {
        CloseReason::Shutdown
    } else {
        CloseReason::IdleTimeout
    };
    accounting.reconcile(|| pool.size(), reason);
    let idle = u32::try_from(pool.num_idle() + stash.len()).unwrap_or(u32::MAX);
    instruments.snapshot(PoolGauges {
        max: options.max_connections,
        min_idle: options.min_idle,
        size: pool.size(),
        idle,
    })
}
