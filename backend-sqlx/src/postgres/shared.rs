//! The state a PostgreSQL store shares with its transactions, and the one path every
//! operation takes to get a connection.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use sqlx::PgPool;
use storage_api::backend::{InFlight, PoolInstruments};
use storage_api::{Result, StoreOptions};

use super::connect_options::endpoint;
use super::errors::map_error;
use super::lease::{BeginStatements, Lease};
use super::statements::Statements;
use crate::common::accounting::ConnectionAccounting;
use crate::common::gate::Gate;

/// Everything one open store owns: the pool, its statements, options and instruments.
pub(crate) struct Shared {
    pub(crate) pool: PgPool,
    pub(crate) sql: Statements,
    pub(crate) options: StoreOptions,
    /// The `application_name` of every connection of this store.
    pub(crate) application_name: String,
    /// The schema version found (or created) at open.
    pub(crate) schema_version: i64,
    pub(crate) instruments: Arc<PoolInstruments>,
    pub(crate) accounting: Arc<ConnectionAccounting>,
    /// Admission and closing.
    pub(crate) gate: Gate,
    /// How transactions start on this store's connections.
    pub(crate) begin: Arc<BeginStatements>,
    /// Whether connections go through a transaction-mode pooler: every statement runs
    /// in a transaction.
    pub(crate) transaction_pooler: bool,
    /// What open found about the server's free connection slots, when the pool cannot
    /// be filled; reported by every health check.
    pub(crate) sizing_warning: Option<String>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("options", &self.options)
            .field("application_name", &self.application_name)
            .field("closed", &self.gate.is_closed())
            .finish_non_exhaustive()
    }
}

/// The parts [`Shared::new`] is built from.
pub(crate) struct Parts {
    pub(crate) pool: PgPool,
    pub(crate) sql: Statements,
    pub(crate) options: StoreOptions,
    pub(crate) application_name: String,
    pub(crate) schema_version: i64,
    pub(crate) instruments: Arc<PoolInstruments>,
    pub(crate) accounting: Arc<ConnectionAccounting>,
    pub(crate) begin: BeginStatements,
    pub(crate) transaction_pooler: bool,
    pub(crate) sizing_warning: Option<String>,
}

impl Shared {
    /// An open store from its parts.
    pub(crate) fn new(parts: Parts) -> Arc<Self> {
        let gate = Gate::new(endpoint(&parts.pool.connect_options()));
        Arc::new(Self {
            pool: parts.pool,
            sql: parts.sql,
            options: parts.options,
            application_name: parts.application_name,
            schema_version: parts.schema_version,
            instruments: parts.instruments,
            accounting: parts.accounting,
            gate,
            begin: Arc::new(parts.begin),
            transaction_pooler: parts.transaction_pooler,
            sizing_warning: parts.sizing_warning,
        })
    }

    /// Admits one operation, or `Closed`.
    pub(crate) fn enter(&self) -> Result<InFlight> {
        self.gate.enter()
    }

    /// The current time from the store's clock (never the server's).
    pub(crate) fn now(&self) -> SystemTime {
        self.options.clock.now()
    }

    /// Acquires a pooled connection for `operation`, feeding the instruments.
    ///
    /// Fails with `Timeout` after the acquire timeout (opening a connection included),
    /// and with `Closed` as soon as the store starts closing, even while waiting.
    pub(crate) async fn lease(&self, operation: &str) -> Result<Lease> {
        let map = |error, waited| map_error(error, operation, Some(waited), &self.instruments);
        let conn = self
            .gate
            .acquire(&self.pool, &self.instruments, map)
            .await?;
        Ok(Lease::new(
            conn,
            Arc::clone(&self.begin),
            Arc::clone(&self.instruments),
            Arc::clone(&self.accounting),
        ))
    }

    /// `Closed` once `close` has given up on in-flight work.
    pub(crate) fn check_not_forced(&self) -> Result<()> {
        self.gate.check_not_forced()
    }
}
