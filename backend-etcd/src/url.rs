//! The `etcd://` URL: the members' client addresses and the optional user and password.
//!
//! `etcd://[user[:password]@]host1:2379[,host2:2379…]`. The user and password may be
//! percent-encoded; everything after the last `@` is the endpoint list. The password
//! never appears in `Debug` output or errors.

use std::fmt;

use storage_api::backend::unsupported_scheme;
use storage_api::{Result, StoreError};

/// The scheme of etcd URLs.
pub const SCHEME: &str = "etcd://";

/// A parsed `etcd://` URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct EtcdUrl {
    /// `host:port` of each member, in the order given.
    pub(crate) endpoints: Vec<String>,
    /// The user to authenticate as, with its password.
    pub(crate) credentials: Option<(String, String)>,
}

impl fmt::Debug for EtcdUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdUrl")
            .field("endpoints", &self.endpoints)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

impl EtcdUrl {
    /// Parses `url`; a malformed one, or one of another scheme (the error names the
    /// url and the etcd form), is a `Config` error that quotes no password.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let rest = url.strip_prefix(SCHEME).ok_or_else(|| {
            unsupported_scheme(url, "the etcd backend", "etcd://host1:2379,host2:2379,…")
        })?;
        let (userinfo, hosts) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let hosts = hosts.trim_end_matches('/');
        if hosts.contains(['/', '?', '#']) {
            return Err(StoreError::config(
                "url: an etcd url takes no path or query; use etcd://host1:2379,host2:2379",
            ));
        }
        let endpoints: Vec<String> = hosts.split(',').map(|h| h.trim().to_owned()).collect();
        if let Some(bad) = endpoints.iter().find(|h| !valid_host_port(h)) {
            return Err(StoreError::config(format!(
                "url: {bad:?} is not host:port; use etcd://host1:2379,host2:2379,host3:2379"
            )));
        }
        let credentials = match userinfo {
            None => None,
            Some(info) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                let user = percent_decode(user)?;
                if user.is_empty() {
                    return Err(StoreError::config("url: the user before @ is empty"));
                }
                Some((user, percent_decode(password)?))
            }
        };
        Ok(Self {
            endpoints,
            credentials,
        })
    }
}

fn valid_host_port(endpoint: &str) -> bool {
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        return false;
    };
    !host.is_empty()
        && !host.contains(char::is_whitespace)
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// Decodes `%XX` escapes; an invalid escape or non-UTF-8 result is a `Config` error.
fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    StoreError::config("url: a %-escape in the user or password is malformed")
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| StoreError::config("url: the user or password is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn endpoints_and_credentials_parse() {
        let url = EtcdUrl::parse("etcd://app:p%40ss:w@rd@10.0.0.1:2379,h2:2379").unwrap();
        assert_eq!(url.endpoints, ["10.0.0.1:2379", "h2:2379"]);
        assert_eq!(
            url.credentials,
            Some(("app".to_owned(), "p@ss:w@rd".to_owned()))
        );
        let plain = EtcdUrl::parse("etcd://127.0.0.1:23791").unwrap();
        assert_eq!(plain.credentials, None);
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        for bad in [
            "postgres://h/db",
            "etcd://",
            "etcd://h1",
            "etcd://h1:2379,",
            "etcd://u:s3cret@h1:0",
            "etcd://h1:2379/db",
            "etcd://:s3cret@h1:2379",
        ] {
            let e = EtcdUrl::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(!e.message().contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn other_schemes_are_refused_naming_the_url_and_the_etcd_form() {
        let e = EtcdUrl::parse("postgres://u:s3cret@h/db").unwrap_err();
        assert!(e.message().contains("\"postgres://u:***@h/db\""), "{e}");
        assert!(e.message().contains("use etcd://host1:2379"), "{e}");
    }

    #[test]
    fn debug_shows_no_password() {
        let url = EtcdUrl::parse("etcd://app:s3cret@h1:2379").unwrap();
        let shown = format!("{url:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("app"),
            "{shown}"
        );
    }
}
