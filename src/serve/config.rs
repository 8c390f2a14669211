//! `[serve]`: how `pooledstore serve` listens, probes and shuts down.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use storage_api::{ENV_PREFIX, Result, StoreError};

use crate::observe::ExportOptions;

/// The `[serve]` section. Unknown keys are errors; every key has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address the HTTP server binds. Default: `"127.0.0.1:8080"` (loopback only).
    pub listen: String,
    /// Period of the background `validate_connections`, 0 (off)..=86400 seconds.
    /// Default: 60.
    pub validate_interval_secs: u64,
    /// Bound on the `/ready` round trip, 1..=60000 milliseconds. Default: 2000.
    pub ready_timeout_ms: u64,
    /// Prefix of every metric name, joined with `_`; empty for none. Default: empty.
    pub metrics_namespace: String,
    /// Value of the `pool` label on every metric. Default: `"default"`.
    pub pool_name: String,
    /// After SIGTERM/SIGINT, keep serving with `/ready` answering 503 for this long, so
    /// load balancers stop routing before the listener closes, 0..=300 seconds.
    /// Default: 0.
    pub shutdown_delay_secs: u64,
    /// How long shutdown waits for in-flight HTTP requests before dropping them,
    /// 0..=3600 seconds. Default: 10.
    pub shutdown_grace_secs: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            validate_interval_secs: 60,
            ready_timeout_ms: 2000,
            metrics_namespace: String::new(),
            pool_name: "default".into(),
            shutdown_delay_secs: 0,
            shutdown_grace_secs: 10,
        }
    }
}

impl ServeConfig {
    /// Checks every key; errors name the key and the allowed range.
    pub fn validate(&self) -> Result<()> {
        self.listen_addr()?;
        in_range(
            "validate_interval_secs",
            self.validate_interval_secs,
            0,
            86_400,
        )?;
        in_range("ready_timeout_ms", self.ready_timeout_ms, 1, 60_000)?;
        in_range("shutdown_delay_secs", self.shutdown_delay_secs, 0, 300)?;
        in_range("shutdown_grace_secs", self.shutdown_grace_secs, 0, 3600)?;
        self.export_options().validate()
    }

    /// Applies `POOLEDSTORE_<KEY>` overrides (for example `POOLEDSTORE_LISTEN`) from the
    /// process environment; they beat the file.
    /// Variables whose name or value is not UTF-8 are skipped.
    pub fn apply_env(&mut self) -> Result<()> {
        let vars = std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        });
        self.apply_overrides(vars)
    }

    /// Applies `POOLEDSTORE_<KEY>` overrides from `vars`. Variables that name no key of
    /// this section are ignored (the `[storage]` keys take theirs).
    pub fn apply_overrides(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<()> {
        for (name, raw) in vars {
            let Some(key) = name.strip_prefix(ENV_PREFIX).map(str::to_ascii_lowercase) else {
                continue;
            };
            let number = || {
                raw.trim().parse::<u64>().map_err(|_| {
                    StoreError::config(format!(
                        "environment variable {name}: cannot use {raw:?} for {key} \
                         (expected a non-negative integer)"
                    ))
                })
            };
            match key.as_str() {
                "listen" => self.listen = raw.clone(),
                "validate_interval_secs" => self.validate_interval_secs = number()?,
                "ready_timeout_ms" => self.ready_timeout_ms = number()?,
                "metrics_namespace" => self.metrics_namespace = raw.clone(),
                "pool_name" => self.pool_name = raw.clone(),
                "shutdown_delay_secs" => self.shutdown_delay_secs = number()?,
                "shutdown_grace_secs" => self.shutdown_grace_secs = number()?,
                _ => {}
            }
        }
        Ok(())
    }

    /// `listen` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr> {
        parse_listen("listen", &self.listen)
    }

    /// The metric naming and labelling this section asks for.
    pub fn export_options(&self) -> ExportOptions {
        ExportOptions {
            namespace: self.metrics_namespace.clone(),
            pool: self.pool_name.clone(),
        }
    }

    /// The settings of [`Server`](super::Server), after [`validate`](Self::validate).
    pub fn server_options(&self) -> Result<super::ServerOptions> {
        self.validate()?;
        Ok(super::ServerOptions {
            listen: self.listen_addr()?,
            validate_interval: (self.validate_interval_secs > 0)
                .then(|| Duration::from_secs(self.validate_interval_secs)),
            ready_timeout: Duration::from_millis(self.ready_timeout_ms),
            shutdown_delay: Duration::from_secs(self.shutdown_delay_secs),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
        })
    }
}

