//! [`SqlxStore`], the public store: one type whichever database the URL names,
//! dispatching to the backend module for it.

// Built without any database feature, every operation is unreachable.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(unused_variables)
)]

use std::path::Path;

use async_trait::async_trait;
use storage_api::{
    Capabilities, CloseReport, Condition, ConnectionValidation, Entry, PoolHealth, PoolMetrics,
    PooledStore, PutOptions, Result, ScanOptions, StoreOptions, Transaction, TxOptions, Version,
    WriteOp, WriteResult,
};

#[cfg(not(all(feature = "sqlite", feature = "postgres", feature = "mysql")))]
use storage_api::StoreError;

#[cfg(feature = "mysql")]
use crate::mysql::MysqlStore;
#[cfg(feature = "postgres")]
use crate::postgres::PostgresStore;
#[cfg(feature = "sqlite")]
use crate::sqlite::SqliteStore;
use crate::url_engine::Engine;

/// A [`PooledStore`] over a sqlx connection pool.
///
/// Open it with [`SqlxStore::open`]; `Debug` shows the URL with any password masked.
/// Clones share the same pool.
#[derive(Debug, Clone)]
pub struct SqlxStore {
    inner: Inner,
}

/// The database-specific store behind a [`SqlxStore`].
#[derive(Debug, Clone)]
enum Inner {
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(PostgresStore),
    #[cfg(feature = "mysql")]
    Mysql(MysqlStore),
}

/// Runs `$body` with `$store` bound to the database-specific store.
macro_rules! dispatch {
    ($self:ident, $store:ident => $body:expr) => {
        match $self.inner {
            #[cfg(feature = "sqlite")]
            Inner::Sqlite(ref $store) => $body,
            #[cfg(feature = "postgres")]
            Inner::Postgres(ref $store) => $body,
            #[cfg(feature = "mysql")]
            Inner::Mysql(ref $store) => $body,
        }
    };
}

impl SqlxStore {
    /// Opens the store `options.url` names (`sqlite://PATH`, `sqlite::memory:`,
    /// `postgres://…` with feature `postgres`, or `mysql://…` with feature `mysql`),
    /// after validating the options: creates the database file (owner-only, SQLite) and
    /// the schema when missing, and opens `min_idle` connections (at least one for
    /// PostgreSQL, to check the server).
    ///
    /// Fails with `Config` for bad options, a URL of another scheme (the error names
    /// the url, password masked, and the schemes this backend opens), a database path
    /// whose directory does not exist, a database file this process may not write, a
    /// server URL that does not parse or names no database the server has, or rejected
    /// credentials; `Connection` when the file cannot be created or opened or the
    /// server cannot be reached; `Timeout` when no connection opened within the acquire
    /// timeout; `Corrupt` for a file that is not a SQLite database or a table that is
    /// not a store's; and `Unsupported` for a schema newer than this build knows.
    pub async fn open(options: StoreOptions) -> Result<Self> {
        options.validate()?;
        match Engine::of_url(&options.url)? {
            Engine::Sqlite => open_sqlite(options).await,
            Engine::Postgres => open_postgres(options).await,
            Engine::Mysql => open_mysql(options).await,
        }
    }

    /// The schema version of the store's table, as found (or created) at open.
    pub fn schema_version(&self) -> i64 {
        dispatch!(self, store => store.schema_version())
    }

    /// The file holding the data, for SQLite stores (for `sqlite::memory:`, the
    /// private temporary file, which `close` deletes); `None` for server databases.
    pub fn database_path(&self) -> Option<&Path> {
        match self.inner {
            #[cfg(feature = "sqlite")]
            Inner::Sqlite(ref store) => Some(store.database_path()),
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => None,
            #[cfg(feature = "mysql")]
            Inner::Mysql(_) => None,
        }
    }

    /// The `application_name` every connection of a PostgreSQL store reports to the
    /// server (unique to the store, so `pg_stat_activity` shows which sessions are its
    /// own); `None` for SQLite stores.
    pub fn application_name(&self) -> Option<&str> {
        match self.inner {
            #[cfg(feature = "sqlite")]
            Inner::Sqlite(_) => None,
            #[cfg(feature = "postgres")]
            Inner::Postgres(ref store) => Some(store.application_name()),
            #[cfg(feature = "mysql")]
            Inner::Mysql(_) => None,
        }
    }
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(options: StoreOptions) -> Result<SqlxStore> {
    let location = sqlite_common::SqliteLocation::parse(&options.url)?;
    let store = SqliteStore::open(options, &location).await?;
    Ok(SqlxStore {
        inner: Inner::Sqlite(store),
    })
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_options: StoreOptions) -> Result<SqlxStore> {
    Err(StoreError::config(
        "backend-sqlx was built without its `sqlite` feature",
    ))
}

#[cfg(feature = "postgres")]
async fn open_postgres(options: StoreOptions) -> Result<SqlxStore> {
    let store = PostgresStore::open(options).await?;
    Ok(SqlxStore {
        inner: Inner::Postgres(store),
    })
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_options: StoreOptions) -> Result<SqlxStore> {
    Err(StoreError::config(
        "a postgres:// url needs backend-sqlx's `postgres` feature",
    ))
}

#[cfg(feature = "mysql")]
async fn open_mysql(options: StoreOptions) -> Result<SqlxStore> {
    let store = MysqlStore::open(options).await?;
    Ok(SqlxStore {
        inner: Inner::Mysql(store),
    })
}

#[cfg(not(feature = "mysql"))]
async fn open_mysql(_options: StoreOptions) -> Result<SqlxStore> {
    Err(StoreError::config(
        "a mysql:// url needs backend-sqlx's `mysql` feature",
    ))
}

#[async_trait]
impl PooledStore for SqlxStore {
    fn backend_name(&self) -> &'static str {
        "sqlx"
    }

    fn engine_name(&self) -> &'static str {
        match self.inner {
            #[cfg(feature = "sqlite")]
            Inner::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => "postgres",
            #[cfg(feature = "mysql")]
            Inner::Mysql(_) => "mysql",
        }
    }

    fn capabilities(&self) -> Capabilities {
        dispatch!(self, store => store.capabilities())
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        dispatch!(self, store => store.get(key).await)
    }

    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        dispatch!(self, store => store.put(key, value, options).await)
    }

    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool> {
        dispatch!(self, store => store.delete(key, condition).await)
    }

    async fn scan(&self, options: ScanOptions) -> Result<Vec<Entry>> {
        dispatch!(self, store => store.scan(options).await)
    }

    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        dispatch!(self, store => store.batch(ops).await)
    }

    async fn purge_expired(&self) -> Result<u64> {
        dispatch!(self, store => store.purge_expired().await)
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        dispatch!(self, store => store.begin(options).await)
    }

    async fn health_check(&self) -> PoolHealth {
        dispatch!(self, store => store.health_check().await)
    }

    async fn validate_connections(&self) -> Result<ConnectionValidation> {
        dispatch!(self, store => store.validate_connections().await)
    }

    fn pool_metrics(&self) -> PoolMetrics {
        dispatch!(self, store => store.pool_metrics())
    }

    async fn close(&self) -> CloseReport {
        dispatch!(self, store => store.close().await)
    }
}
