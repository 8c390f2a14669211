//! [`ScratchSchema`]: a throwaway namespace on a PostgreSQL server (a schema) or a MySQL
//! or MariaDB server (a database), for running the conformance kit (or any test) beside
//! an application's data without touching it. What differs by engine is [`Scratch`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};
use storage_api::{ErrorKind, Result, StoreError, StoreOptions};

use super::{Conn, Engine};
#[cfg(feature = "mysql")]
use crate::mysql::MysqlEngine;
#[cfg(feature = "postgres")]
use crate::postgres::PgEngine;
use crate::url_engine;

/// The connection settings of engine `E`'s connections.
type ConnectWith<E> = <Conn<E> as Connection>::Options;

/// How an engine makes, scopes and drops a scratch namespace.
pub(crate) trait Scratch: Engine {
    /// What the engine calls the namespace: `schema`, `database`.
    const NAMESPACE: &'static str;

    /// The statement creating the namespace `name` (a generated name, never input).
    fn create_statement(name: &str) -> String;

    /// The statement dropping the namespace `name` with everything in it.
    fn drop_statement(name: &str) -> String;

    /// `url` with its connections' tables kept in the namespace `name`.
    fn scoped_url(url: &str, name: &str) -> String;

    /// The settings a store of `options` connects with (TLS included).
    fn connect_options(options: &StoreOptions) -> Result<ConnectWith<Self>>;

    /// Where `connect` goes (`host:port` or a socket), for errors.
    fn endpoint(connect: &ConnectWith<Self>) -> String;
}

/// A namespace created on the server `options.url` names, under a fresh name
/// (`<prefix>_<pid>_<n>_<nanos>`): a schema on PostgreSQL, a database on MySQL and
/// MariaDB. Stores opened with [`ScratchSchema::options`] keep their tables in it;
/// [`ScratchSchema::remove`] drops it with everything in it.
///
/// Connects with the same settings as a store would (TLS included).
#[derive(Debug, Clone)]
pub struct ScratchSchema {
    options: StoreOptions,
    name: String,
    server: Server,
}

/// The engine a scratch namespace lives on.
#[derive(Debug, Clone, Copy)]
enum Server {
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "mysql")]
    Mysql,
}

impl ScratchSchema {
    /// Creates the namespace on the server of a `postgres://` or `mysql://` url. Fails
    /// like `open` when the server cannot be reached, and with the server's error when
    /// the user may not create schemas (PostgreSQL) or databases (MySQL).
    pub async fn create(options: &StoreOptions, prefix: &str) -> Result<Self> {
        options.validate()?;
        let server = match url_engine::Engine::of_url(&options.url)? {
            #[cfg(feature = "postgres")]
            url_engine::Engine::Postgres => Server::Postgres,
            #[cfg(feature = "mysql")]
            url_engine::Engine::Mysql => Server::Mysql,
            _ => {
                return Err(StoreError::config(format!(
                    "a scratch schema needs a {} url",
                    SCHEMES
                )));
            }
        };
        let schema = Self {
            options: options.clone(),
            name: unique_name(prefix),
            server,
        };
        schema.run(Step::Create).await?;
        Ok(schema)
    }

    /// The schema's (or database's) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `base` (the options the schema was made with, or others for the same server)
    /// with the URL scoped to this schema: PostgreSQL's `search_path`, MySQL's
    /// database.
    pub fn options(&self, mut base: StoreOptions) -> StoreOptions {
        base.url = match self.server {
            #[cfg(feature = "postgres")]
            Server::Postgres => PgEngine::scoped_url(&base.url, &self.name),
            #[cfg(feature = "mysql")]
            Server::Mysql => MysqlEngine::scoped_url(&base.url, &self.name),
        };
        base
    }

    /// Drops the schema with every table and sequence in it.
    pub async fn remove(self) -> Result<()> {
        self.run(Step::Drop).await
    }

    /// Creates or drops the schema on its engine.
    async fn run(&self, step: Step) -> Result<()> {
        match self.server {
            #[cfg(feature = "postgres")]
            Server::Postgres => execute::<PgEngine>(&self.options, &self.name, step).await,
            #[cfg(feature = "mysql")]
            Server::Mysql => execute::<MysqlEngine>(&self.options, &self.name, step).await,
        }
    }
}

/// The URL schemes a scratch schema can be made on, in this build.
const SCHEMES: &str = match (cfg!(feature = "postgres"), cfg!(feature = "mysql")) {
    (true, true) => "postgres:// or mysql://",
    (true, false) => "postgres://",
    _ => "mysql://",
};

/// What [`execute`] does to a scratch namespace.
#[derive(Debug, Clone, Copy)]
enum Step {
    Create,
    Drop,
}

/// A fresh name `<prefix>_<pid>_<n>_<nanos>`, the prefix cut to 24 letters, digits
/// and underscores.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let prefix: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(24)
        .collect();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Relaxed)
    )
}

/// Creates or drops the namespace `name` on the server of `options`, on a connection of
/// its own, then closes it. The statement names only the generated name, never input.
async fn execute<E: Scratch>(options: &StoreOptions, name: &str, step: Step) -> Result<()>
where
    for<'c> &'c mut Conn<E>: Executor<'c, Database = E::Db>,
{
    let sql = match step {
        Step::Create => E::create_statement(name),
        Step::Drop => E::drop_statement(name),
    };
    let connect = E::connect_options(options)?;
    let endpoint = E::endpoint(&connect);
    let cannot_connect = |cause: &str| {
        StoreError::new(
            ErrorKind::Connection,
            format!(
                "scratch {}: cannot connect to {endpoint}: {cause}",
                E::NAMESPACE
            ),
        )
    };
    let mut conn = tokio::time::timeout(options.acquire_timeout, connect.connect())
        .await
        .map_err(|_| cannot_connect("no answer in time"))?
        .map_err(|e| cannot_connect(&E::diagnosis().cause(&e)))?;
    let result = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
    let _ = conn.close().await;
    result.map(drop).map_err(|e| {
        StoreError::new(
            ErrorKind::Backend,
            format!(
                "scratch {} {name}: {}",
                E::NAMESPACE,
                E::diagnosis().cause(&e)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fresh_and_safe() {
        let a = unique_name("kit; DROP \"x\"");
        let b = unique_name("kit; DROP \"x\"");
        assert_ne!(a, b);
        assert!(a.starts_with("kitDROPx_"), "{a}");
        assert!(
            a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{a}"
        );
    }
}