/// Parses an `IP:PORT` listen address; the error names `key`.
fn parse_listen(key: &str, value: &str) -> Result<SocketAddr> {
    value.parse().map_err(|_| {
        StoreError::config(format!(
            "{key} must be IP:PORT, such as 127.0.0.1:8080 or [::1]:8080"
        ))
    })
}

fn in_range(key: &str, value: u64, min: u64, max: u64) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(StoreError::config(format!(
            "{key} = {value} is out of range {min}..={max}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    fn error_of(config: ServeConfig) -> String {
        let e = config.validate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        e.message().to_owned()
    }

    #[test]
    fn defaults_are_valid_and_bind_loopback() {
        let config = ServeConfig::default();
        config.validate().unwrap();
        assert!(config.listen_addr().unwrap().ip().is_loopback());
        let options = config.server_options().unwrap();
        assert_eq!(options.validate_interval, Some(Duration::from_secs(60)));
    }

    #[test]
    fn errors_name_the_key() {
        let bad = |f: fn(&mut ServeConfig)| {
            let mut c = ServeConfig::default();
            f(&mut c);
            error_of(c)
        };
        assert!(bad(|c| c.listen = "localhost".into()).contains("listen"));
        assert!(bad(|c| c.ready_timeout_ms = 0).contains("ready_timeout_ms"));
        assert!(bad(|c| c.validate_interval_secs = 86_401).contains("validate_interval_secs"));
        assert!(bad(|c| c.shutdown_grace_secs = 3601).contains("shutdown_grace_secs"));
        assert!(bad(|c| c.shutdown_delay_secs = 301).contains("shutdown_delay_secs"));
        assert!(bad(|c| c.metrics_namespace = "1abc".into()).contains("metrics_namespace"));
        assert!(bad(|c| c.metrics_namespace = "a-b".into()).contains("metrics_namespace"));
        assert!(bad(|c| c.pool_name = String::new()).contains("pool_name"));
        assert!(bad(|c| c.pool_name = "a\nb".into()).contains("pool_name"));
    }

    #[test]
    fn environment_overrides_beat_the_file() {
        let mut config = ServeConfig::default();
        let vars = [
            ("POOLEDSTORE_LISTEN", "0.0.0.0:9100"),
            ("POOLEDSTORE_READY_TIMEOUT_MS", "750"),
            ("POOLEDSTORE_POOL_NAME", "orders"),
            ("POOLEDSTORE_DB_POOL_SIZE", "3"),
            ("OTHER_LISTEN", "1.2.3.4:1"),
        ];
        let vars = vars.map(|(k, v)| (k.to_owned(), v.to_owned()));
        config.apply_overrides(vars).unwrap();
        assert_eq!(config.listen, "0.0.0.0:9100");
        assert_eq!(config.ready_timeout_ms, 750);
        assert_eq!(config.pool_name, "orders");
        assert_eq!(config.validate_interval_secs, 60);

        let bad = [(
            "POOLEDSTORE_SHUTDOWN_GRACE_SECS".to_owned(),
            "soon".to_owned(),
        )];
        let e = config.apply_overrides(bad).unwrap_err();
        assert!(
            e.message().contains("POOLEDSTORE_SHUTDOWN_GRACE_SECS"),
            "{e}"
        );
        assert!(e.message().contains("shutdown_grace_secs"), "{e}");
    }

    #[test]
    fn zero_interval_turns_validation_off() {
        let config = ServeConfig {
            validate_interval_secs: 0,
            metrics_namespace: "app_1".into(),
            ..ServeConfig::default()
        };
        assert_eq!(config.server_options().unwrap().validate_interval, None);
    }
}
