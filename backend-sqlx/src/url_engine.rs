//! Which database a URL names, by its scheme: what [`SqlxStore::open`] dispatches on.
//! Each engine's module checks the rest of the URL: `sqlite-common`'s
//! `SqliteLocation` for SQLite, the driver's URL parsing (`common::engine::url`) for
//! PostgreSQL and MySQL.
//!
//! [`SqlxStore::open`]: crate::SqlxStore::open

use storage_api::backend::unsupported_scheme;
use storage_api::{Result, url_scheme};

/// The URL forms this backend opens, as errors suggest them.
const ACCEPTED: &str = "sqlite://PATH, sqlite::memory:, postgres://… or mysql://…";

/// A database engine this backend opens (each behind its Cargo feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:` (feature `sqlite`).
    Sqlite,
    /// `postgres://…` or `postgresql://…` (feature `postgres`).
    Postgres,
    /// `mysql://…`, MySQL 8 or MariaDB (feature `mysql`).
    Mysql,
}

impl Engine {
    /// The engine `url`'s scheme names; another scheme is a `Config` error naming the
    /// url (password and query left out) and the schemes this backend opens.
    pub(crate) fn of_url(url: &str) -> Result<Self> {
        match url_scheme(url)? {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "mysql" => Ok(Self::Mysql),
            _ => Err(unsupported_scheme(url, "the sqlx backend", ACCEPTED)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn schemes_name_their_engine() {
        let urls = [
            "sqlite::memory:",
            "sqlite://data/x.db",
            "postgres://u@h/d",
            "postgresql://u@h/d",
            "mysql://u@h/d",
        ];
        let engines = urls.map(|url| Engine::of_url(url).unwrap());
        use Engine::{Mysql, Postgres, Sqlite};
        assert_eq!(engines, [Sqlite, Sqlite, Postgres, Postgres, Mysql]);
    }

    #[test]
    fn other_schemes_are_refused_naming_the_url_and_the_accepted_forms() {
        let e = Engine::of_url("etcd://h1:2379,h2:2379").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("\"etcd://h1:2379,h2:2379\""), "{e}");
        assert!(e.message().contains(ACCEPTED), "{e}");
        let e = Engine::of_url("redis://:s3cret@localhost").unwrap_err();
        assert!(!e.message().contains("s3cret"), "{e}");
    }
}
