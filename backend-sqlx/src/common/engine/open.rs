//! Opening a server engine's store, the same for every engine: one connection outside
//! the pool to check the server, then the pool (every session set up as the engine
//! says), then the schema on one of its connections. The connect phase is bounded by
//! the acquire timeout, the schema setup by the acquire timeout plus the busy timeout
//! (its lock waits).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use group_commit::queue::Queue;
use sqlx::pool::PoolOptions;
use sqlx::{ConnectOptions, Connection, Database, Pool};
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, Result, StoreError, StoreOptions};
use tokio::time::Instant;

use super::Conn;
use super::errors::map_error;
use super::schema::Catalog;
use super::shared::Shared;
use super::store::EngineStore;
use crate::common::accounting::ConnectionAccounting;
use crate::common::gate::Gate;
use crate::common::names::Names;
use crate::common::stash::Stash;

/// The longest `open` waits for the pool to close after a failed schema setup, and for
/// a first connection to close.
pub(crate) const CLOSE_BOUND: Duration = Duration::from_secs(5);

/// The connect options of engine `E`'s driver.
pub(crate) type ConnectOptionsOf<E> = <Conn<E> as Connection>::Options;

/// How a server check failed.
#[derive(Debug)]
pub(crate) enum ServerCheck {
    /// Reading the server failed: reported as a failure to connect.
    Unreadable(sqlx::Error),
    /// The server did not answer by the deadline.
    NoAnswer,
    /// The server cannot serve the store as configured.
    Refused(StoreError),
}

/// How an engine opens a store: its connection settings, its server checks, its session
/// setup and its schema.
pub(crate) trait Open: Catalog {
    /// Where and how a store connects: the driver's options and what the engine derives
    /// from the store's options.
    type Target: Send + Sync;
    /// What open learns about the server.
    type Server: Send;

    /// The connection settings `options` name; `Config` for a URL that does not parse,
    /// names no database or has a parameter the driver does not know.
    fn target(options: &StoreOptions) -> Result<Self::Target>;

    /// The driver's options every connection uses.
    fn connect_options(target: &Self::Target) -> &ConnectOptionsOf<Self>;

    /// Where connections go, for messages: `host:port` or a socket; never a secret.
    fn endpoint(connect: &ConnectOptionsOf<Self>) -> String;

    /// The server checks, on a first connection made outside the pool (which they
    /// close): what the store needs to know about the server, read by `deadline` (the
    /// end of the acquire timeout the connection was opened in), and whether the server
    /// can serve the store as `options` configure it.
    fn check_server(
        target: &Self::Target,
        conn: Conn<Self>,
        deadline: Instant,
        options: &StoreOptions,
    ) -> impl Future<Output = std::result::Result<Self::Server, ServerCheck>> + Send;

    /// What to add to the cause of a refused first connection (`; …`), if anything.
    fn refusal_hint(_target: &Self::Target, _error: &sqlx::Error) -> String {
        String::new()
    }

    /// Whether a failed first connection is the store's settings' fault (a `Config`
    /// error, such as a certificate the TLS settings do not accept) rather than the
    /// server's.
    fn settings_at_fault(_error: &sqlx::Error) -> bool {
        false
    }

    /// What every new connection runs before it joins the pool.
    fn session_setup(
        target: &Self::Target,
    ) -> impl for<'c> Fn(&'c mut Conn<Self>) -> BoxFuture<'c, sqlx::Result<()>> + Send + Sync + 'static;

    /// Creates what is missing of the schema for `names` and checks what is there
    /// (see [`schema::check`](super::schema::check)), returning the schema version; may
    /// read more about the server into `server` on the same connection.
    fn prepare<'c>(
        conn: &'c mut Conn<Self>,
        server: &'c mut Self::Server,
        names: &'c Names,
        options: &'c StoreOptions,
        instruments: &'c PoolInstruments,
    ) -> impl Future<Output = Result<i64>> + Send + 'c;

    /// The engine of a store open on a pool of `pool_size` connections.
    fn opened(
        target: Self::Target,
        server: Self::Server,
        names: &Names,
        options: &StoreOptions,
        pool_size: u32,
    ) -> Self;
}

