//! [`Shared`]: the state a store shares with its transactions, and the one path every
//! operation takes to get a connection.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use group_commit::queue::Queue;
use group_commit::writes::{Request, Written};
use sqlx::Pool;
use storage_api::backend::{InFlight, PoolInstruments};
use storage_api::{Result, StoreOptions};

use super::Engine;
use super::errors::map_error;
use super::lease::Lease;
use crate::common::accounting::ConnectionAccounting;
use crate::common::alone;
use crate::common::check_clock::CheckClock;
use crate::common::gate::Gate;
use crate::common::stash::Stash;

/// The longest a lone operation is polled before it waits to be woken: several round
/// trips to the server and a commit's flush to disk.
const SPIN: Duration = Duration::from_millis(1);

/// Everything one open store owns: its engine, the pool, options and instruments.
pub(crate) struct Shared<E: Engine> {
    /// The engine's statements and what open found.
    pub(crate) engine: E,
    pub(crate) pool: Pool<E::Db>,
    pub(crate) options: StoreOptions,
    /// The schema version found (or created) at open.
    pub(crate) schema_version: i64,
    pub(crate) instruments: Arc<PoolInstruments>,
    pub(crate) accounting: Arc<ConnectionAccounting>,
    /// Admission and closing.
    pub(crate) gate: Gate,
    /// The writes outside transactions waiting for the next group commit (see
    /// [`writer`](super::writer)).
    pub(crate) writes: Queue<Request, Written>,
    /// What bounds health checks' round trips.
    pub(crate) check_clock: Arc<CheckClock>,
    /// Connections lent from one operation to the next without a pool round trip.
    pub(crate) stash: Arc<Stash<E::Db>>,
}

impl<E: Engine> fmt::Debug for Shared<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Shared");
        out.field("options", &self.options);
        self.engine.describe(&mut out);
        out.field("closed", &self.gate.is_closed())
            .finish_non_exhaustive()
    }
}

impl<E: Engine> Shared<E> {
    /// Admits one operation, or `Closed`.
    pub(crate) fn enter(&self) -> Result<InFlight> {
        self.gate.enter()
    }

    /// Admits one operation (or fails with `Closed`) and runs `work`
    /// ([`spin`](Self::spin)).
    pub(crate) async fn admitted<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let _work = self.enter()?;
        self.spin(work).await
    }

    /// Runs the admitted `work`, polling it for up to [`SPIN`] rather than sleeping
    /// while the server answers if it is the only work in the store ([`alone::spin`]).
    pub(crate) async fn spin<F: Future>(&self, work: F) -> F::Output {
        alone::spin(self.gate.alone(), SPIN, work).await
    }

    /// The current time from the store's clock (never the server's).
    pub(crate) fn now(&self) -> SystemTime {
        self.options.clock.now()
    }

    /// Acquires a pooled connection for `operation`, feeding the instruments: the one
    /// an operation parked last (see [`Stash`]), else the first one released or freed
    /// in the pool.
    ///
    /// Fails with `Timeout` after the acquire timeout (opening a connection included),
    /// and with `Closed` as soon as the store starts closing, even while waiting.
    pub(crate) async fn lease(&self, operation: &str) -> Result<Lease<E>> {
        let map = |error, waited| map_error::<E>(error, operation, Some(waited), &self.instruments);
        let (pool, stash) = (&self.pool, &self.stash);
        let lent = self.gate.lend(pool, stash, &self.instruments, map).await?;
        Ok(Lease::new(
            lent,
            Arc::clone(stash),
            Arc::clone(&self.instruments),
            Arc::clone(&self.accounting),
        ))
    }

    /// `Closed` once `close` has given up on in-flight work.
    pub(crate) fn check_not_forced(&self) -> Result<()> {
        self.gate.check_not_forced()
    }
}
