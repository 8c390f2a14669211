//! The connection settings of a PostgreSQL store: the URL's, checked, plus what the
//! contract needs on every connection (a unique `application_name`, serializable
//! transactions, `lock_timeout` from `busy_timeout`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use storage_api::{Result, SslMode, StoreOptions};

use super::tls;
use crate::common::engine::sessions::Sessions;
use crate::common::engine::url;

/// The query parameters sqlx understands in a PostgreSQL URL. Any other is refused:
/// sqlx would log an unknown parameter with its value, and a misspelt `password`
/// would end up in the log.
const KNOWN_PARAMETERS: [&str; 18] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// The longest `application_name` PostgreSQL keeps (longer ones are truncated).
const MAX_APPLICATION_NAME: usize = 63;

/// What every new connection runs before it joins the pool, with `{lock_timeout}` (a
/// number of milliseconds this crate formats, never input) filled in. One simple-protocol
/// statement: it leaves no prepared statement behind.
/// Set with `set_config` rather than startup parameters, which poolers and
/// PostgreSQL-compatible engines do not all pass on.
///
/// - `default_transaction_isolation`: statements outside an explicit transaction (the
///   single reads) are serializable too, and take part in serializability checks.
/// - `lock_timeout`: `busy_timeout`, the longest a statement waits for a lock.
/// - `client_min_messages`: keeps the notices of idempotent statements (`CREATE … IF
///   NOT EXISTS` on an existing table, `ROLLBACK` after a failed `COMMIT` already ended
///   the transaction) out of the log; errors still arrive as errors.
///
/// In the same round trip it reads what the health check reports of the session
/// ([`Sessions`](crate::common::engine::sessions::Sessions)): the server's version
/// (column 3) and whether the session is encrypted (column 4).
pub(crate) const SESSION_SETUP: &str = "SELECT \
     set_config('default_transaction_isolation', 'serializable', false), \
     set_config('lock_timeout', '{lock_timeout}', false), \
     set_config('client_min_messages', 'error', false), \
     current_setting('server_version'), \
     coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)";

/// How a store connects.
#[derive(Clone)]
pub(crate) struct Target {
    /// Every connection's options. Its `Debug` shows the password: never log it.
    pub(crate) connect: PgConnectOptions,
    /// The `application_name` every connection of this store reports, unique to it.
    pub(crate) application_name: String,
    /// The `lock_timeout` every connection sets, as PostgreSQL reads it (`5000ms`).
    pub(crate) lock_timeout: String,
    /// The `sslmode` connections use, the URL's and the config's merged.
    pub(crate) ssl_mode: SslMode,
    /// Whether connections go through a transaction-mode pooler: no session setup,
    /// no server-side prepared statements.
    pub(crate) transaction_pooler: bool,
    /// What each connection's setup read of its session, for the health check.
    pub(crate) sessions: Arc<Sessions>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("application_name", &self.application_name)
            .field("lock_timeout", &self.lock_timeout)
            .field("ssl_mode", &self.ssl_mode)
            .field("transaction_pooler", &self.transaction_pooler)
            .finish_non_exhaustive()
    }
}

/// The connection settings for `options.url`, a `postgres://` URL.
///
/// Fails with `Config`, naming the URL with its password masked, when the URL does not
/// parse or has a query parameter sqlx does not know, and naming the setting when the
/// TLS settings disagree or name a file that cannot be used (see [`tls::resolve`]).
/// Through a transaction-mode pooler, statements are not cached on the server.
pub(crate) fn target(options: &StoreOptions) -> Result<Target> {
    let url = url::parse(&options.url, "PostgreSQL", |key| {
        KNOWN_PARAMETERS.contains(&key) || (key.starts_with("options[") && key.ends_with(']'))
    })?;
    let connect = PgConnectOptions::from_url(&tls::without_tls_parameters(&url))
        .map_err(|e| url::invalid_options(&options.url, &e))?;
    let tls = tls::resolve(&url, &options.tls, connect.get_ssl_mode())?;
    // The store reads no floating-point values, and poolers (PgBouncer) refuse startup
    // parameters they do not know, such as the `extra_float_digits` sqlx sends.
    let mut connect = tls.apply(connect).extra_float_digits(None);
    if options.postgres.transaction_pooler {
        connect = connect.statement_cache_capacity(0);
    }
    let application_name = unique_application_name(connect.get_application_name());
    Ok(Target {
        connect: connect.application_name(&application_name),
        application_name,
        lock_timeout: format!("{}ms", lock_timeout_millis(options.busy_timeout)),
        ssl_mode: tls.mode,
        transaction_pooler: options.postgres.transaction_pooler,
        sessions: Arc::default(),
    })
}

