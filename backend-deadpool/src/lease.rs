//! A checked-out connection and the rule for giving it back: a connection returns to
//! the pool only when nothing runs on it and it is outside any transaction. Otherwise
//! a background task waits for the running closure, rolls back, then returns it.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use storage_api::CloseReason;
use storage_api::backend::InFlight;

use crate::connection::{Autocheckpoint, ConnState, SqliteConn};
use crate::errors::DbError;
use crate::pool::{ConnPool, PooledConn};

/// A connection checked out for one operation or one transaction.
#[derive(Debug)]
pub(crate) struct Lease {
    held: Option<Held>,
    /// An `interact` future was dropped before its closure finished.
    interrupted: bool,
}

impl Lease {
    /// Wraps a checked-out connection; `work` counts as in flight until it is returned.
    pub(crate) fn new(object: PooledConn, pool: Arc<ConnPool>, work: InFlight) -> Self {
        Self {
            held: Some(Held {
                object: Some(object),
                pool,
                _work: work,
            }),
            interrupted: false,
        }
    }

    /// Runs `f` on the connection off the async threads, with SQLite's automatic
    /// checkpoint set as `autocheckpoint` says.
    pub(crate) async fn run<R, F>(
        &mut self,
        autocheckpoint: Autocheckpoint,
        f: F,
    ) -> Result<R, DbError>
    where
        F: FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self
            .held
            .as_ref()
            .and_then(Held::conn)
            .ok_or(DbError::Lost)?;
        self.interrupted = true;
        let result = conn.interact(autocheckpoint, f).await;
        self.interrupted = false;
        result?
    }

    /// Runs the short `f` on the calling thread; see [`SqliteConn::run_here`].
    pub(crate) fn run_here<R>(
        &mut self,
        busy_timeout: Duration,
        autocheckpoint: Autocheckpoint,
        f: impl FnOnce(&mut Connection) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        let conn = self
            .held
            .as_ref()
            .and_then(Held::conn)
            .ok_or(DbError::Lost)?;
        conn.run_here(busy_timeout, autocheckpoint, f)
    }

    /// Whether an earlier `run` was cancelled before its closure finished.
    pub(crate) fn was_interrupted(&self) -> bool {
        self.interrupted
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        let state = held.conn().map_or(ConnState::Broken, SqliteConn::state);
        if !self.interrupted && state != ConnState::Dirty {
            held.give_back(state); // returned, or discarded if broken
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(held.reset_and_return())),
            // No runtime to wait on: never return it mid-transaction, discard it.
            Err(_) => held.discard(),
        }
    }
}

/// The checked-out connection and the in-flight guard that goes with it.
#[derive(Debug)]
struct Held {
    object: Option<PooledConn>,
    pool: Arc<ConnPool>,
    _work: InFlight,
}

impl Held {
    fn conn(&self) -> Option<&SqliteConn> {
        self.object.as_deref()
    }

    async fn reset_and_return(self) {
        if let Some(conn) = self.conn() {
            conn.reset().await;
        }
    }

    /// Returns the connection, whose state the caller has just looked at.
    fn give_back(mut self, state: ConnState) {
        if let Some(object) = self.object.take() {
            self.pool.give_back_as(object, state);
        }
    }

    fn discard(mut self) {
        if let Some(object) = self.object.take() {
            self.pool.discard(object, CloseReason::Broken);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(object) = self.object.take() {
            self.pool.give_back(object);
        }
    }
}
