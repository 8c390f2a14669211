//! `[storage]` configuration: the TOML keys, their defaults and ranges, environment
//! overrides and validation. (Conversion into
//! [`StoreOptions`](crate::StoreOptions) lives beside that type.)

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::identifier::validate_identifier;
use crate::redact::{describe_toml_error, redact_url};
use crate::scheme::url_scheme;
use crate::synchronous::Synchronous;
use crate::tls::{SslMode, TlsSettings};

/// Prefix of the environment variables that override config keys
/// (`POOLEDSTORE_DB_POOL_SIZE=20`).
pub const ENV_PREFIX: &str = "POOLEDSTORE_";

/// The `[storage]` section of the configuration file. Every key is optional; the
/// defaults are those of `config.example.toml`. Unknown keys are errors.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Backend to use: `"sqlx"`, `"deadpool"` or `"etcd"`; it must be compiled in.
    /// Default: `"sqlx"`.
    pub backend: String,
    /// `sqlite://PATH`, `sqlite::memory:`, `postgres://…`, `mysql://…` or `etcd://…`.
    /// Default: `"sqlite://data/pooledstore.db"`.
    pub url: String,
    /// Maximum connections, 1..=1024. Default: 10.
    pub db_pool_size: u32,
    /// Connections kept open while idle, at most `db_pool_size`. Default: 0.
    pub db_min_idle: u32,
    /// Deadline for acquiring a connection, every phase included, 1..=3600 s. Default: 30.
    pub db_connection_timeout_secs: u64,
    /// Idle connections above `db_min_idle` are closed after this, 0 (never)..=86400 s.
    /// Default: 600.
    pub db_idle_timeout_secs: u64,
    /// Connections are retired after this (never while in use), 0 (never)..=604800 s.
    /// Default: 1800.
    pub db_max_lifetime_secs: u64,
    /// SQLite only: write-ahead logging, so readers never block the writer. Default: true.
    pub db_enable_wal: bool,
    /// How long a statement waits on a locked database (SQLite's busy timeout;
    /// PostgreSQL's `lock_timeout`, at least 1 ms), 0..=600000 ms. Default: 5000.
    pub db_busy_timeout_ms: u64,
    /// SQLite only: `"normal"` (safe against process crashes, with WAL) or `"full"`
    /// (also against power loss). Default: `"normal"`.
    pub db_synchronous: Synchronous,
    /// Largest value accepted, 1..=268435456 bytes. Default: 1048576.
    pub max_value_bytes: usize,
    /// Largest number of entries one scan returns, 1..=1000000. Default: 10000.
    pub max_scan_limit: usize,
    /// Table name, `[A-Za-z_][A-Za-z0-9_]{0,62}`. Default: `"pooledstore_kv"`.
    pub table: String,
    /// Warn and count when a connection or transaction is held longer, 0 (off)..=86400 s.
    /// Default: 0.
    pub db_leak_detection_threshold_secs: u64,
    /// How long `close` waits for in-flight work, 0..=3600 s. Default: 10.
    pub db_close_grace_secs: u64,
    /// PostgreSQL: `disable`, `allow`, `prefer`, `require`, `verify-ca` or
    /// `verify-full`; empty keeps the URL's `sslmode` (else `prefer`). etcd: empty,
    /// `verify-full` or `disable`. Default: `""`.
    pub db_ssl_mode: String,
    /// PostgreSQL: PEM file of the CAs the server's certificate must chain to (the
    /// URL's `sslrootcert`); empty: the bundled Mozilla roots. etcd: the CA of the
    /// members' certificates; setting it turns TLS on. Default: `""`.
    pub db_ssl_root_cert: String,
    /// PostgreSQL and etcd: PEM file of a client certificate (PostgreSQL: the URL's
    /// `sslcert`), with `db_ssl_key`. Default: `""`.
    pub db_ssl_cert: String,
    /// PostgreSQL and etcd: PEM file of the client certificate's private key
    /// (PostgreSQL: the URL's `sslkey`), with `db_ssl_cert`. Default: `""`.
    pub db_ssl_key: String,
    /// PostgreSQL only: the connections go through a transaction-mode pooler (PgBouncer
    /// `pool_mode = transaction`): no session settings, no server-side prepared
    /// statements, every statement in a transaction. Default: false.
    pub db_transaction_pooler: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: "sqlx".into(),
            url: "sqlite://data/pooledstore.db".into(),
            db_pool_size: 10,
            db_min_idle: 0,
            db_connection_timeout_secs: 30,
            db_idle_timeout_secs: 600,
            db_max_lifetime_secs: 1800,
            db_enable_wal: true,
            db_busy_timeout_ms: 5000,
            db_synchronous: Synchronous::Normal,
            max_value_bytes: 1_048_576,
            max_scan_limit: 10_000,
            table: "pooledstore_kv".into(),
            db_leak_detection_threshold_secs: 0,
            db_close_grace_secs: 10,
            db_ssl_mode: String::new(),
            db_ssl_root_cert: String::new(),
            db_ssl_cert: String::new(),
            db_ssl_key: String::new(),
            db_transaction_pooler: false,
        }
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("backend", &self.backend)
            .field("url", &redact_url(&self.url))
            .field("db_pool_size", &self.db_pool_size)
            .field("db_min_idle", &self.db_min_idle)
            .field(
                "db_connection_timeout_secs",
                &self.db_connection_timeout_secs,
            )
            .field("db_idle_timeout_secs", &self.db_idle_timeout_secs)
            .field("db_max_lifetime_secs", &self.db_max_lifetime_secs)
            .field("db_enable_wal", &self.db_enable_wal)
            .field("db_busy_timeout_ms", &self.db_busy_timeout_ms)
            .field("db_synchronous", &self.db_synchronous)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("max_scan_limit", &self.max_scan_limit)
            .field("table", &self.table)
            .field(
                "db_leak_detection_threshold_secs",
                &self.db_leak_detection_threshold_secs,
            )
            .field("db_close_grace_secs", &self.db_close_grace_secs)
            .field("db_ssl_mode", &self.db_ssl_mode)
            .field("db_ssl_root_cert", &self.db_ssl_root_cert)
            .field("db_ssl_cert", &self.db_ssl_cert)
            .field("db_ssl_key", &self.db_ssl_key)
            .field("db_transaction_pooler", &self.db_transaction_pooler)
            .finish()
    }
}

