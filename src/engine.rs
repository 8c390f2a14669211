//! The engines pooledstore ships backends for, told apart by the scheme of the `url`
//! setting: which backends open each one, the Cargo feature that adds it, and which
//! configuration keys apply to it. The backend that owns a scheme checks the rest of
//! the URL when it opens.

use storage_api::backend::shown_url;
use storage_api::{Result, StorageConfig, StoreError, url_scheme};

/// The URL forms pooledstore opens, as errors suggest them.
const ACCEPTED: &str = "sqlite://PATH, sqlite::memory:, postgres://…, mysql://… or etcd://…";

/// A database engine, as the scheme of a `url` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`: backends `sqlx` and `deadpool`.
    Sqlite,
    /// `postgres://…` or `postgresql://…`: backend `sqlx`, feature `postgres`.
    Postgres,
    /// `mysql://…` (MySQL 8 or MariaDB): backend `sqlx`, feature `mysql`.
    Mysql,
    /// `etcd://host1:2379,host2:2379,…`: backend `etcd`.
    Etcd,
}

impl Engine {
    /// The engine `url`'s scheme names. A scheme no backend of pooledstore owns is a
    /// `Config` error naming the url (password and query left out) and the forms to
    /// use.
    pub fn of_url(url: &str) -> Result<Self> {
        match url_scheme(url)? {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "mysql" => Ok(Self::Mysql),
            "etcd" => Ok(Self::Etcd),
            _ => Err(storage_api::backend::unsupported_scheme(
                url,
                "pooledstore",
                ACCEPTED,
            )),
        }
    }

    /// The engine's name, as [`PooledStore::engine_name`](storage_api::PooledStore::engine_name)
    /// reports it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Etcd => "etcd",
        }
    }

    /// The backends (values of `backend`) that open this engine's URLs.
    pub fn backends(self) -> &'static [&'static str] {
        match self {
            Self::Sqlite => &["sqlx", "deadpool"],
            Self::Postgres | Self::Mysql => &["sqlx"],
            Self::Etcd => &["etcd"],
        }
    }

    /// The Cargo feature of pooledstore that adds this engine.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlx",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Etcd => "etcd",
        }
    }

    /// Whether this build opens this engine's URLs.
    pub fn compiled(self) -> bool {
        match self {
            Self::Sqlite => cfg!(any(feature = "sqlx", feature = "deadpool")),
            Self::Postgres => cfg!(feature = "postgres"),
            Self::Mysql => cfg!(feature = "mysql"),
            Self::Etcd => cfg!(feature = "etcd"),
        }
    }

    /// The `Config` error for `url` in a build without this engine: names the url
    /// (password and query left out) and the Cargo feature to enable.
    pub fn not_compiled(self, url: &str) -> StoreError {
        StoreError::config(format!(
            "url {:?} is for {title}, but this build has no {title} support; enable the \
             Cargo feature `{}` of pooledstore",
            shown_url(url),
            self.feature(),
            title = self.title(),
        ))
    }

    /// The engine's name in prose.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::Mysql => "MySQL/MariaDB",
            Self::Etcd => "etcd",
        }
    }

    /// Whether the `db_ssl_*` keys apply: the engine connects over TLS.
    fn takes_tls(self) -> bool {
        matches!(self, Self::Postgres | Self::Etcd)
    }

    /// Whether `db_transaction_pooler` applies.
    fn takes_transaction_pooler(self) -> bool {
        self == Self::Postgres
    }
}

