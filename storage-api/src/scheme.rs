//! The scheme of the `url` setting, read without knowing any engine: which backend
//! owns a scheme, and what its URLs may hold, is that backend's to say.

use crate::error::{Result, StoreError};
use crate::redact::{scheme_name_len, shown_url};

/// The scheme of `url`, as written: the name before its first `:` (`sqlite` for
/// `sqlite::memory:`, `postgres` for `postgres://…`).
///
/// A URL that does not start with a scheme (a letter, then letters, digits, `+`, `-`
/// or `.`, then `:`) is a `Config` error naming it, password and query left out.
pub fn url_scheme(url: &str) -> Result<&str> {
    let name_len = scheme_name_len(url);
    if name_len == 0 || !url[name_len..].starts_with(':') {
        return Err(StoreError::config(format!(
            "url {:?} has no scheme; it starts with the scheme of its engine (`scheme:…`)",
            shown_url(url)
        )));
    }
    Ok(&url[..name_len])
}

/// The `Config` error for a URL whose scheme `opener` (such as `the sqlx backend`)
/// does not open: names the url, password and query left out, and the URL forms to
/// use instead (`accepted`, such as `sqlite://PATH or sqlite::memory:`).
pub fn unsupported_scheme(url: &str, opener: &str, accepted: &str) -> StoreError {
    StoreError::config(format!(
        "url {:?} has an unsupported scheme for {opener}; use {accepted}",
        shown_url(url)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn the_scheme_is_the_name_before_the_first_colon() {
        assert_eq!(url_scheme("sqlite::memory:").unwrap(), "sqlite");
        assert_eq!(url_scheme("sqlite://data/x.db").unwrap(), "sqlite");
        assert_eq!(url_scheme("postgres://u:pw@h/d").unwrap(), "postgres");
        assert_eq!(url_scheme("etcd://h1:2379,h2:2379").unwrap(), "etcd");
        assert_eq!(url_scheme("svn+ssh://h").unwrap(), "svn+ssh");
    }

    #[test]
    fn a_url_without_a_scheme_is_a_config_error_without_its_password() {
        for url in [
            "",
            "data/x.db",
            "//u:s3cret@h/d",
            ":memory:",
            "1db://u:s3cret@h",
        ] {
            let e = url_scheme(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(e.message().contains("no scheme"), "{e}");
            assert!(!e.message().contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn an_unsupported_scheme_names_the_url_without_secrets_and_what_to_use() {
        let e = unsupported_scheme(
            "redis://:s3cret@h/0?passwd=s3cret",
            "the sqlx backend",
            "sqlite://PATH",
        );
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("redis://:***@h/0"), "{e}");
        assert!(e.message().contains("the sqlx backend"), "{e}");
        assert!(e.message().contains("use sqlite://PATH"), "{e}");
        assert!(!e.message().contains("s3cret"), "{e}");
    }
}