impl StorageConfig {
    /// Parses the `[storage]` table of a TOML document (a missing table means all
    /// defaults). Other top-level tables are left to the caller. Does not validate.
    pub fn from_toml(text: &str) -> Result<Self> {
        let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            StoreError::config(format!(
                "invalid TOML: {}",
                describe_toml_error(&e, Some(text))
            ))
        })?;
        match doc.remove("storage") {
            None => Ok(Self::default()),
            Some(section) => section.try_into().map_err(|e: toml::de::Error| {
                StoreError::config(format!("[storage]: {}", describe_toml_error(&e, None)))
            }),
        }
    }

    /// Reads and parses a configuration file; see [`StorageConfig::from_toml`].
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            StoreError::config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Self::from_toml(&text)
            .map_err(|e| StoreError::config(format!("{}: {}", path.display(), e.message())))
    }

    /// Applies `POOLEDSTORE_<KEY>` overrides from the process environment. A
    /// `POOLEDSTORE_` variable whose name or value is not UTF-8 is a `Config` error
    /// naming it (it cannot be applied, and skipping it would silently use the file's
    /// setting); other variables are not looked at.
    pub fn apply_env(&mut self) -> Result<()> {
        self.apply_overrides(prefixed_env()?)
    }

    /// The `[storage]` keys, as `POOLEDSTORE_<KEY>` overrides name them (lower case).
    pub fn keys() -> Vec<String> {
        toml::Table::try_from(Self::default())
            .map(|table| table.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Applies `POOLEDSTORE_<KEY>` overrides from `vars`; they beat the file. Variables
    /// that name no key are ignored (tests use other `POOLEDSTORE_` variables).
    pub fn apply_overrides(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<()> {
        let mut table = toml::Table::try_from(&*self)
            .map_err(|e| StoreError::config(format!("cannot serialize config: {e}")))?;
        let mut changed = false;
        for (name, raw) in vars {
            let Some(key) = name.strip_prefix(ENV_PREFIX).map(str::to_ascii_lowercase) else {
                continue;
            };
            let Some(current) = table.get_mut(&key) else {
                continue;
            };
            *current = parse_like(current, &raw).ok_or_else(|| {
                StoreError::config(format!(
                    "environment variable {name}: cannot use {:?} for {key} (expected {})",
                    if key == "url" {
                        redact_url(&raw)
                    } else {
                        raw.clone()
                    },
                    current.type_str()
                ))
            })?;
            changed = true;
        }
        if changed {
            *self = table.try_into().map_err(|e: toml::de::Error| {
                StoreError::config(format!(
                    "environment override: {}",
                    describe_toml_error(&e, None)
                ))
            })?;
        }
        Ok(())
    }

    /// Checks every key's range, the table identifier, that `url` starts with a scheme
    /// and that the TLS keys are well formed; the error names the key, the value and
    /// the range. Which keys apply to the url's engine is for the code that knows the
    /// engines to check (the `pooledstore` library's `validate_config`).
    pub fn validate(&self) -> Result<()> {
        in_range("db_pool_size", self.db_pool_size.into(), 1, 1024)?;
        in_range(
            "db_min_idle",
            self.db_min_idle.into(),
            0,
            self.db_pool_size.into(),
        )?;
        in_range(
            "db_connection_timeout_secs",
            self.db_connection_timeout_secs,
            1,
            3600,
        )?;
        in_range("db_idle_timeout_secs", self.db_idle_timeout_secs, 0, 86_400)?;
        in_range(
            "db_max_lifetime_secs",
            self.db_max_lifetime_secs,
            0,
            604_800,
        )?;
        in_range("db_busy_timeout_ms", self.db_busy_timeout_ms, 0, 600_000)?;
        in_range(
            "max_value_bytes",
            self.max_value_bytes as u64,
            1,
            268_435_456,
        )?;
        in_range("max_scan_limit", self.max_scan_limit as u64, 1, 1_000_000)?;
        in_range(
            "db_leak_detection_threshold_secs",
            self.db_leak_detection_threshold_secs,
            0,
            86_400,
        )?;
        in_range("db_close_grace_secs", self.db_close_grace_secs, 0, 3600)?;
        validate_identifier("table", &self.table)?;
        if self.backend.is_empty() {
            return Err(StoreError::config(
                "backend is empty; use \"sqlx\" or \"deadpool\"",
            ));
        }
        url_scheme(&self.url)?;
        let tls = self.tls_settings()?;
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            return Err(StoreError::config(
                "db_ssl_cert and db_ssl_key go together: set both (a client certificate and \
                 its key) or neither",
            ));
        }
        Ok(())
    }

    /// The `db_ssl_*` keys as [`TlsSettings`]; an unknown `db_ssl_mode` is a `Config`
    /// error naming the key and the allowed values.
    pub fn tls_settings(&self) -> Result<TlsSettings> {
        let path = |value: &str| (!value.trim().is_empty()).then(|| value.trim().into());
        let mode = match self.db_ssl_mode.trim() {
            "" => None,
            mode => Some(SslMode::parse("db_ssl_mode", mode)?),
        };
        Ok(TlsSettings {
            mode,
            root_cert: path(&self.db_ssl_root_cert),
            client_cert: path(&self.db_ssl_cert),
            client_key: path(&self.db_ssl_key),
        })
    }
}

/// `POOLEDSTORE_` variables the project's tests and tools read, which are not
/// configuration keys and so are allowed beside them.
pub const ENV_ALLOWED: [&str; 7] = [
    "POOLEDSTORE_TEST_POSTGRES_URL",
    "POOLEDSTORE_TEST_MYSQL_URL",
    "POOLEDSTORE_TEST_ETCD_URL",
    "POOLEDSTORE_TEST_PG_BIN",
    "POOLEDSTORE_CRASH_SEED",
    "POOLEDSTORE_CRASH_ROUNDS",
    "POOLEDSTORE_OPS_TEST_CHILD",
];

/// Every `POOLEDSTORE_` variable of the process, as text; one whose name or value is
/// not UTF-8 is a `Config` error naming it.
fn prefixed_env() -> Result<Vec<(String, String)>> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let shown = name.to_string_lossy().into_owned();
        if !shown.starts_with(ENV_PREFIX) {
            continue;
        }
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => vars.push((name, value)),
            _ => {
                return Err(StoreError::config(format!(
                    "environment variable {shown} is not valid UTF-8; fix or unset it"
                )));
            }
        }
    }
    Ok(vars)
}

