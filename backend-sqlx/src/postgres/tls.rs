//! The TLS settings of a PostgreSQL store: the URL's `sslmode`, `sslrootcert`, `sslcert`
//! and `sslkey` merged with the `db_ssl_*` keys, the files checked before any connection
//! is tried, and the cause of a failed handshake in words that say what to fix.
//!
//! Certificates and keys are read by the driver from their files when it connects; this
//! module reads them only to check they hold PEM data of the right type, and never puts
//! their content in a message.

use std::path::{Path, PathBuf};

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx_core::Url;
use storage_api::{Result, SslMode, StoreError, TlsSettings};

/// One TLS setting: the URL parameter names that carry it and the config key that
/// does the same.
struct Setting {
    parameters: &'static [&'static str],
    key: &'static str,
}

const MODE: Setting = Setting {
    parameters: &["sslmode", "ssl-mode"],
    key: "db_ssl_mode",
};
const ROOT_CERT: Setting = Setting {
    parameters: &["sslrootcert", "ssl-root-cert", "ssl-ca"],
    key: "db_ssl_root_cert",
};
const CLIENT_CERT: Setting = Setting {
    parameters: &["sslcert", "ssl-cert"],
    key: "db_ssl_cert",
};
const CLIENT_KEY: Setting = Setting {
    parameters: &["sslkey", "ssl-key"],
    key: "db_ssl_key",
};

/// `sslrootcert=system`: trust the bundled Mozilla roots only (as libpq 16 does with
/// the system's store), and check the host name.
const SYSTEM_ROOTS: &str = "system";

/// Every URL parameter this module handles.
pub(crate) fn is_tls_parameter(name: &str) -> bool {
    [MODE, ROOT_CERT, CLIENT_CERT, CLIENT_KEY]
        .iter()
        .any(|s| s.parameters.contains(&name))
}

/// The TLS a store connects with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tls {
    pub(crate) mode: SslMode,
    pub(crate) root_cert: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
}

/// Merges the URL's TLS parameters with `settings` and checks the result: a setting
/// given in both places must agree, a client certificate needs its key, and every file
/// named must be readable and hold PEM data of its kind. Like libpq, `require` with a
/// root certificate given checks the certificate (`verify-ca`); `sslrootcert=system`
/// means the bundled roots and `verify-full`. Without any setting, the mode is the
/// driver's default (`PGSSLMODE`, else `prefer`) and `default_mode` gives it.
pub(crate) fn resolve(url: &Url, settings: &TlsSettings, default_mode: PgSslMode) -> Result<Tls> {
    let from_url = |setting: &Setting| {
        url.query_pairs()
            .filter(|(name, _)| setting.parameters.contains(&name.as_ref()))
            .map(|(_, value)| value.into_owned())
            .last()
    };
    let mode_in_url = from_url(&MODE)
        .map(|value| SslMode::parse("the url's sslmode", &value))
        .transpose()?;
    let mode = agree(&MODE, mode_in_url, settings.mode)?;
    let root = agree(
        &ROOT_CERT,
        from_url(&ROOT_CERT).map(PathBuf::from),
        settings.root_cert.clone(),
    )?;
    let client_cert = agree(
        &CLIENT_CERT,
        from_url(&CLIENT_CERT).map(PathBuf::from),
        settings.client_cert.clone(),
    )?;
    let client_key = agree(
        &CLIENT_KEY,
        from_url(&CLIENT_KEY).map(PathBuf::from),
        settings.client_key.clone(),
    )?;
    if client_cert.is_some() != client_key.is_some() {
        return Err(StoreError::config(
            "a client certificate (sslcert / db_ssl_cert) and its key (sslkey / db_ssl_key) \
             go together: set both or neither",
        ));
    }
    let system_roots = root.as_deref() == Some(Path::new(SYSTEM_ROOTS));
    let root_cert = root.filter(|_| !system_roots);
    let mode = match mode {
        Some(SslMode::Require) if root_cert.is_some() => SslMode::VerifyCa,
        Some(mode) => mode,
        None if system_roots => SslMode::VerifyFull,
        None => from_driver(default_mode),
    };
    if system_roots && mode != SslMode::VerifyFull {
        return Err(StoreError::config(format!(
            "sslrootcert=system needs sslmode=verify-full (it is {mode})"
        )));
    }
    if let Some(path) = &root_cert {
        check_pem(ROOT_CERT.key, path, Pem::Certificate)?;
    }
    if let (Some(cert), Some(key)) = (&client_cert, &client_key) {
        check_pem(CLIENT_CERT.key, cert, Pem::Certificate)?;
        check_pem(CLIENT_KEY.key, key, Pem::PrivateKey)?;
    }
    Ok(Tls {
        mode,
        root_cert,
        client_cert,
        client_key,
    })
}

