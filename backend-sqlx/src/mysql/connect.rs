//! How a MySQL or MariaDB store opens: the [`Open`] of [`MysqlEngine`]. The server
//! check reads the server's version and `max_allowed_packet` (see [`server`]); every
//! session runs strict, `SERIALIZABLE`, with lock waits bounded by the busy timeout.

use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{AssertSqlSafe, Connection};
use storage_api::backend::PoolInstruments;
use storage_api::{Result, StoreOptions};
use tokio::time::Instant;

use super::connect_options::{self, SQL_MODE, Target, endpoint, statement_time};
use super::engine::{MysqlEngine, SESSION_READBACK, session_detail};
use super::schema;
use super::server::{self, Server};
use super::statements::Statements;
use crate::common::engine::open::{CLOSE_BOUND, Open, ServerCheck};
use crate::common::names::Names;

impl Open for MysqlEngine {
    type Target = Target;
    type Server = Server;

    fn target(options: &StoreOptions) -> Result<Target> {
        connect_options::target(options)
    }

    fn connect_options(target: &Target) -> &MySqlConnectOptions {
        &target.connect
    }

    fn endpoint(connect: &MySqlConnectOptions) -> String {
        endpoint(connect)
    }

    /// Reads the server (closing the connection) by `deadline`; `Config` when
    /// `max_allowed_packet` is too small for `max_value_bytes`.
    async fn check_server(
        _target: &Target,
        mut conn: MySqlConnection,
        deadline: Instant,
        options: &StoreOptions,
    ) -> std::result::Result<Server, ServerCheck> {
        let read = tokio::time::timeout_at(deadline, async {
            let server = server::read(&mut conn).await;
            let _ = tokio::time::timeout(CLOSE_BOUND, conn.close()).await;
            server
        });
        let server = match read.await {
            Ok(Ok(server)) => server,
            Ok(Err(error)) => return Err(ServerCheck::Unreadable(error)),
            Err(_) => return Err(ServerCheck::NoAnswer),
        };
        server
            .check_packet_size(options.limits.max_value_bytes)
            .map_err(ServerCheck::Refused)?;
        Ok(server)
    }

    /// Strict SQL mode, lock waits (row and metadata) bounded by the busy timeout in
    /// whole seconds, and `SERIALIZABLE` transactions; in the same round trip, reads
    /// back the server's version and the settings the health check reports
    /// ([`SESSION_READBACK`]), recording them.
    fn session_setup(
        target: &Target,
    ) -> impl for<'c> Fn(&'c mut MySqlConnection) -> BoxFuture<'c, sqlx::Result<()>>
    + Send
    + Sync
    + 'static {
        let lock_wait_secs = target.lock_wait_secs;
        let setup = format!(
            "SET SESSION sql_mode = '{SQL_MODE}', \
             SESSION innodb_lock_wait_timeout = {lock_wait_secs}, \
             SESSION lock_wait_timeout = {lock_wait_secs}; \
             SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE; \
             {SESSION_READBACK}"
        );
        let sessions = Arc::clone(&target.sessions);
        move |conn| {
            let setup = setup.clone();
            let sessions = Arc::clone(&sessions);
            Box::pin(async move {
                let rows = sqlx::raw_sql(AssertSqlSafe(setup)).fetch_all(conn).await?;
                let row = rows.first().ok_or(sqlx::Error::RowNotFound)?;
                let (version, detail) = session_detail(row)?;
                sessions.record(version, detail);
                Ok(())
            })
        }
    }

    async fn prepare(
        conn: &mut MySqlConnection,
        _server: &mut Server,
        names: &Names,
        _options: &StoreOptions,
        instruments: &PoolInstruments,
    ) -> Result<i64> {
        schema::prepare(conn, names, instruments).await
    }

    /// On MariaDB, single-key statements that may wait on a lock are bounded by the
    /// busy timeout to the millisecond.
    fn opened(
        target: Target,
        server: Server,
        names: &Names,
        options: &StoreOptions,
        _pool_size: u32,
    ) -> Self {
        let lock_bound = server
            .is_mariadb()
            .then(|| statement_time(options.busy_timeout));
        MysqlEngine {
            sql: Statements::new(names, lock_bound.as_deref()),
            server_version: server.version,
            autoinc_step: OnceLock::new(),
            sessions: target.sessions,
        }
    }
}
