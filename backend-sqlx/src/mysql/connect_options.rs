//! The connection settings of a MySQL or MariaDB store: the URL as sqlx options, and
//! what every session runs before it joins the pool.

use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::mysql::MySqlConnectOptions;
use storage_api::backend::shown_url;
use storage_api::{Result, StoreError, StoreOptions};

use crate::common::engine::sessions::Sessions;
use crate::common::engine::url;

/// The URL parameters sqlx understands for MySQL; anything else is a typo to report,
/// not to ignore.
const KNOWN_PARAMETERS: [&str; 15] = [
    "sslmode",
    "ssl-mode",
    "sslca",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "tls-sni-servername",
    "charset",
    "collation",
    "statement-cache-capacity",
    "socket",
    "timezone",
    "time-zone",
];

/// The SQL modes every session runs with: strict for every table (an over-long or
/// out-of-range value is an error, never truncated), no invalid dates, and no silent
/// fallback to another storage engine when InnoDB is missing.
pub(crate) const SQL_MODE: &str = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,\
ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION";

/// Where and how a store connects.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) connect: MySqlConnectOptions,
    /// The session's `innodb_lock_wait_timeout`, in whole seconds (at least 1).
    pub(crate) lock_wait_secs: u64,
    /// What each connection's setup read back of its session, for the health check.
    pub(crate) sessions: Arc<Sessions>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("endpoint", &endpoint(&self.connect))
            .field("lock_wait_secs", &self.lock_wait_secs)
            .finish_non_exhaustive()
    }
}

/// The connection settings `options.url` names. A URL that does not parse, names no
/// database, or has a parameter sqlx does not know is a `Config` error naming the URL
/// with its password masked.
pub(crate) fn target(options: &StoreOptions) -> Result<Target> {
    let url = url::parse(&options.url, "MySQL", |key| KNOWN_PARAMETERS.contains(&key))?;
    let connect =
        MySqlConnectOptions::from_url(&url).map_err(|e| url::invalid_options(&options.url, &e))?;
    if connect.get_database().is_none_or(str::is_empty) {
        return Err(StoreError::config(format!(
            "url {:?} names no database; use mysql://USER@HOST:PORT/DATABASE",
            shown_url(&options.url)
        )));
    }
    Ok(Target {
        connect: connect.pipes_as_concat(false).no_engine_substitution(true),
        lock_wait_secs: lock_wait_secs(options.busy_timeout),
        sessions: Arc::default(),
    })
}

/// `innodb_lock_wait_timeout` for a busy timeout: whole seconds, rounded up, at least
/// 1 (0 would mean "never wait", and the server accepts nothing finer).
pub(crate) fn lock_wait_secs(busy_timeout: Duration) -> u64 {
    let secs = busy_timeout.as_secs() + u64::from(busy_timeout.subsec_nanos() > 0);
    secs.clamp(1, 86_400)
}

/// MariaDB's `max_statement_time` for a busy timeout, in seconds with millisecond
/// precision (at least 1 ms: 0 would mean no limit).
pub(crate) fn statement_time(busy_timeout: Duration) -> String {
    let millis = busy_timeout.as_millis().clamp(1, 86_400_000);
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

/// Where connections go: `host:port` or the socket path.
pub(crate) fn endpoint(options: &MySqlConnectOptions) -> String {
    if let Some(socket) = options.get_socket() {
        return socket.display().to_string();
    }
    url::host_port(options.get_host(), options.get_port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn lock_waits_are_whole_seconds_rounded_up() {
        assert_eq!(lock_wait_secs(Duration::ZERO), 1);
        assert_eq!(lock_wait_secs(Duration::from_millis(400)), 1);
        assert_eq!(lock_wait_secs(Duration::from_millis(1500)), 2);
        assert_eq!(lock_wait_secs(Duration::from_secs(5)), 5);
        assert_eq!(statement_time(Duration::from_millis(400)), "0.400");
        assert_eq!(statement_time(Duration::ZERO), "0.001");
        assert_eq!(statement_time(Duration::from_millis(5250)), "5.250");
    }

    #[test]
    fn urls_are_checked_without_showing_the_password() {
        let ok = target(&StoreOptions::new("mysql://u:pw@localhost:3307/db")).unwrap();
        assert_eq!(endpoint(&ok.connect), "localhost:3307");
        for bad in [
            "mysql://u:s3cret@localhost/db?passwrd=x",
            "mysql://u:s3cret@localhost",
            "mysql://u:s3cret@local host:99999/db",
        ] {
            let e = target(&StoreOptions::new(bad)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(!e.message().contains("s3cret"), "{e}");
        }
    }
}