impl Tls {
    /// `connect` with these settings in place of any the URL set.
    pub(crate) fn apply(&self, mut connect: PgConnectOptions) -> PgConnectOptions {
        connect = connect.ssl_mode(to_driver(self.mode));
        if let Some(root) = &self.root_cert {
            connect = connect.ssl_root_cert(root);
        }
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            connect = connect.ssl_client_cert(cert).ssl_client_key(key);
        }
        connect
    }
}

/// The URL with its TLS parameters left out (they are applied by [`Tls::apply`], so a
/// `sslrootcert=system` never reaches the driver as a file name).
pub(crate) fn without_tls_parameters(url: &Url) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !is_tls_parameter(name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let mut stripped = url.clone();
    stripped.set_query(None);
    if !kept.is_empty() {
        stripped.query_pairs_mut().extend_pairs(kept);
    }
    stripped
}

/// The one value of a setting given in the URL, in the config, or both (then equal).
fn agree<T: PartialEq + std::fmt::Debug>(
    setting: &Setting,
    in_url: Option<T>,
    in_config: Option<T>,
) -> Result<Option<T>> {
    match (in_url, in_config) {
        (Some(url), Some(config)) if url != config => Err(StoreError::config(format!(
            "{} = {config:?} disagrees with the url's {} = {url:?}; set it in one place",
            setting.key, setting.parameters[0]
        ))),
        (url, config) => Ok(config.or(url)),
    }
}

/// What a PEM file must hold.
#[derive(Debug, Clone, Copy)]
enum Pem {
    Certificate,
    PrivateKey,
}

