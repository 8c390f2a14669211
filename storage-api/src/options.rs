//! `StoreOptions`: what a backend opens with, in typed units. Built from
//! [`StorageConfig`](crate::StorageConfig) or directly (tests, the conformance kit).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::config::validate_identifier;
use crate::error::{Result, StoreError};
use crate::limits::Limits;
use crate::redact::redact_url;
use crate::tls::TlsSettings;

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Durable against process crashes; with WAL, a power loss may drop the last commits.
    #[default]
    Normal,
    /// Durable against power loss too; slower commits.
    Full,
}

impl Synchronous {
    /// The value for `PRAGMA synchronous`.
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// Where a store's data lives, parsed from the `url` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database, alive until the store closes.
    SqliteMemory,
    /// A PostgreSQL server; the URL as given.
    Postgres,
    /// A MySQL or MariaDB server (`mysql://…`); the URL as given.
    Mysql,
    /// An etcd cluster (`etcd://host1:2379,host2:2379,…`); the URL as given.
    Etcd,
}

/// Parses the `url` setting: `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`,
/// `postgres://…`, `postgresql://…`, `mysql://…` (MySQL and MariaDB) or `etcd://…`.
pub fn url_scheme(url: &str) -> Result<Location> {
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return Ok(Location::SqliteMemory);
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Location::Postgres);
    }
    if url.starts_with("mysql://") {
        return Ok(Location::Mysql);
    }
    if url.starts_with("etcd://") {
        return Ok(Location::Etcd);
    }
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if rest.is_empty() || rest.contains('?') {
            return Err(StoreError::config(format!(
                "url {:?} has no usable SQLite path; use sqlite://PATH (no query string)",
                redact_url(url)
            )));
        }
        return Ok(Location::SqliteFile(PathBuf::from(rest)));
    }
    Err(StoreError::config(format!(
        "url {:?} has an unsupported scheme; use sqlite://PATH, sqlite::memory:, postgres://…, mysql://… or etcd://…",
        redact_url(url)
    )))
}

/// Everything a backend needs to open a store.
#[derive(Clone)]
pub struct StoreOptions {
    /// Where the data lives; see [`url_scheme`].
    pub url: String,
    /// Maximum connections.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_idle: u32,
    /// Deadline for acquiring a connection, every phase included.
    pub acquire_timeout: Duration,
    /// Idle connections above `min_idle` close after this; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Connections retire after this (never while in use); `None`: never.
    pub max_lifetime: Option<Duration>,
    /// SQLite: write-ahead logging.
    pub enable_wal: bool,
    /// How long a statement waits on a locked database (SQLite's busy timeout;
    /// PostgreSQL's `lock_timeout`, at least 1 ms).
    pub busy_timeout: Duration,
    /// SQLite: `PRAGMA synchronous`.
    pub synchronous: Synchronous,
    /// Value and scan limits.
    pub limits: Limits,
    /// Table name, a validated identifier.
    pub table: String,
    /// Warn and count when a connection or transaction is held longer; `None`: off.
    pub leak_detection_threshold: Option<Duration>,
    /// How long `close` waits for in-flight work.
    pub close_grace: Duration,
    /// Time source for TTLs.
    pub clock: Arc<dyn Clock>,
    /// PostgreSQL and etcd: TLS settings beside the URL's (file paths, never key
    /// material).
    pub tls: TlsSettings,
    /// PostgreSQL: the connections go through a transaction-mode pooler (PgBouncer
    /// `pool_mode = transaction`), so nothing may rely on session state.
    pub transaction_pooler: bool,
}

impl StoreOptions {
    /// The defaults of `config.example.toml`, at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            min_idle: 0,
            acquire_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            enable_wal: true,
            busy_timeout: Duration::from_secs(5),
            synchronous: Synchronous::Normal,
            limits: Limits {
                max_value_bytes: 1_048_576,
                max_scan_limit: 10_000,
            },
            table: "pooledstore_kv".into(),
            leak_detection_threshold: None,
            close_grace: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
            tls: TlsSettings::default(),
            transaction_pooler: false,
        }
    }

    /// Checks what a backend relies on: pool sizes, a non-zero acquire timeout, the
    /// table identifier and the URL scheme. Returns the parsed location.
    pub fn validate(&self) -> Result<Location> {
        if self.max_connections == 0 {
            return Err(StoreError::config("db_pool_size must be at least 1"));
        }
        if self.min_idle > self.max_connections {
            return Err(StoreError::config(format!(
                "db_min_idle ({}) is over db_pool_size ({})",
                self.min_idle, self.max_connections
            )));
        }
        if self.acquire_timeout.is_zero() {
            return Err(StoreError::config(
                "db_connection_timeout_secs must be positive",
            ));
        }
        validate_identifier("table", &self.table)?;
        url_scheme(&self.url)
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("min_idle", &self.min_idle)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("enable_wal", &self.enable_wal)
            .field("busy_timeout", &self.busy_timeout)
            .field("synchronous", &self.synchronous)
            .field("limits", &self.limits)
            .field("table", &self.table)
            .field("leak_detection_threshold", &self.leak_detection_threshold)
            .field("close_grace", &self.close_grace)
            .field("clock", &self.clock)
            .field("tls", &self.tls)
            .field("transaction_pooler", &self.transaction_pooler)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_locations() {
        assert_eq!(
            url_scheme("sqlite::memory:").unwrap(),
            Location::SqliteMemory
        );
        assert_eq!(
            url_scheme("sqlite://data/x.db").unwrap(),
            Location::SqliteFile("data/x.db".into())
        );
        assert_eq!(
            url_scheme("sqlite:///abs/x.db").unwrap(),
            Location::SqliteFile("/abs/x.db".into())
        );
        assert_eq!(url_scheme("postgres://u@h/d").unwrap(), Location::Postgres);
        assert_eq!(url_scheme("mysql://u@h/d").unwrap(), Location::Mysql);
        assert_eq!(
            url_scheme("etcd://h1:2379,h2:2379").unwrap(),
            Location::Etcd
        );
        let e = url_scheme("redis://:pw@localhost").unwrap_err();
        assert!(e.message().contains("unsupported scheme"), "{e}");
        assert!(!e.message().contains("pw"), "{e}");
    }
}
