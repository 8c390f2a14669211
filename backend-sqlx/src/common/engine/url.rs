//! A server engine's URL as open reads it: parsed, refused with any query parameter the
//! driver does not know (a misspelt `password` would otherwise reach a log), and shown
//! in errors without secrets.

use sqlx_core::Url;
use storage_api::backend::shown_url;
use storage_api::{Result, StoreError};

/// `url` parsed, or a `Config` error naming it (password masked) as not a valid
/// `engine` URL or as having a parameter `known` does not accept.
pub(crate) fn parse(url: &str, engine: &str, known: impl Fn(&str) -> bool) -> Result<Url> {
    let shown = shown_url(url);
    let parsed = Url::parse(url).map_err(|e| {
        StoreError::config(format!("url {shown:?} is not a valid {engine} URL: {e}"))
    })?;
    if let Some((key, _)) = parsed.query_pairs().find(|(key, _)| !known(key)) {
        return Err(StoreError::config(format!(
            "url {shown:?} has the unknown parameter {key:?}"
        )));
    }
    Ok(parsed)
}

/// The `Config` error for a URL whose connection options the driver refused.
pub(crate) fn invalid_options(url: &str, error: &sqlx::Error) -> StoreError {
    StoreError::config(format!(
        "url {:?} has invalid connection options: {error}",
        shown_url(url)
    ))
}

/// `host:port`, with an IPv6 address in brackets.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn bad_urls_and_unknown_parameters_are_config_errors_without_secrets() {
        let known = |key: &str| key == "sslmode";
        assert!(
            parse(
                "postgres://u:s3cret@h/db?sslmode=require",
                "PostgreSQL",
                known
            )
            .is_ok()
        );
        for bad in [
            "postgres://u:s3cret@h/db?passwrd=s3cret",
            "postgres://u:s3cret@local host:99999/db",
        ] {
            let e = parse(bad, "PostgreSQL", known).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(!e.message().contains("s3cret"), "{e}");
        }
        assert_eq!(host_port("::1", 5432), "[::1]:5432");
        assert_eq!(host_port("db", 3306), "db:3306");
    }
}
