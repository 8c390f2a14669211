//! Where a store's data lives: the `url` setting parsed by scheme.

use std::path::PathBuf;

use crate::error::{Result, StoreError};
use crate::redact::redact_url;

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