/// `busy_timeout` as a `lock_timeout` in milliseconds. Zero means "do not wait" for
/// SQLite but "wait forever" for PostgreSQL, so it becomes 1 ms.
pub(crate) fn lock_timeout_millis(busy_timeout: Duration) -> u64 {
    let millis = u64::try_from(busy_timeout.as_millis()).unwrap_or(u64::MAX);
    millis.clamp(1, i32::MAX as u64)
}

/// `<base>-<pid>-<n>-<nanos>`: the URL's `application_name` (or `pooledstore`), made
/// unique to this store so its server sessions can be found in `pg_stat_activity`.
/// Kept to printable ASCII and 63 bytes, which PostgreSQL stores unchanged.
fn unique_application_name(base: Option<&str>) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let suffix = format!(
        "-{}-{}-{nanos:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Relaxed)
    );
    let base: String = base
        .filter(|b| !b.is_empty())
        .unwrap_or("pooledstore")
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(MAX_APPLICATION_NAME.saturating_sub(suffix.len()))
        .collect();
    format!("{base}{suffix}")
}

/// Where `options` connect, for messages: `host:port`, or the socket file for a Unix
/// socket directory. Never the user or the password.
pub(crate) fn endpoint(options: &PgConnectOptions) -> String {
    let (host, port) = (options.get_host(), options.get_port());
    if host.starts_with('/') {
        format!("{host}/.s.PGSQL.{port}")
    } else {
        url::host_port(host, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn application_names_are_unique_short_and_printable() {
        let a = unique_application_name(None);
        let b = unique_application_name(None);
        assert_ne!(a, b);
        assert!(a.starts_with("pooledstore-"), "{a}");
        let long = unique_application_name(Some(&"é x".repeat(40)));
        assert!(long.len() <= MAX_APPLICATION_NAME, "{long}");
        assert!(long.chars().all(|c| c.is_ascii_graphic()), "{long}");
    }

    #[test]
    fn the_url_application_name_is_kept_as_the_prefix() {
        let options = StoreOptions::new("postgres://u@localhost/db?application_name=billing");
        let target = target(&options).unwrap();
        assert!(target.application_name.starts_with("billing-"));
        assert_eq!(
            target.connect.get_application_name(),
            Some(target.application_name.as_str())
        );
        assert_eq!(target.lock_timeout, "5000ms");
    }

    #[test]
    fn unknown_parameters_are_refused_without_their_value() {
        let options = StoreOptions::new("postgres://u:pw1@localhost/db?passwrd=s3cret");
        let e = target(&options).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("passwrd"), "{e}");
        assert!(
            !e.message().contains("s3cret") && !e.message().contains("pw1"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_url_is_a_config_error_without_the_password() {
        let options = StoreOptions::new("postgres://u:s3cret@local host:99999/db");
        let e = target(&options).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.message().contains("s3cret"), "{e}");
    }

    #[test]
    fn tls_settings_from_config_and_url_reach_the_target() {
        let mut options = StoreOptions::new("postgres://u@localhost/db?sslmode=require");
        assert_eq!(target(&options).unwrap().ssl_mode, SslMode::Require);
        options.tls.mode = Some(SslMode::Disable);
        let e = target(&options).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("db_ssl_mode"), "{e}");
        options.url = "postgres://u@localhost/db".into();
        assert_eq!(target(&options).unwrap().ssl_mode, SslMode::Disable);
    }

    #[test]
    fn zero_busy_timeout_does_not_mean_wait_forever() {
        assert_eq!(lock_timeout_millis(Duration::ZERO), 1);
        assert_eq!(lock_timeout_millis(Duration::from_secs(5)), 5000);
    }
}
