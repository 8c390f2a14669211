//! Opening a PostgreSQL store: the pool, then the schema on one of its connections.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool, Row};
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, Result, SslMode, StoreError, StoreOptions};

use super::connect_options::{SESSION_SETUP, Target, endpoint, lock_timeout_millis};
use super::errors::map_error;
use super::schema;
use super::sizing;
use super::tls::handshake_failure;
use crate::common::accounting::ConnectionAccounting;
use crate::common::connect_check::cause;
use crate::common::names::Names;

/// The longest `open` waits for the pool to close after a failed schema setup.
const CLOSE_BOUND: Duration = Duration::from_secs(5);

/// What [`open`] produces.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) pool: PgPool,
    pub(crate) schema_version: i64,
    /// Set when the server has too few free connection slots to fill the pool.
    pub(crate) sizing_warning: Option<String>,
}

/// Opens the pool (one connection at least, `min_idle` if more), creates or checks
/// the schema, and compares the pool's size with the server's free connection slots
/// (warning, not failing, when it cannot be filled). The connect phase is bounded by
/// the acquire timeout; the schema setup by the acquire timeout plus the busy timeout
/// (its lock waits). Through a transaction-mode pooler, connections get no session
/// setup (transactions set what they need locally).
pub(crate) async fn open(
    options: &StoreOptions,
    target: &Target,
    names: &Names,
    accounting: &Arc<ConnectionAccounting>,
    instruments: &PoolInstruments,
) -> Result<Opened> {
    first_connection(options, target, instruments).await?;
    let setup = (!target.transaction_pooler).then(|| target.lock_timeout.clone());
    let pool = accounting
        .install_with_setup(
            pool_options_for(options),
            options.max_lifetime,
            session_setup(setup),
        )
        .connect_with(target.connect.clone())
        .await
        .map_err(|e| map_error(e, "open", Some(options.acquire_timeout), instruments))?;
    let bound = options.acquire_timeout + options.busy_timeout;
    let lock_timeout_ms = lock_timeout_millis(options.busy_timeout);
    let prepared = tokio::time::timeout(bound, async {
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| map_error(e, "open", Some(options.acquire_timeout), instruments))?;
        let version = schema::prepare(&mut conn, names, lock_timeout_ms, instruments).await?;
        let slots = sizing::read(&mut conn).await;
        Ok((version, slots))
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
        Ok((schema_version, slots)) => {
            let sizing_warning =
                slots.and_then(|slots| slots.warning(options.max_connections, pool.size()));
            if let Some(warning) = &sizing_warning {
                tracing::warn!(
                    backend = "sqlx",
                    address = %endpoint(&target.connect),
                    "{warning}"
                );
            }
            Ok(Opened {
                pool,
                schema_version,
                sizing_warning,
            })
        }
        Err(error) => {
            let _ = tokio::time::timeout(CLOSE_BOUND, pool.close()).await;
            Err(error)
        }
    }
}