/// Fails with a `Config` error for the first `POOLEDSTORE_` variable in the process
/// environment that is neither `POOLEDSTORE_<KEY>` for one of `keys` nor in
/// [`ENV_ALLOWED`], naming the closest valid variable; and for one that is not UTF-8.
pub fn check_env_names(keys: &[String]) -> Result<()> {
    let valid: Vec<String> = keys
        .iter()
        .map(|key| format!("{ENV_PREFIX}{}", key.to_ascii_uppercase()))
        .chain(ENV_ALLOWED.iter().map(|name| (*name).to_owned()))
        .collect();
    for (name, _) in prefixed_env()? {
        if valid.contains(&name) {
            continue;
        }
        let closest = valid
            .iter()
            .min_by_key(|candidate| edit_distance(&name, candidate))
            .map(String::as_str)
            .unwrap_or(ENV_PREFIX);
        return Err(StoreError::config(format!(
            "environment variable {name} names no setting; did you mean {closest}?"
        )));
    }
    Ok(())
}

/// Levenshtein distance between two ASCII-ish strings, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

fn parse_like(current: &toml::Value, raw: &str) -> Option<toml::Value> {
    match current {
        toml::Value::Integer(_) => raw.trim().parse().ok().map(toml::Value::Integer),
        toml::Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Some(toml::Value::Boolean(false)),
            _ => None,
        },
        toml::Value::String(_) => Some(toml::Value::String(raw.to_owned())),
        _ => None,
    }
}

