//! Checks the [`StoreOptions`] this backend opens with and keeps the pool settings.

use std::time::Duration;

use storage_api::backend::validate_identifier;
use storage_api::{Result, StoreError, StoreOptions};

/// The URL scheme this backend answers to: `memory:` followed by any name.
pub const SCHEME: &str = "memory:";

/// The pool-related settings, in the units the pool uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSettings {
    pub(crate) max: u32,
    pub(crate) min_idle: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) busy_timeout: Duration,
    pub(crate) close_grace: Duration,
    /// A connection held longer than this counts as a leak.
    pub(crate) leak_detection_threshold: Option<Duration>,
}

impl PoolSettings {
    /// Validates `options` as the in-tree backends do, except that the URL must use the
    /// `memory:` scheme.
    pub(crate) fn from_options(options: &StoreOptions) -> Result<Self> {
        if !options.url.starts_with(SCHEME) {
            return Err(StoreError::config(format!(
                "url must start with {SCHEME:?} for the memory backend"
            )));
        }
        if options.max_connections == 0 {
            return Err(StoreError::config("db_pool_size must be at least 1"));
        }
        if options.min_idle > options.max_connections {
            return Err(StoreError::config(format!(
                "db_min_idle ({}) is over db_pool_size ({})",
                options.min_idle, options.max_connections
            )));
        }
        if options.acquire_timeout.is_zero() {
            return Err(StoreError::config(
                "db_connection_timeout_secs must be positive",
            ));
        }
        validate_identifier("table", &options.table)?;
        Ok(Self {
            max: options.max_connections,
            min_idle: options.min_idle,
            acquire_timeout: options.acquire_timeout,
            idle_timeout: options.idle_timeout,
            max_lifetime: options.max_lifetime,
            busy_timeout: options.busy_timeout,
            close_grace: options.close_grace,
            leak_detection_threshold: options.leak_detection_threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn rejects_foreign_urls_and_empty_pools() {
        let wrong = StoreOptions::new("sqlite::memory:");
        let err = PoolSettings::from_options(&wrong).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let mut empty = StoreOptions::new("memory:x");
        empty.max_connections = 0;
        let err = PoolSettings::from_options(&empty).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(PoolSettings::from_options(&StoreOptions::new("memory:x")).is_ok());
    }
}