/// Connects once outside the pool, so a server that cannot be used is named at once
/// with the cause (sqlx's pool retries a refused connection until the acquire
/// timeout and then reports only the timeout).
async fn first_connection(
    options: &StoreOptions,
    target: &Target,
    instruments: &PoolInstruments,
) -> Result<()> {
    let address = endpoint(&target.connect);
    match tokio::time::timeout(options.acquire_timeout, target.connect.connect()).await {
        Ok(Ok(conn)) => {
            let shared = if target.transaction_pooler {
                Ok(false)
            } else {
                let probe = sessions_are_shared(conn, target);
                tokio::time::timeout(options.acquire_timeout, probe)
                    .await
                    .unwrap_or(Ok(false))
            };
            match shared {
                Ok(true) => Err(StoreError::config(format!(
                    "open: connections to {address} share server sessions (a transaction-mode \
                     pooler, such as PgBouncer with pool_mode = transaction): session settings \
                     and prepared statements would leak between clients; set \
                     db_transaction_pooler = true, or use session mode"
                ))),
                _ => Ok(()),
            }
        }
        Ok(Err(error)) => {
            let certificate = handshake_failure(&error).is_some_and(|(settings, _)| settings);
            let cause = cause(&error) + &plaintext_refused_hint(&error, target.ssl_mode);
            let mapped = map_error(error, "open", None, instruments);
            let kind = match mapped.kind() {
                ErrorKind::Config => ErrorKind::Config,
                _ if certificate => ErrorKind::Config,
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

/// Whether two connections of this store share one server session, as they do behind a
/// transaction-mode pooler: `first` sets a session variable to the store's unique
/// `application_name` outside any transaction (so such a pooler hands its server
/// session back), and a second connection looks for it (a pooler hands out the session
/// it got back last). The variable is reset wherever it is seen. Closes both.
async fn sessions_are_shared(mut first: PgConnection, target: &Target) -> sqlx::Result<bool> {
    let marker = target.application_name.replace('\'', "");
    let probe = async {
        let mut second = target.connect.connect().await?;
        let set = format!("SET pooledstore.session_probe = '{marker}'");
        sqlx::raw_sql(AssertSqlSafe(set))
            .execute(&mut first)
            .await?;
        let row = sqlx::raw_sql("SELECT current_setting('pooledstore.session_probe', true)")
            .fetch_one(&mut second)
            .await?;
        let seen: Option<String> = row.try_get(0)?;
        let shared = seen.as_deref() == Some(marker.as_str());
        let reset = "RESET pooledstore.session_probe";
        let _ = sqlx::raw_sql(reset).execute(&mut second).await;
        let _ = tokio::time::timeout(CLOSE_BOUND, second.close()).await;
        Ok(shared)
    };
    let shared = probe.await;
    let _ = sqlx::raw_sql("RESET pooledstore.session_probe")
        .execute(&mut first)
        .await;
    let _ = tokio::time::timeout(CLOSE_BOUND, first.close()).await;
    shared
}

/// A hint for a server that refused an unencrypted connection: with `sslmode` disable
/// or allow, an authentication refusal (class 28) is most often a `pg_hba.conf` that
/// accepts only TLS (`hostssl`).
fn plaintext_refused_hint(error: &sqlx::Error, mode: SslMode) -> String {
    let refused = matches!(error, sqlx::Error::Database(db)
        if db.code().is_some_and(|code| code.starts_with("28")));
    if refused && !mode.requires_tls() && mode != SslMode::Prefer {
        format!(
            "; this connection is not encrypted (sslmode={mode}) and the server may accept \
             only TLS connections: use sslmode=require or stronger"
        )
    } else {
        String::new()
    }
}

/// What every new connection runs before joining the pool: the session settings of
/// [`SESSION_SETUP`], with `lock_timeout`; nothing when `lock_timeout` is `None`
/// (through a transaction-mode pooler, where session settings would stick to a server
/// connection other clients share).
fn session_setup(
    lock_timeout: Option<String>,
) -> impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, sqlx::Result<()>> + Send + Sync + 'static
{
    move |conn| {
        let lock_timeout = lock_timeout.clone();
        Box::pin(async move {
            let Some(lock_timeout) = lock_timeout else {
                return Ok(());
            };
            let setup = SESSION_SETUP.replace("{lock_timeout}", &lock_timeout);
            sqlx::raw_sql(AssertSqlSafe(setup))
                .execute(conn)
                .await
                .map(drop)
        })
    }
}

/// The pool settings from the store options. sqlx gets no `max_lifetime`: the
/// accounting hooks enforce it, so every retirement is counted. Connections are not
/// pinged before use: an operation that finds its connection dead on the first
/// statement moves to another one (see the `retry` module).
fn pool_options_for(options: &StoreOptions) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(options.max_connections)
        .min_connections(options.min_idle)
        .acquire_timeout(options.acquire_timeout)
        .idle_timeout(options.idle_timeout)
        .max_lifetime(None)
        .test_before_acquire(false)
}