/// Checks `config` as [`open`](crate::open) does before it opens anything: every key
/// ([`StorageConfig::validate`]), a url whose scheme pooledstore opens, and no key set
/// that the url's engine ignores (the `db_ssl_*` keys beyond PostgreSQL and etcd,
/// `db_transaction_pooler` beyond PostgreSQL). Errors are `Config` errors naming the
/// key.
pub fn validate_config(config: &StorageConfig) -> Result<()> {
    config.validate()?;
    let engine = Engine::of_url(&config.url)?;
    if !engine.takes_transaction_pooler() && config.db_transaction_pooler {
        return Err(StoreError::config(
            "db_transaction_pooler applies to PostgreSQL URLs only; remove it or use a \
             postgres:// url",
        ));
    }
    let tls_keys = [
        ("db_ssl_mode", &config.db_ssl_mode),
        ("db_ssl_root_cert", &config.db_ssl_root_cert),
        ("db_ssl_cert", &config.db_ssl_cert),
        ("db_ssl_key", &config.db_ssl_key),
    ];
    if !engine.takes_tls()
        && let Some((key, _)) = tls_keys.iter().find(|(_, value)| !value.is_empty())
    {
        return Err(StoreError::config(format!(
            "{key} applies to PostgreSQL and etcd URLs only; remove it or use a postgres:// \
             or etcd:// url"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn schemes_name_their_engine() {
        for (url, engine) in [
            ("sqlite::memory:", Engine::Sqlite),
            ("sqlite://data/x.db", Engine::Sqlite),
            ("postgres://u@h/d", Engine::Postgres),
            ("postgresql://u@h/d", Engine::Postgres),
            ("mysql://u@h/d", Engine::Mysql),
            ("etcd://h1:2379,h2:2379", Engine::Etcd),
        ] {
            assert_eq!(Engine::of_url(url).unwrap(), engine, "{url}");
        }
    }

    #[test]
    fn an_unknown_scheme_names_the_url_without_its_password() {
        let e = Engine::of_url("redis://:pw@localhost").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("unsupported scheme"), "{e}");
        assert!(e.message().contains("redis://:***@localhost"), "{e}");
        assert!(e.message().contains(ACCEPTED), "{e}");
    }

    #[test]
    fn a_missing_engine_names_the_url_and_the_feature() {
        let e = Engine::Postgres.not_compiled("postgres://app:s3cret@db/app");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("postgres://app:***@db/app"), "{e}");
        assert!(e.message().contains("`postgres`"), "{e}");
        assert!(!e.message().contains("s3cret"), "{e}");
    }

    #[test]
    fn keys_of_other_engines_are_config_errors_naming_the_key() {
        type Mutation = Box<dyn Fn(&mut StorageConfig)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("url", Box::new(|c| c.url = "redis://localhost/db".into())),
            (
                "db_ssl_mode",
                Box::new(|c| c.db_ssl_mode = "require".into()),
            ),
            (
                "db_ssl_root_cert",
                Box::new(|c| c.db_ssl_root_cert = "ca.pem".into()),
            ),
            (
                "db_ssl_cert",
                Box::new(|c| {
                    c.url = "mysql://u@h/d".into();
                    c.db_ssl_cert = "client.pem".into();
                    c.db_ssl_key = "client.key".into();
                }),
            ),
            (
                "db_transaction_pooler",
                Box::new(|c| c.db_transaction_pooler = true),
            ),
        ];
        for (key, mutate) in cases {
            let mut config = StorageConfig::default();
            mutate(&mut config);
            config.validate().unwrap_or_else(|e| panic!("{key}: {e}"));
            let e = validate_config(&config).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{key}");
            assert!(e.message().contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn etcd_urls_take_the_tls_keys_but_not_the_pooler() {
        let mut c = StorageConfig {
            url: "etcd://127.0.0.1:2379,127.0.0.1:22379".into(),
            db_ssl_root_cert: "ca.pem".into(),
            db_ssl_cert: "client.pem".into(),
            db_ssl_key: "client.key".into(),
            ..StorageConfig::default()
        };
        validate_config(&c).unwrap();
        assert_eq!(c.to_options().unwrap().tls.root_cert, Some("ca.pem".into()));
        c.db_transaction_pooler = true;
        let e = validate_config(&c).unwrap_err();
        assert!(e.message().contains("db_transaction_pooler"), "{e}");
    }

    #[test]
    fn postgres_urls_take_every_engine_key() {
        let c = StorageConfig {
            url: "postgres://app@db.internal/app".into(),
            db_ssl_mode: "verify-full".into(),
            db_ssl_root_cert: "ca.pem".into(),
            db_transaction_pooler: true,
            ..StorageConfig::default()
        };
        validate_config(&c).unwrap();
        validate_config(&StorageConfig::default()).unwrap();
    }
}
