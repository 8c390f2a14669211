//! TLS settings for PostgreSQL connections: the `sslmode` a store connects with and the
//! certificate files it uses, as the `db_ssl_*` config keys give them. Each one left
//! unset keeps what the URL says (or the driver's default, `prefer`).

use std::fmt;
use std::path::PathBuf;

use crate::error::{Result, StoreError};

/// How a PostgreSQL connection uses TLS, as libpq's `sslmode` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS only if the server insists (the driver treats it as `disable`).
    Allow,
    /// TLS when the server offers it, without checking its certificate; plain otherwise.
    Prefer,
    /// TLS always, without checking the server's certificate.
    Require,
    /// TLS always; the server's certificate must chain to a trusted CA.
    VerifyCa,
    /// TLS always; the certificate must chain to a trusted CA and name the host.
    VerifyFull,
}

impl SslMode {
    /// Every mode, in order of strength.
    pub const ALL: [Self; 6] = [
        Self::Disable,
        Self::Allow,
        Self::Prefer,
        Self::Require,
        Self::VerifyCa,
        Self::VerifyFull,
    ];

    /// The mode's name as it appears in URLs and config (`verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// Parses a mode name; `setting` names where it came from in the error.
    pub fn parse(setting: &str, value: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(value.trim()))
            .ok_or_else(|| {
                let allowed: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
                StoreError::config(format!(
                    "{setting} = {value:?} is not an sslmode; use one of {}",
                    allowed.join(", ")
                ))
            })
    }

    /// Whether every connection is encrypted (the server cannot downgrade it).
    pub fn requires_tls(self) -> bool {
        matches!(self, Self::Require | Self::VerifyCa | Self::VerifyFull)
    }

    /// Whether the server's certificate is checked against trusted CAs.
    pub fn verifies_certificate(self) -> bool {
        matches!(self, Self::VerifyCa | Self::VerifyFull)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TLS settings a PostgreSQL store connects with, beside the URL's own `sslmode`,
/// `sslrootcert`, `sslcert` and `sslkey` parameters. A setting given both here and in
/// the URL must agree. Holds file paths only, never key material, so `Debug` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `db_ssl_mode`.
    pub mode: Option<SslMode>,
    /// `db_ssl_root_cert`: PEM file of the CAs the server's certificate must chain to.
    pub root_cert: Option<PathBuf>,
    /// `db_ssl_cert`: PEM file of the client certificate (with `client_key`).
    pub client_cert: Option<PathBuf>,
    /// `db_ssl_key`: PEM file of the client certificate's private key.
    pub client_key: Option<PathBuf>,
}

impl TlsSettings {
    /// Whether any setting is given.
    pub fn is_set(&self) -> bool {
        self.mode.is_some()
            || self.root_cert.is_some()
            || self.client_cert.is_some()
            || self.client_key.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn modes_parse_by_name_and_bad_ones_name_the_setting() {
        for mode in SslMode::ALL {
            assert_eq!(SslMode::parse("x", mode.as_str()).unwrap(), mode);
        }
        assert_eq!(
            SslMode::parse("x", " Verify-Full ").unwrap(),
            SslMode::VerifyFull
        );
        let e = SslMode::parse("db_ssl_mode", "verify").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("db_ssl_mode"), "{e}");
        assert!(e.message().contains("verify-full"), "{e}");
        assert!(SslMode::VerifyCa.requires_tls() && !SslMode::Prefer.requires_tls());
    }
}
