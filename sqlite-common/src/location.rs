//! The SQLite URLs both SQLite backends open: `sqlite://PATH` (or `sqlite:PATH`) for a
//! database file, `sqlite::memory:` (or `sqlite://:memory:`) for a private in-memory
//! database.

use std::path::{Path, PathBuf};

use storage_api::backend::{redact_url, unsupported_scheme};
use storage_api::{Result, StoreError};

/// The scheme of SQLite URLs, as [`storage_api::url_scheme`] reads it.
pub const SCHEME: &str = "sqlite";

/// The SQLite URL forms, as errors suggest them.
pub const FORMS: &str = "sqlite://PATH or sqlite::memory:";

/// Where a SQLite store's data lives, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A database file.
    File(PathBuf),
    /// A private in-memory database, alive until the store closes.
    Memory,
}

impl SqliteLocation {
    /// Parses a SQLite URL. A URL of another scheme, or one with an empty path or a
    /// query string, is a `Config` error naming the url (password masked).
    pub fn parse(url: &str) -> Result<Self> {
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(Self::Memory);
        }
        let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return Err(unsupported_scheme(url, "a SQLite store", FORMS));
        };
        if path.is_empty() || path.contains('?') {
            return Err(StoreError::config(format!(
                "url {:?} has no usable SQLite path; use sqlite://PATH (no query string)",
                redact_url(url)
            )));
        }
        Ok(Self::File(PathBuf::from(path)))
    }

    /// The database file; `None` for an in-memory database.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Memory => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn urls_parse_to_locations() {
        assert_eq!(
            SqliteLocation::parse("sqlite::memory:").unwrap(),
            SqliteLocation::Memory
        );
        assert_eq!(
            SqliteLocation::parse("sqlite://:memory:").unwrap(),
            SqliteLocation::Memory
        );
        assert_eq!(
            SqliteLocation::parse("sqlite://data/x.db").unwrap(),
            SqliteLocation::File("data/x.db".into())
        );
        assert_eq!(
            SqliteLocation::parse("sqlite:///abs/x.db").unwrap(),
            SqliteLocation::File("/abs/x.db".into())
        );
        assert_eq!(
            SqliteLocation::parse("sqlite:x.db").unwrap(),
            SqliteLocation::File("x.db".into())
        );
        assert_eq!(SqliteLocation::Memory.file(), None);
    }

    #[test]
    fn an_empty_path_or_a_query_string_is_refused_without_the_password() {
        for url in ["sqlite://", "sqlite:", "sqlite://x.db?password=s3cret"] {
            let e = SqliteLocation::parse(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(e.message().contains("no usable SQLite path"), "{e}");
            assert!(!e.message().contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn other_schemes_are_refused_naming_the_sqlite_forms() {
        for url in [
            "postgres://u:s3cret@h/d",
            "redis://:s3cret@localhost",
            "sqlite3://x.db",
        ] {
            let e = SqliteLocation::parse(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(e.message().contains("unsupported scheme"), "{e}");
            assert!(e.message().contains(FORMS), "{e}");
            assert!(!e.message().contains("s3cret"), "{e}");
        }
    }
}
