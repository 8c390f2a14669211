//! Closing a store's pool, the same for every database: drain, close every pooled
//! connection, report.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use storage_api::{CloseReason, CloseReport, StoreOptions};

use super::accounting::ConnectionAccounting;
use super::gate::Gate;
use super::stash::Stash;

/// How long `close` waits for connections to come back once no work is in flight
/// (they return through spawned tasks, so this is normally a few milliseconds).
const RETURN_BOUND: Duration = Duration::from_secs(5);

/// How long `close` waits for connections still held by work it gave up on; those
/// close later, when the work drops them.
const FORCED_BOUND: Duration = Duration::from_millis(100);

/// The longest `close` waits for one connection to close.
pub(crate) const CONNECTION_CLOSE_BOUND: Duration = Duration::from_secs(1);

/// Refuses new work at once, returns the connections parked in `stash` to the pool
/// (closing it would wait for them) and parks none from then on, waits up to
/// `options.close_grace` for in-flight work, closes every pooled connection, runs
/// `after_pool` (told whether all work drained) and reports. Idempotent: a second call
/// reports `already_closed` and does nothing.
pub(crate) async fn close_pool<DB, F, Fut>(
    gate: &Gate,
    pool: &Pool<DB>,
    stash: &Stash<DB>,
    accounting: &ConnectionAccounting,
    options: &StoreOptions,
    after_pool: F,
) -> CloseReport
where
    DB: Database,
    F: FnOnce(bool) -> Fut,
    Fut: Future<Output = ()>,
{
    gate.mark_closing();
    stash.close();
    let drain = gate.lifecycle.close(options.close_grace).await;
    if !drain.first {
        return CloseReport::new(true, drain.in_flight, drain.remaining, drain.waited, 0);
    }
    let drained = drain.remaining == 0;
    if !drained {
        gate.mark_forced();
        tracing::warn!(
            backend = "sqlx",
            remaining = drain.remaining,
            "close: in-flight work outlived the grace period"
        );
    }
    // Closes sqlx made before this point were its idle reaper's.
    accounting.reconcile(|| pool.size(), CloseReason::IdleTimeout);
    let size_before = pool.size();
    let bound = if drained { RETURN_BOUND } else { FORCED_BOUND };
    // The idle connections are taken out first and closed only once the pool is marked
    // closed: with `min_connections` set, every connection closed while the pool is
    // open makes sqlx open a replacement, which the next pass would take and close
    // again, without end.
    let idle = take_idle(pool);
    // `Pool::close` marks the pool closed at once (refusing acquires and replacements)
    // and, once awaited, waits for every connection to come back; bounded, so forced
    // work cannot hang `close` (its connections close when it drops them).
    let closing = pool.close();
    close_all(idle).await;
    let _ = tokio::time::timeout(bound, closing).await;
    after_pool(drained).await;
    accounting.reconcile(|| pool.size(), CloseReason::Shutdown);
    let size_after = pool.size();
    CloseReport::new(
        false,
        drain.in_flight,
        drain.remaining,
        drain.waited,
        size_before.saturating_sub(size_after),
    )
}

/// Takes every connection sitting idle out of the pool. `Pool::close` only closes
/// them after every connection in use has come back, which forced work may delay.
fn take_idle<DB: Database>(pool: &Pool<DB>) -> Vec<PoolConnection<DB>> {
    std::iter::from_fn(|| pool.try_acquire()).collect()
}

/// Closes `connections`, each within [`CONNECTION_CLOSE_BOUND`].
async fn close_all<DB: Database>(connections: Vec<PoolConnection<DB>>) {
    for conn in connections {
        match tokio::time::timeout(CONNECTION_CLOSE_BOUND, conn.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(backend = "sqlx", %error, "close: idle connection"),
            // Dropped: the connection finishes closing on its own.
            Err(_) => tracing::debug!(backend = "sqlx", "close: idle connection was slow to close"),
        }
    }
}
