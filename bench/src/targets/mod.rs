//! The configurations under test, each a [`Target`](crate::drive::Target) or
//! [`SyncTarget`](crate::drive::SyncTarget).

pub(crate) mod raw_deadpool;
pub(crate) mod raw_rusqlite;
pub(crate) mod raw_sqlx;

#[cfg(feature = "pooledstore")]
pub(crate) mod pooled;

#[cfg(feature = "etcd")]
pub(crate) mod raw_etcd;
#[cfg(feature = "mysql")]
pub(crate) mod raw_mysql;
#[cfg(feature = "postgres")]
pub(crate) mod raw_postgres;

/// SQLite's busy timeout in every configuration.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a pool waits for a free connection before a `timeout` error.
pub(crate) const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
