//! Opening a MySQL or MariaDB store: one connection outside the pool to check the
//! server, then the pool (every session strict, `SERIALIZABLE`, with lock waits bounded
//! by the busy timeout), then the schema on one of its connections.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::mysql::{MySqlConnection, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, MySqlPool};
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, Result, StoreError, StoreOptions};

use super::connect_options::{SQL_MODE, Target, endpoint};
use super::errors::map_error;
use super::schema;
use super::server::{self, Server};
use crate::common::accounting::ConnectionAccounting;
use crate::common::connect_check::cause;
use crate::common::names::Names;

/// The longest `open` waits for the pool to close after a failed schema setup.
const CLOSE_BOUND: Duration = Duration::from_secs(5);

/// What [`open`] produces.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) pool: MySqlPool,
    pub(crate) schema_version: i64,
    pub(crate) server: Server,
}

/// Checks the server on a first connection (reachable, `max_allowed_packet` large
/// enough for `max_value_bytes`), opens the pool (one connection at least,
/// `min_idle` if more) and creates or checks the schema. The connect phase is
/// bounded by the acquire timeout, the schema setup by the acquire timeout plus the
/// busy timeout.
pub(crate) async fn open(
    options: &StoreOptions,
    target: &Target,
    names: &Names,
    accounting: &Arc<ConnectionAccounting>,
    instruments: &PoolInstruments,
) -> Result<Opened> {
    let server = first_connection(options, target, instruments).await?;
    let pool = accounting
        .install_with_setup(
            pool_options_for(options),
            options.max_lifetime,
            session_setup(target.lock_wait_secs),
        )
        .connect_with(target.connect.clone())
        .await
        .map_err(|e| map_error(e, "open", Some(options.acquire_timeout), instruments))?;
    let bound = options.acquire_timeout + options.busy_timeout;
    let prepared = tokio::time::timeout(bound, async {
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| map_error(e, "open", Some(options.acquire_timeout), instruments))?;
        schema::prepare(&mut conn, names, instruments).await
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
    });
    match prepared {
        Ok(schema_version) => Ok(Opened {
            pool,
            schema_version,
            server,
        }),
        Err(error) => {
            let _ = tokio::time::timeout(CLOSE_BOUND, pool.close()).await;
            Err(error)
        }
    }
}

/// Connects once outside the pool, so a server that cannot be used is named at once
/// with the cause (sqlx's pool retries a refused connection until the acquire
/// timeout and then reports only the timeout), and reads what the store needs to
/// know about the server.
async fn first_connection(
    options: &StoreOptions,
    target: &Target,
    instruments: &PoolInstruments,
) -> Result<Server> {
    let address = endpoint(&target.connect);
    let connected = tokio::time::timeout(options.acquire_timeout, async {
        let mut conn = target.connect.connect().await?;
        let server = server::read(&mut conn).await;
        let _ = tokio::time::timeout(CLOSE_BOUND, conn.close()).await;
        server
    })
    .await;
    match connected {
        Ok(Ok(server)) => {
            server.check_packet_size(options.limits.max_value_bytes)?;
            Ok(server)
        }
        Ok(Err(error)) => {
            let cause = cause(&error);
            let mapped = map_error(error, "open", None, instruments);
            let kind = match mapped.kind() {
                ErrorKind::Config => ErrorKind::Config,
                _ => ErrorKind::Connection,
            };
            Err(
                StoreError::new(kind, format!("open: cannot connect to {address}: {cause}"))
                    .with_source(mapped),
            )
        }
        Err(_) => Err(StoreError::new(
            ErrorKind::Connection,
            format!(
                "open: cannot connect to {address}: no answer within {:.3} s",
                options.acquire_timeout.as_secs_f64()
            ),
        )),
    }
}

/// What every new connection runs before joining the pool: strict SQL mode, lock
/// waits (row and metadata) bounded by `lock_wait_secs`, and `SERIALIZABLE`
/// transactions.
fn session_setup(
    lock_wait_secs: u64,
) -> impl for<'c> Fn(&'c mut MySqlConnection) -> BoxFuture<'c, sqlx::Result<()>> + Send + Sync + 'static
{
    move |conn| {
        Box::pin(async move {
            let settings = format!(
                "SET SESSION sql_mode = '{SQL_MODE}', \
                 SESSION innodb_lock_wait_timeout = {lock_wait_secs}, \
                 SESSION lock_wait_timeout = {lock_wait_secs}"
            );
            sqlx::raw_sql(AssertSqlSafe(settings))
                .execute(&mut *conn)
                .await?;
            sqlx::raw_sql("SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                .execute(&mut *conn)
                .await
                .map(drop)
        })
    }
}

/// The pool settings from the store options. sqlx gets no `max_lifetime`: the
/// accounting hooks enforce it, so every retirement is counted. Connections are not
/// pinged before use: an operation that finds its connection dead on the first
/// statement moves to another one (see the `retry` module).
fn pool_options_for(options: &StoreOptions) -> MySqlPoolOptions {
    MySqlPoolOptions::new()
        .max_connections(options.max_connections)
        .min_connections(options.min_idle)
        .acquire_timeout(options.acquire_timeout)
        .idle_timeout(options.idle_timeout)
        .max_lifetime(None)
        .test_before_acquire(false)
}