impl<E: Open> EngineStore<E> {
    /// Connects to the server `options.url` names, creating the schema if needed, and
    /// fills the pool up to `min_idle` (one connection at least).
    pub(crate) async fn open(options: StoreOptions) -> Result<Self> {
        let target = E::target(&options)?;
        let names = Names::new(&options.table);
        let instruments = Arc::new(PoolInstruments::new());
        let accounting = ConnectionAccounting::new(Arc::clone(&instruments));
        let mut server = first_connection::<E>(&target, &options, &instruments).await?;
        let pool = accounting
            .install_with_setup(
                pool_options(&options),
                options.max_lifetime,
                E::session_setup(&target),
            )
            .connect_with(E::connect_options(&target).clone())
            .await
            .map_err(|e| map_error::<E>(e, "open", Some(options.acquire_timeout), &instruments))?;
        let schema_version =
            match prepare::<E>(&pool, &mut server, &names, &options, &instruments).await {
                Ok(version) => version,
                Err(error) => {
                    let _ = tokio::time::timeout(CLOSE_BOUND, pool.close()).await;
                    return Err(error);
                }
            };
        let endpoint = E::endpoint(&pool.connect_options());
        let engine = E::opened(target, server, &names, &options, pool.size());
        let stash = Stash::new(&options);
        let store = Self {
            shared: Arc::new(Shared {
                engine,
                pool,
                options,
                schema_version,
                instruments,
                accounting,
                gate: Gate::diagnosed(endpoint, E::diagnosis()),
                writes: Queue::default(),
                check_clock: Arc::default(),
                stash,
            }),
        };
        tracing::debug!(backend = "sqlx", schema_version, "opened {store:?}");
        Ok(store)
    }
}

/// Connects once outside the pool, so a server that cannot be used is named at once
/// with the cause (sqlx's pool retries a refused connection until the acquire timeout
/// and then reports only the timeout), and runs the engine's server checks on it.
async fn first_connection<E: Open>(
    target: &E::Target,
    options: &StoreOptions,
    instruments: &PoolInstruments,
) -> Result<E::Server> {
    let address = E::endpoint(E::connect_options(target));
    let deadline = Instant::now() + options.acquire_timeout;
    let connected = tokio::time::timeout_at(deadline, E::connect_options(target).connect()).await;
    let checked = match connected {
        Ok(Ok(conn)) => E::check_server(target, conn, deadline, options).await,
        Ok(Err(error)) => Err(ServerCheck::Unreadable(error)),
        Err(_) => Err(ServerCheck::NoAnswer),
    };
    checked.map_err(|failure| match failure {
        ServerCheck::Unreadable(error) => cannot_connect::<E>(target, &address, error, instruments),
        ServerCheck::NoAnswer => StoreError::new(
            ErrorKind::Connection,
            format!(
                "open: cannot connect to {address}: no answer within {:.3} s",
                options.acquire_timeout.as_secs_f64()
            ),
        ),
        ServerCheck::Refused(error) => error,
    })
}

/// The error for a first connection that failed with `error`: `Config` when the
/// store's settings are at fault (rejected credentials, an unknown database, a
/// certificate the TLS settings refuse), else `Connection`; naming the address and the
/// cause.
fn cannot_connect<E: Open>(
    target: &E::Target,
    address: &str,
    error: sqlx::Error,
    instruments: &PoolInstruments,
) -> StoreError {
    let settings = E::settings_at_fault(&error);
    let cause = E::diagnosis().cause(&error) + &E::refusal_hint(target, &error);
    let mapped = map_error::<E>(error, "open", None, instruments);
    let kind = match mapped.kind() {
        ErrorKind::Config => ErrorKind::Config,
        _ if settings => ErrorKind::Config,
        _ => ErrorKind::Connection,
    };
    StoreError::new(kind, format!("open: cannot connect to {address}: {cause}")).with_source(mapped)
}

/// Sets up the schema on a pooled connection within the acquire timeout plus the busy
/// timeout.
async fn prepare<E: Open>(
    pool: &Pool<E::Db>,
    server: &mut E::Server,
    names: &Names,
    options: &StoreOptions,
    instruments: &PoolInstruments,
) -> Result<i64> {
    let bound = options.acquire_timeout + options.busy_timeout;
    tokio::time::timeout(bound, async {
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| map_error::<E>(e, "open", Some(options.acquire_timeout), instruments))?;
        E::prepare(&mut conn, server, names, options, instruments).await
    })
    .await
    .unwrap_or_else(|_| {
        Err(StoreError::new(
            ErrorKind::Timeout,
            format!(
                "open: setting up the schema took over {:.3} s",
                bound.as_secs_f64()
            ),
        ))
    })
}

/// The pool settings from the store options. sqlx gets no `max_lifetime`: the
/// accounting hooks enforce it, so every retirement is counted. Connections are not
/// pinged before use: an operation that finds its connection dead on the first
/// statement moves to another one (see the `run` module).
fn pool_options<DB: Database>(options: &StoreOptions) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(options.max_connections)
        .min_connections(options.min_idle)
        .acquire_timeout(options.acquire_timeout)
        .idle_timeout(options.idle_timeout)
        .max_lifetime(None)
        .test_before_acquire(false)
}
