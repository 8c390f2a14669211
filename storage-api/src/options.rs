//! `StoreOptions`: what a backend opens with, in typed units. Built from
//! [`StorageConfig`](crate::StorageConfig) or directly (tests, the conformance kit).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::StorageConfig;
use crate::engine_options::{PostgresOptions, SqliteOptions};
use crate::error::{Result, StoreError};
use crate::identifier::validate_identifier;
use crate::limits::Limits;
use crate::redact::redact_url;
use crate::scheme::url_scheme;
use crate::tls::TlsSettings;

/// Everything a backend needs to open a store.
#[derive(Clone)]
pub struct StoreOptions {
    /// Where the data lives: a URL whose scheme names the engine; the backend that
    /// owns the scheme parses the rest.
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
    /// How long a statement waits on a locked database (SQLite's busy timeout;
    /// PostgreSQL's `lock_timeout`, at least 1 ms).
    pub busy_timeout: Duration,
    /// What only SQLite stores read.
    pub sqlite: SqliteOptions,
    /// What only PostgreSQL stores read.
    pub postgres: PostgresOptions,
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
}

impl StoreOptions {
    /// The defaults of `config.example.toml` (those of
    /// [`StorageConfig::default`]), at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        StorageConfig::default().options_at(url.into(), TlsSettings::default())
    }

    /// Checks what every backend relies on: pool sizes, a non-zero acquire timeout,
    /// the table identifier and a URL that starts with a scheme. Whether the backend
    /// opens that scheme, and the rest of the URL, is the backend's to check.
    pub fn validate(&self) -> Result<()> {
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
        url_scheme(&self.url)?;
        Ok(())
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
            .field("busy_timeout", &self.busy_timeout)
            .field("sqlite", &self.sqlite)
            .field("postgres", &self.postgres)
            .field("limits", &self.limits)
            .field("table", &self.table)
            .field("leak_detection_threshold", &self.leak_detection_threshold)
            .field("close_grace", &self.close_grace)
            .field("clock", &self.clock)
            .field("tls", &self.tls)
            .finish()
    }
}

impl StorageConfig {
    /// Validates, then converts to the options a backend opens with (system clock).
    pub fn to_options(&self) -> Result<StoreOptions> {
        self.validate()?;
        Ok(self.options_at(self.url.clone(), self.tls_settings()?))
    }

    /// The options these settings describe, at `url` and with `tls`, unvalidated: the
    /// one place config keys become [`StoreOptions`] fields, so the defaults of
    /// [`StoreOptions::new`] are this type's (and `config.example.toml`'s, which a test
    /// holds equal to them).
    pub(crate) fn options_at(&self, url: String, tls: TlsSettings) -> StoreOptions {
        let secs_or_never = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        StoreOptions {
            url,
            max_connections: self.db_pool_size,
            min_idle: self.db_min_idle,
            acquire_timeout: Duration::from_secs(self.db_connection_timeout_secs),
            idle_timeout: secs_or_never(self.db_idle_timeout_secs),
            max_lifetime: secs_or_never(self.db_max_lifetime_secs),
            busy_timeout: Duration::from_millis(self.db_busy_timeout_ms),
            sqlite: SqliteOptions {
                enable_wal: self.db_enable_wal,
                synchronous: self.db_synchronous,
            },
            postgres: PostgresOptions {
                transaction_pooler: self.db_transaction_pooler,
            },
            limits: Limits {
                max_value_bytes: self.max_value_bytes,
                max_scan_limit: self.max_scan_limit,
            },
            table: self.table.clone(),
            leak_detection_threshold: secs_or_never(self.db_leak_detection_threshold_secs),
            close_grace: Duration::from_secs(self.db_close_grace_secs),
            clock: Arc::new(SystemClock),
            tls,
        }
    }
}
