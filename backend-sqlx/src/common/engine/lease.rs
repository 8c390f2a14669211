//! [`Lease`]: one pooled connection on loan to an operation or transaction, which
//! knows when the connection can no longer go back to the pool.
//!
//! A connection is evicted (closed, counted as `broken`) instead of returned when
//! - a statement fails because the connection is gone (I/O error, a connection
//!   exception, the server ending the session): sqlx would notice on its ping at
//!   return, but this makes sure and counts it; or
//! - the lease is dropped while a statement is in flight (its future was cancelled):
//!   the connection's state is unknown, and it may even sit inside a transaction sqlx
//!   no longer tracks.
//!
//! A lease dropped between statements inside a transaction queues a `ROLLBACK`, which
//! sqlx sends when the connection returns to the pool. One dropped clean (no statement
//! in flight, no transaction open) parks its connection in the store's [`Stash`] for
//! the next operation.

use std::fmt;
use std::sync::Arc;

use sqlx::{Database, SqlStr};
use sqlx_core::transaction::TransactionManager;
use storage_api::backend::PoolInstruments;
use storage_api::{CloseReason, ErrorKind, Result, StoreError};

use super::errors::{is_connection_loss, is_lock_wait, is_server_error, map_error};
use super::{Conn, Engine};
use crate::common::accounting::ConnectionAccounting;
use crate::common::retry::Failure;
use crate::common::stash::{Lent, Stash};

/// The transaction manager of engine `E`'s connections.
type Manager<E> = <<E as Engine>::Db as Database>::TransactionManager;

/// A pooled connection on loan, parked, returned or evicted when dropped.
pub(crate) struct Lease<E: Engine> {
    /// Taken only when the lease is dropped.
    conn: Option<Lent<E::Db>>,
    /// Where a connection dropped clean is parked.
    stash: Arc<Stash<E::Db>>,
    instruments: Arc<PoolInstruments>,
    accounting: Arc<ConnectionAccounting>,
    /// A statement was started and has not finished.
    in_flight: bool,
    /// Statements finished (successfully or not) on this lease.
    statements: u32,
    /// The lease's first statement found the connection dead.
    stale: bool,
    /// The last failed statement waited out the busy timeout for a lock.
    lock_wait: bool,
    /// The connection will be closed rather than returned.
    evicted: bool,
    /// The kind of the server error that failed a statement of the current
    /// transaction, if any.
    aborted: Option<ErrorKind>,
}

impl<E: Engine> fmt::Debug for Lease<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("in_flight", &self.in_flight)
            .field("statements", &self.statements)
            .field("evicted", &self.evicted)
            .field("aborted", &self.aborted)
            .finish_non_exhaustive()
    }
}

impl<E: Engine> Lease<E> {
    /// A lease of `conn`, parked in `stash` when dropped clean, recording evictions in
    /// `accounting`.
    pub(crate) fn new(
        conn: Lent<E::Db>,
        stash: Arc<Stash<E::Db>>,
        instruments: Arc<PoolInstruments>,
        accounting: Arc<ConnectionAccounting>,
    ) -> Self {
        Self {
            conn: Some(conn),
            stash,
            instruments,
            accounting,
            in_flight: false,
            statements: 0,
            stale: false,
            lock_wait: false,
            evicted: false,
            aborted: None,
        }
    }

    /// The pooled connection.
    fn lent(&self) -> &Lent<E::Db> {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }

    /// The connection, for one statement; pass its result to [`finish`](Self::finish).
    pub(crate) fn start(&mut self) -> &mut Conn<E> {
        self.in_flight = true;
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }

    /// Ends the statement begun with [`start`](Self::start): maps its error for
    /// `operation`, evicting the connection if the error says it is gone.
    pub(crate) fn finish<T>(&mut self, operation: &str, result: sqlx::Result<T>) -> Result<T> {
        self.in_flight = false;
        self.statements += 1;
        result.map_err(|error| {
            self.lock_wait = is_lock_wait::<E>(&error);
            let lost = is_connection_loss::<E>(&error);
            if lost {
                self.stale = self.statements == 1;
                self.evict();
            }
            let server = is_server_error(&error);
            let mapped = map_error::<E>(error, operation, None, &self.instruments);
            if (server || lost) && self.in_transaction() && self.aborted.is_none() {
                self.aborted = Some(mapped.kind());
            }
            mapped
        })
    }

    /// What the lease saw of the last failure: whether its very first statement found
    /// the connection dead (so the operation may safely move to another connection:
    /// nothing it asked for was done), and whether a lock wait ran out.
    pub(crate) fn failure(&self) -> Failure {
        Failure {
            stale: self.stale,
            lock_wait: self.lock_wait,
        }
    }

    /// Starts a transaction with `statement` (the engine's serializable `BEGIN`).
    pub(crate) async fn begin(&mut self, operation: &str, statement: SqlStr) -> Result<()> {
        self.aborted = None;
        let begun = Manager::<E>::begin(self.start(), Some(statement)).await;
        self.finish(operation, begun)
    }

    /// Commits the current transaction. One in which a statement failed on the server
    /// is not committed (PostgreSQL would answer `COMMIT` with a silent rollback, MySQL
    /// would commit the statements that did succeed): it fails with that error's kind.
    pub(crate) async fn commit(&mut self, operation: &str) -> Result<()> {
        self.check_not_aborted(operation)?;
        let committed = Manager::<E>::commit(self.start()).await;
        self.finish(operation, committed)
    }

    /// Rolls the current transaction back, if there is one.
    pub(crate) async fn rollback(&mut self, operation: &str) -> Result<()> {
        if !self.in_transaction() {
            return Ok(());
        }
        let rolled_back = Manager::<E>::rollback(self.start()).await;
        self.aborted = None;
        self.finish(operation, rolled_back)
    }

    /// `Err` with the kind of the server error that failed a statement of the current
    /// transaction.
    pub(crate) fn check_not_aborted(&self, operation: &str) -> Result<()> {
        match self.aborted {
            None => Ok(()),
            Some(kind) => Err(StoreError::new(
                kind,
                format!(
                    "{operation}: {}; roll it back{}",
                    E::ABORTED,
                    if kind.is_retryable() {
                        " and retry it"
                    } else {
                        ""
                    }
                ),
            )),
        }
    }

    /// Whether the connection will be closed rather than returned to the pool.
    pub(crate) fn evicted(&self) -> bool {
        self.evicted
    }

    /// Whether the lease has been out of the pool for long enough that it should go
    /// back before serving more work.
    pub(crate) fn is_due(&self) -> bool {
        self.lent().is_due()
    }

    /// Whether a transaction is open on the connection.
    fn in_transaction(&self) -> bool {
        Manager::<E>::get_transaction_depth(self.lent()) > 0
    }

    /// Marks the connection to be closed, not returned, and counts it as broken.
    fn evict(&mut self) {
        if !self.evicted {
            self.evicted = true;
            self.accounting.closing(CloseReason::Broken);
            if let Some(conn) = self.conn.as_mut() {
                conn.close_on_drop();
            }
        }
    }
}

impl<E: Engine> Drop for Lease<E> {
    fn drop(&mut self) {
        if self.in_flight {
            self.evict();
        }
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if self.evicted {
            return;
        }
        if Manager::<E>::get_transaction_depth(&conn) > 0 {
            Manager::<E>::start_rollback(&mut conn);
        } else {
            self.stash.park(conn);
        }
    }
}