fn in_range(key: &str, value: u64, min: u64, max: u64) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(StoreError::config(format!(
            "{key} = {value} is out of range; allowed: {min}..={max}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::StoreOptions;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn missing_section_means_defaults() {
        assert_eq!(
            StorageConfig::from_toml("").unwrap(),
            StorageConfig::default()
        );
        StorageConfig::default().validate().unwrap();
    }

    #[test]
    fn unknown_key_is_a_config_error_naming_it() {
        let e = StorageConfig::from_toml("[storage]\ndb_pool_sze = 3\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("db_pool_sze"), "{e}");
    }

    #[test]
    fn malformed_toml_is_a_config_error() {
        let e = StorageConfig::from_toml("[storage\nurl = ").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = StorageConfig::from_toml("[storage]\ndb_pool_size = \"ten\"\n").unwrap_err();
        assert!(e.message().contains("db_pool_size"), "{e}");
    }

    #[test]
    fn every_out_of_range_key_is_named() {
        type Mutation = Box<dyn Fn(&mut StorageConfig)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("db_pool_size", Box::new(|c| c.db_pool_size = 0)),
            ("db_pool_size", Box::new(|c| c.db_pool_size = 1025)),
            ("db_min_idle", Box::new(|c| c.db_min_idle = 11)),
            (
                "db_connection_timeout_secs",
                Box::new(|c| c.db_connection_timeout_secs = 0),
            ),
            (
                "db_connection_timeout_secs",
                Box::new(|c| c.db_connection_timeout_secs = 3601),
            ),
            (
                "db_idle_timeout_secs",
                Box::new(|c| c.db_idle_timeout_secs = 86_401),
            ),
            (
                "db_max_lifetime_secs",
                Box::new(|c| c.db_max_lifetime_secs = 604_801),
            ),
            (
                "db_busy_timeout_ms",
                Box::new(|c| c.db_busy_timeout_ms = 600_001),
            ),
            ("max_value_bytes", Box::new(|c| c.max_value_bytes = 0)),
            (
                "max_value_bytes",
                Box::new(|c| c.max_value_bytes = 268_435_457),
            ),
            ("max_scan_limit", Box::new(|c| c.max_scan_limit = 0)),
            (
                "db_leak_detection_threshold_secs",
                Box::new(|c| c.db_leak_detection_threshold_secs = 86_401),
            ),
            (
                "db_close_grace_secs",
                Box::new(|c| c.db_close_grace_secs = 3601),
            ),
            ("table", Box::new(|c| c.table = "kv; DROP TABLE x".into())),
            ("table", Box::new(|c| c.table = "1kv".into())),
            ("table", Box::new(|c| c.table = "a".repeat(64))),
            ("backend", Box::new(|c| c.backend.clear())),
            ("url", Box::new(|c| c.url = "data/x.db".into())),
            (
                "db_ssl_mode",
                Box::new(|c| {
                    c.url = "postgres://u@h/d".into();
                    c.db_ssl_mode = "verify_full".into();
                }),
            ),
            (
                "db_ssl_key",
                Box::new(|c| {
                    c.url = "postgres://u@h/d".into();
                    c.db_ssl_cert = "client.pem".into();
                }),
            ),
        ];
        for (key, mutate) in cases {
            let mut config = StorageConfig::default();
            mutate(&mut config);
            let e = config.validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{key}");
            assert!(e.message().contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn env_overrides_beat_the_file() {
        let mut c = StorageConfig::from_toml("[storage]\ndb_pool_size = 3\n").unwrap();
        c.apply_overrides(vars(&[
            ("POOLEDSTORE_DB_POOL_SIZE", "20"),
            ("POOLEDSTORE_DB_ENABLE_WAL", "false"),
            ("POOLEDSTORE_TABLE", "other"),
            ("POOLEDSTORE_TEST_POSTGRES_URL", "ignored"),
            ("UNRELATED", "x"),
        ]))
        .unwrap();
        assert_eq!(c.db_pool_size, 20);
        assert!(!c.db_enable_wal);
        assert_eq!(c.table, "other");
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let mut c = StorageConfig::default();
        let e = c
            .apply_overrides(vars(&[("POOLEDSTORE_DB_POOL_SIZE", "lots")]))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("POOLEDSTORE_DB_POOL_SIZE"), "{e}");
        assert_eq!(c, StorageConfig::default());
    }

    #[test]
    fn debug_redacts_the_password() {
        let c = StorageConfig {
            url: "postgres://app:s3cret@db.internal/app".into(),
            ..StorageConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
    }

    #[test]
    fn tls_keys_reach_the_options() {
        let c = StorageConfig {
            url: "postgres://app@db.internal/app".into(),
            db_ssl_mode: "verify-full".into(),
            db_ssl_root_cert: "/etc/ssl/db-ca.pem".into(),
            db_ssl_cert: "client.pem".into(),
            db_ssl_key: "client.key".into(),
            db_transaction_pooler: true,
            ..StorageConfig::default()
        };
        let o = c.to_options().unwrap();
        assert_eq!(o.tls.mode, Some(SslMode::VerifyFull));
        assert_eq!(o.tls.root_cert, Some("/etc/ssl/db-ca.pem".into()));
        assert_eq!(o.tls.client_key, Some("client.key".into()));
        assert!(o.postgres.transaction_pooler);
        assert!(!StorageConfig::default().to_options().unwrap().tls.is_set());
    }

    #[test]
    fn options_carry_the_settings() {
        let c = StorageConfig {
            db_pool_size: 4,
            db_idle_timeout_secs: 0,
            ..StorageConfig::default()
        };
        let o = c.to_options().unwrap();
        assert_eq!(o.max_connections, 4);
        assert_eq!(o.idle_timeout, None);
        assert_eq!(o.acquire_timeout, std::time::Duration::from_secs(30));
    }

    #[test]
    fn store_options_default_to_the_config_defaults() {
        let from_config = StorageConfig::default().to_options().unwrap();
        let new = StoreOptions::new(from_config.url.clone());
        assert_eq!(format!("{new:?}"), format!("{from_config:?}"));
    }
}