/// Fails with `Config`, naming `key` and `path` (never the content), when the file
/// cannot be read or holds no PEM block of the expected kind.
fn check_pem(key: &str, path: &Path, kind: Pem) -> Result<()> {
    let text = std::fs::read(path)
        .map_err(|e| StoreError::config(format!("{key}: cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&text);
    let found = text.lines().any(|line| {
        let line = line.trim();
        line.starts_with("-----BEGIN ")
            && match kind {
                Pem::Certificate => line == "-----BEGIN CERTIFICATE-----",
                Pem::PrivateKey => line.ends_with("PRIVATE KEY-----"),
            }
    });
    if found {
        Ok(())
    } else {
        Err(StoreError::config(format!(
            "{key}: {} holds no PEM {}",
            path.display(),
            match kind {
                Pem::Certificate => "certificate",
                Pem::PrivateKey => "private key",
            }
        )))
    }
}

fn to_driver(mode: SslMode) -> PgSslMode {
    match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Allow => PgSslMode::Allow,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require => PgSslMode::Require,
        SslMode::VerifyCa => PgSslMode::VerifyCa,
        SslMode::VerifyFull => PgSslMode::VerifyFull,
    }
}

fn from_driver(mode: PgSslMode) -> SslMode {
    match mode {
        PgSslMode::Disable => SslMode::Disable,
        PgSslMode::Allow => SslMode::Allow,
        PgSslMode::Prefer => SslMode::Prefer,
        PgSslMode::Require => SslMode::Require,
        PgSslMode::VerifyCa => SslMode::VerifyCa,
        PgSslMode::VerifyFull => SslMode::VerifyFull,
    }
}

/// A failed TLS handshake in words that say what to fix, or `None` when `error` is not
/// one. The certificate errors (an unknown CA, a host name the certificate does not
/// list, an expired certificate) are settings problems that waiting will not cure.
pub(crate) fn handshake_failure(error: &sqlx::Error) -> Option<(bool, String)> {
    use rustls::{CertificateError, Error as TlsError};
    let sqlx::Error::Io(io) = error else {
        return None;
    };
    let tls = io.get_ref()?.downcast_ref::<TlsError>()?;
    let described = match tls {
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => (
            true,
            "TLS: the server's certificate is not signed by a trusted CA (sslrootcert / \
             db_ssl_root_cert names the CA to trust)"
                .to_owned(),
        ),
        TlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => (
            true,
            format!(
                "TLS: the server's certificate does not match the host name connected to \
                 (sslmode=verify-full checks it; connect by a name the certificate lists): {tls}"
            ),
        ),
        TlsError::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => (
            true,
            format!("TLS: the server's certificate is outside its validity period: {tls}"),
        ),
        TlsError::InvalidCertificate(_) => (
            true,
            format!("TLS: the server's certificate was rejected: {tls}"),
        ),
        other => (false, format!("TLS handshake failed: {other}")),
    };
    Some(described)
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn pem_files() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("ca.pem");
        let key = dir.path().join("client.key");
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        (dir, cert, key)
    }

    #[test]
    fn the_url_and_the_config_merge_and_must_agree() {
        let settings = TlsSettings {
            mode: Some(SslMode::VerifyFull),
            ..TlsSettings::default()
        };
        let tls = resolve(&url("postgres://h/d"), &settings, PgSslMode::Prefer).unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
        let same = resolve(
            &url("postgres://h/d?sslmode=verify-full"),
            &settings,
            PgSslMode::Prefer,
        );
        assert!(same.is_ok());
        let e = resolve(
            &url("postgres://h/d?sslmode=disable"),
            &settings,
            PgSslMode::Prefer,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("db_ssl_mode"), "{e}");
        assert!(e.message().contains("sslmode"), "{e}");
        let defaulted = resolve(
            &url("postgres://h/d"),
            &TlsSettings::default(),
            PgSslMode::Prefer,
        );
        assert_eq!(defaulted.unwrap().mode, SslMode::Prefer);
    }

    #[test]
    fn files_are_checked_by_key_without_their_content() {
        let (_dir, cert, key) = pem_files();
        let settings = TlsSettings {
            mode: Some(SslMode::Require),
            root_cert: Some(cert.clone()),
            client_cert: Some(cert.clone()),
            client_key: Some(key.clone()),
        };
        let tls = resolve(&url("postgres://h/d"), &settings, PgSslMode::Prefer).unwrap();
        assert_eq!(tls.mode, SslMode::VerifyCa, "require with a CA checks it");
        let swapped = TlsSettings {
            client_key: Some(cert.clone()),
            ..settings.clone()
        };
        let e = resolve(&url("postgres://h/d"), &swapped, PgSslMode::Prefer).unwrap_err();
        assert!(e.message().contains("db_ssl_key"), "{e}");
        let not_a_cert = TlsSettings {
            root_cert: Some(key.clone()),
            ..settings.clone()
        };
        let e = resolve(&url("postgres://h/d"), &not_a_cert, PgSslMode::Prefer).unwrap_err();
        assert!(e.message().contains("db_ssl_root_cert"), "{e}");
        assert!(!e.message().contains("c2VjcmV0"), "{e}");
        let missing = format!(
            "postgres://h/d?sslrootcert={}",
            cert.with_extension("x").display()
        );
        let e = resolve(&url(&missing), &TlsSettings::default(), PgSslMode::Prefer).unwrap_err();
        assert!(e.message().contains("cannot read"), "{e}");
        let lonely = format!("postgres://h/d?sslcert={}", cert.display());
        let e = resolve(&url(&lonely), &TlsSettings::default(), PgSslMode::Prefer).unwrap_err();
        assert!(e.message().contains("go together"), "{e}");
    }

    #[test]
    fn system_roots_mean_verify_full_with_the_bundled_roots() {
        let tls = resolve(
            &url("postgres://h/d?sslrootcert=system"),
            &TlsSettings::default(),
            PgSslMode::Prefer,
        )
        .unwrap();
        assert_eq!((tls.mode, tls.root_cert), (SslMode::VerifyFull, None));
        let e = resolve(
            &url("postgres://h/d?sslrootcert=system&sslmode=require"),
            &TlsSettings::default(),
            PgSslMode::Prefer,
        )
        .unwrap_err();
        assert!(e.message().contains("verify-full"), "{e}");
    }

    #[test]
    fn tls_parameters_are_stripped_and_others_kept() {
        let stripped = without_tls_parameters(&url(
            "postgres://u:p@h/d?sslmode=require&application_name=a&ssl-ca=x",
        ));
        assert_eq!(stripped.as_str(), "postgres://u:p@h/d?application_name=a");
    }
}
