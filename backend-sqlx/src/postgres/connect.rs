//! How a PostgreSQL store opens: the [`Open`] of [`PgEngine`]. The server check refuses
//! connections that share server sessions (a transaction-mode pooler the store was not
//! told of); every session gets the settings of [`SESSION_SETUP`]; after the schema,
//! open compares the pool's size with the server's free connection slots (warning, not
//! failing, when it cannot be filled).

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};
use storage_api::backend::PoolInstruments;
use storage_api::{Result, SslMode, StoreError, StoreOptions};
use tokio::time::Instant;

use super::connect_options::{self, SESSION_SETUP, Target, endpoint, lock_timeout_millis};
use super::engine::{PgEngine, session_encryption};
use super::schema;
use super::sizing::{self, Slots};
use super::statements::{BeginStatements, Statements};
use super::tls::handshake_failure;
use crate::common::engine::open::{CLOSE_BOUND, Open, ServerCheck};
use crate::common::names::Names;

impl Open for PgEngine {
    type Target = Target;
    /// The server's connection slots, read after the schema (`None` where the server
    /// does not say).
    type Server = Option<Slots>;

    fn target(options: &StoreOptions) -> Result<Target> {
        connect_options::target(options)
    }

    fn connect_options(target: &Target) -> &PgConnectOptions {
        &target.connect
    }

    fn endpoint(connect: &PgConnectOptions) -> String {
        endpoint(connect)
    }

    /// Unless the store was told it goes through a transaction-mode pooler, a probe
    /// (bounded by the acquire timeout, its own failures ignored) makes sure
    /// connections do not share server sessions: `Config` when they do.
    async fn check_server(
        target: &Target,
        conn: PgConnection,
        _deadline: Instant,
        options: &StoreOptions,
    ) -> std::result::Result<Option<Slots>, ServerCheck> {
        if target.transaction_pooler {
            return Ok(None);
        }
        let probe = sessions_are_shared(conn, target);
        match tokio::time::timeout(options.acquire_timeout, probe).await {
            Ok(Ok(true)) => Err(ServerCheck::Refused(StoreError::config(format!(
                "open: connections to {} share server sessions (a transaction-mode \
                 pooler, such as PgBouncer with pool_mode = transaction): session settings \
                 and prepared statements would leak between clients; set \
                 db_transaction_pooler = true, or use session mode",
                endpoint(&target.connect)
            )))),
            _ => Ok(None),
        }
    }

    /// With `sslmode` disable or allow, an authentication refusal (class 28) is most
    /// often a `pg_hba.conf` that accepts only TLS (`hostssl`).
    fn refusal_hint(target: &Target, error: &sqlx::Error) -> String {
        let refused = matches!(error, sqlx::Error::Database(db)
            if db.code().is_some_and(|code| code.starts_with("28")));
        let mode = target.ssl_mode;
        if refused && !mode.requires_tls() && mode != SslMode::Prefer {
            format!(
                "; this connection is not encrypted (sslmode={mode}) and the server may accept \
                 only TLS connections: use sslmode=require or stronger"
            )
        } else {
            String::new()
        }
    }

    /// A server certificate the TLS settings do not accept.
    fn settings_at_fault(error: &sqlx::Error) -> bool {
        handshake_failure(error).is_some_and(|(settings, _)| settings)
    }

    /// The settings of [`SESSION_SETUP`], with `lock_timeout`, recording what it read
    /// of the session for the health check; nothing through a transaction-mode pooler,
    /// where session settings would stick to a server connection other clients share
    /// (transactions set what they need locally, and health checks read the session).
    fn session_setup(
        target: &Target,
    ) -> impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, sqlx::Result<()>> + Send + Sync + 'static
    {
        let setup = (!target.transaction_pooler)
            .then(|| SESSION_SETUP.replace("{lock_timeout}", &target.lock_timeout));
        let sessions = Arc::clone(&target.sessions);
        move |conn| {
            let setup = setup.clone();
            let sessions = Arc::clone(&sessions);
            Box::pin(async move {
                let Some(setup) = setup else {
                    return Ok(());
                };
                let row = sqlx::raw_sql(AssertSqlSafe(setup)).fetch_one(conn).await?;
                let (version, encrypted): (String, bool) = (row.try_get(3)?, row.try_get(4)?);
                sessions.record(version, session_encryption(encrypted).to_owned());
                Ok(())
            })
        }
    }

    /// The schema, then the server's connection slots on the same connection.
    async fn prepare(
        conn: &mut PgConnection,
        server: &mut Option<Slots>,
        names: &Names,
        options: &StoreOptions,
        instruments: &PoolInstruments,
    ) -> Result<i64> {
        let lock_timeout_ms = lock_timeout_millis(options.busy_timeout);
        let version = schema::prepare(conn, names, lock_timeout_ms, instruments).await?;
        *server = sizing::read(conn).await;
        Ok(version)
    }

    /// Warns (and keeps the warning for health checks) when the server has too few free
    /// connection slots to fill the pool.
    fn opened(
        target: Target,
        server: Option<Slots>,
        names: &Names,
        options: &StoreOptions,
        pool_size: u32,
    ) -> Self {
        let sizing_warning =
            server.and_then(|slots| slots.warning(options.max_connections, pool_size));
        if let Some(warning) = &sizing_warning {
            tracing::warn!(
                backend = "sqlx",
                address = %endpoint(&target.connect),
                "{warning}"
            );
        }
        PgEngine {
            sql: Statements::new(names),
            begin: BeginStatements::new(target.transaction_pooler, &target.lock_timeout),
            application_name: target.application_name,
            transaction_pooler: target.transaction_pooler,
            sizing_warning,
            sessions: target.sessions,
        }
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
