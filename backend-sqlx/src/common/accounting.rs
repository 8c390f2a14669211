//! Counts connections opened and closed, with the reason for every close.
//!
//! sqlx reports neither when it opens a connection nor why it closes one, so this
//! module observes what it can: `after_connect` counts every connection opened;
//! `max_lifetime` is enforced here through the `before_acquire`/`after_release` hooks
//! (sqlx is not given a lifetime, so it cannot retire connections unseen); validation,
//! broken connections and shutdown are closed by this crate, which records them first.
//! The only closes sqlx makes on its own are those of its idle reaper, so
//! [`ConnectionAccounting::reconcile`] attributes any close nobody recorded to
//! `idle_timeout` (or to `shutdown` once the store is closing). One blind spot remains:
//! a connection sqlx drops because its ping on release fails would be counted as an
//! idle timeout rather than as broken; SQLite's ping only fails if its worker thread
//! died (PostgreSQL's, when the server dropped the connection while it sat idle
//! between an operation and its return to the pool).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::Database;
use sqlx::pool::PoolOptions;
use storage_api::CloseReason;
use storage_api::backend::PoolInstruments;

/// Connection open/close bookkeeping for one pool, feeding [`PoolInstruments`].
#[derive(Debug)]
pub(crate) struct ConnectionAccounting {
    instruments: Arc<PoolInstruments>,
    /// Connections the pool has opened.
    created: AtomicU64,
    /// Closes recorded with a reason so far.
    explained: AtomicU64,
}

impl ConnectionAccounting {
    /// Bookkeeping that records into `instruments`.
    pub(crate) fn new(instruments: Arc<PoolInstruments>) -> Arc<Self> {
        Arc::new(Self {
            instruments,
            created: AtomicU64::new(0),
            explained: AtomicU64::new(0),
        })
    }

    /// The pool opened a connection.
    fn opened(&self) {
        self.created.fetch_add(1, SeqCst);
        self.instruments.record_created();
    }

    /// This crate is about to close a connection for `reason`. Recorded before the
    /// close happens, so [`reconcile`](Self::reconcile) never sees it as unexplained.
    pub(crate) fn closing(&self, reason: CloseReason) {
        self.explained.fetch_add(1, SeqCst);
        self.instruments.record_closed(reason);
    }

    /// Attributes to `reason` every connection that has gone from the pool (opened but
    /// no longer counted in `size()`) without a recorded reason.
    ///
    /// `size` is read after the open count, so a connection still being opened can
    /// only hide a close for now, never invent one.
    pub(crate) fn reconcile(&self, size: impl FnOnce() -> u32, reason: CloseReason) {
        let created = self.created.load(SeqCst);
        let size = u64::from(size());
        loop {
            let explained = self.explained.load(SeqCst);
            let missing = created.saturating_sub(size).saturating_sub(explained);
            if missing == 0 {
                return;
            }
            let claimed =
                self.explained
                    .compare_exchange(explained, explained + missing, SeqCst, SeqCst);
            if claimed.is_ok() {
                for _ in 0..missing {
                    self.instruments.record_closed(reason);
                }
                return;
            }
        }
    }

    /// Installs the hooks that count opened connections and retire those older than
    /// `max_lifetime` (never while in use: on checkout and on return).
    #[cfg(feature = "sqlite")]
    pub(crate) fn install<DB: Database>(
        self: &Arc<Self>,
        options: PoolOptions<DB>,
        max_lifetime: Option<Duration>,
    ) -> PoolOptions<DB> {
        self.install_with_setup(options, max_lifetime, |_conn| {
            Box::pin(std::future::ready(Ok(())))
        })
    }

    /// Like [`install`](Self::install), running `setup` on every new connection before
    /// it joins the pool (and is counted). A connection whose setup fails is closed
    /// by sqlx, which then tries a new one.
    pub(crate) fn install_with_setup<DB, F>(
        self: &Arc<Self>,
        options: PoolOptions<DB>,
        max_lifetime: Option<Duration>,
        setup: F,
    ) -> PoolOptions<DB>
    where
        DB: Database,
        F: for<'c> Fn(&'c mut DB::Connection) -> BoxFuture<'c, sqlx::Result<()>>
            + Send
            + Sync
            + 'static,
    {
        let counter = Arc::clone(self);
        let mut options = options.after_connect(move |conn, _meta| {
            let counter = Arc::clone(&counter);
            let setup = setup(conn);
            Box::pin(async move {
                setup.await?;
                counter.opened();
                Ok(())
            })
        });
        if let Some(max) = max_lifetime {
            let on_acquire = Arc::clone(self);
            let on_release = Arc::clone(self);
            options = options
                .before_acquire(move |_conn, meta| {
                    Box::pin(std::future::ready(Ok(on_acquire.keep(meta.age, max))))
                })
                .after_release(move |_conn, meta| {
                    Box::pin(std::future::ready(Ok(on_release.keep(meta.age, max))))
                });
        }
        options
    }

    /// Whether a connection of `age` may stay; records its retirement when not.
    fn keep(&self, age: Duration, max_lifetime: Duration) -> bool {
        let keep = age < max_lifetime;
        if !keep {
            self.closing(CloseReason::MaxLifetime);
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::backend::PoolGauges;

    fn closed(instruments: &PoolInstruments) -> storage_api::ClosedCounts {
        instruments.snapshot(PoolGauges::default()).closed
    }

    #[test]
    fn unexplained_closes_are_attributed_once() {
        let instruments = Arc::new(PoolInstruments::new());
        let accounting = ConnectionAccounting::new(Arc::clone(&instruments));
        for _ in 0..4 {
            accounting.opened();
        }
        accounting.closing(CloseReason::Invalid);
        // 4 opened, 1 closed as invalid, 1 more gone unseen: 2 remain.
        accounting.reconcile(|| 2, CloseReason::IdleTimeout);
        accounting.reconcile(|| 2, CloseReason::IdleTimeout);
        let counts = closed(&instruments);
        assert_eq!((counts.invalid, counts.idle_timeout), (1, 1));
        accounting.reconcile(|| 0, CloseReason::Shutdown);
        assert_eq!(closed(&instruments).shutdown, 2);
    }

    #[test]
    fn a_connection_still_opening_never_invents_a_close() {
        let instruments = Arc::new(PoolInstruments::new());
        let accounting = ConnectionAccounting::new(Arc::clone(&instruments));
        accounting.opened();
        // size counts a second connection whose open has not completed yet.
        accounting.reconcile(|| 2, CloseReason::IdleTimeout);
        assert_eq!(closed(&instruments).total(), 0);
    }

    #[test]
    fn retirement_is_recorded_as_max_lifetime() {
        let instruments = Arc::new(PoolInstruments::new());
        let accounting = ConnectionAccounting::new(Arc::clone(&instruments));
        assert!(accounting.keep(Duration::from_secs(1), Duration::from_secs(2)));
        assert!(!accounting.keep(Duration::from_secs(3), Duration::from_secs(2)));
        assert_eq!(closed(&instruments).max_lifetime, 1);
    }
}
