//! What an etcd store opens with, checked and derived from [`StoreOptions`]: the
//! endpoints and credentials of the URL, the pool settings, and TLS from the `db_ssl_*`
//! keys.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use storage_api::backend::validate_identifier;
use storage_api::{Clock, Limits, Result, SslMode, StoreError, StoreOptions};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::layout::Layout;
use crate::url::EtcdUrl;

/// Pool sizes and timeouts, in the units the pool uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSettings {
    pub(crate) max: u32,
    pub(crate) min_idle: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) close_grace: Duration,
}

/// How each channel reaches its member.
#[derive(Clone)]
pub(crate) struct ChannelSettings {
    /// TLS, when `db_ssl_root_cert` is set.
    pub(crate) tls: Option<ClientTlsConfig>,
    /// The user and password of the URL.
    pub(crate) credentials: Option<(String, String)>,
    /// The deadline of one request (the acquire timeout).
    pub(crate) request_timeout: Duration,
}

impl fmt::Debug for ChannelSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSettings")
            .field("tls", &self.tls.is_some())
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// Everything [`EtcdStore::open`](crate::EtcdStore::open) needs, checked.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) endpoints: Vec<String>,
    pub(crate) pool: PoolSettings,
    pub(crate) channel: ChannelSettings,
    pub(crate) layout: Layout,
    pub(crate) limits: Limits,
    pub(crate) busy_timeout: Duration,
    pub(crate) leak_detection_threshold: Option<Duration>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Settings {
    /// Checks `options` and derives the settings; anything the backend cannot honour is
    /// a `Config` error naming the setting.
    pub(crate) fn from_options(options: &StoreOptions) -> Result<Self> {
        let url = EtcdUrl::parse(&options.url)?;
        if options.max_connections == 0 {
            return Err(StoreError::config("db_pool_size must be at least 1"));
        }
        if options.min_idle > options.max_connections {
            return Err(StoreError::config(format!(
                "db_min_idle ({}) is over db_pool_size ({})",
                options.min_idle, options.max_connections
            )));
        }
        if options.acquire_timeout.is_zero() {
            return Err(StoreError::config(
                "db_connection_timeout_secs must be positive",
            ));
        }
        validate_identifier("table", &options.table)?;
        Ok(Self {
            endpoints: url.endpoints,
            pool: PoolSettings {
                max: options.max_connections,
                min_idle: options.min_idle,
                acquire_timeout: options.acquire_timeout,
                idle_timeout: options.idle_timeout,
                max_lifetime: options.max_lifetime,
                close_grace: options.close_grace,
            },
            channel: ChannelSettings {
                tls: tls_config(options)?,
                credentials: url.credentials,
                request_timeout: options.acquire_timeout,
            },
            layout: Layout::new(&options.table),
            limits: options.limits,
            busy_timeout: options.busy_timeout,
            leak_detection_threshold: options.leak_detection_threshold,
            clock: Arc::clone(&options.clock),
        })
    }
}

/// TLS from the `db_ssl_*` settings: on when `db_ssl_root_cert` names the CA file, with
/// a client certificate when `db_ssl_cert` and `db_ssl_key` are set. etcd connections
/// either verify the member's certificate and name fully or use no TLS, so
/// `db_ssl_mode` may only be empty, `verify-full` or `disable`.
fn tls_config(options: &StoreOptions) -> Result<Option<ClientTlsConfig>> {
    let tls = &options.tls;
    match tls.mode {
        None | Some(SslMode::VerifyFull) | Some(SslMode::Disable) => {}
        Some(other) => {
            return Err(StoreError::config(format!(
                "db_ssl_mode = {other:?} is not available on etcd; use verify-full (with \
                 db_ssl_root_cert) or disable",
                other = other.as_str()
            )));
        }
    }
    if tls.client_cert.is_some() != tls.client_key.is_some() {
        return Err(StoreError::config(
            "db_ssl_cert and db_ssl_key go together: set both or neither",
        ));
    }
    if tls.mode == Some(SslMode::Disable) {
        if tls.root_cert.is_some() || tls.client_cert.is_some() {
            return Err(StoreError::config(
                "db_ssl_mode = \"disable\" contradicts db_ssl_root_cert / db_ssl_cert",
            ));
        }
        return Ok(None);
    }
    let Some(root) = &tls.root_cert else {
        if tls.mode == Some(SslMode::VerifyFull) || tls.client_cert.is_some() {
            return Err(StoreError::config(
                "TLS to etcd needs db_ssl_root_cert: the PEM file of the CA that signed the \
                 members' certificates",
            ));
        }
        return Ok(None);
    };
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read_pem("db_ssl_root_cert", root)?));
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        config = config.identity(Identity::from_pem(
            read_pem("db_ssl_cert", cert)?,
            read_pem("db_ssl_key", key)?,
        ));
    }
    Ok(Some(config))
}

fn read_pem(setting: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| StoreError::config(format!("{setting}: cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn tls_settings_are_checked() {
        let mut options = StoreOptions::new("etcd://127.0.0.1:2379");
        assert!(
            Settings::from_options(&options)
                .unwrap()
                .channel
                .tls
                .is_none()
        );
        options.tls.mode = Some(SslMode::Require);
        let e = Settings::from_options(&options).unwrap_err();
        assert!(e.message().contains("db_ssl_mode"), "{e}");
        options.tls.mode = Some(SslMode::VerifyFull);
        let e = Settings::from_options(&options).unwrap_err();
        assert!(e.message().contains("db_ssl_root_cert"), "{e}");
        options.tls.root_cert = Some("/nonexistent/ca.pem".into());
        let e = Settings::from_options(&options).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn debug_hides_the_password() {
        let options = StoreOptions::new("etcd://app:s3cret@127.0.0.1:2379");
        let shown = format!("{:?}", Settings::from_options(&options).unwrap());
        assert!(
            !shown.contains("s3cret") && shown.contains("app"),
            "{shown}"
        );
    }
}
