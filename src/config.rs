//! The configuration file as a whole: the `[storage]` section and the sections the
//! binary adds. Loading applies environment overrides and validates.

use std::path::Path;

use serde::Deserialize;
use storage_api::{Result, StorageConfig, StoreError, describe_toml_error};

use crate::engine::validate_config;
use crate::serve::ServeConfig;

/// The configuration shipped in the binary, used when no file is given: a SQLite file
/// under `./data`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config.example.toml");

/// The `[serve]` keys, which `POOLEDSTORE_<KEY>` variables may override too.
const SERVE_KEYS: [&str; 7] = [
    "listen",
    "validate_interval_secs",
    "ready_timeout_ms",
    "metrics_namespace",
    "pool_name",
    "shutdown_delay_secs",
    "shutdown_grace_secs",
];

/// Every section of a configuration file. Unknown sections and keys are errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[storage]`: the store and its pool.
    pub storage: StorageConfig,
    /// `[serve]`: the HTTP server of `pooledstore serve` and the metric labels.
    pub serve: ServeConfig,
}

impl Config {
    /// Parses a TOML document. Does not validate or apply overrides.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            StoreError::config(format!(
                "invalid configuration: {}",
                describe_toml_error(&e, Some(text))
            ))
        })
    }

    /// Loads `path` (or the embedded default), applies `POOLEDSTORE_<KEY>` environment
    /// overrides and validates. Errors name the file, the key or the variable at fault.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    StoreError::config(format!("cannot read config file {}: {e}", path.display()))
                })?;
                Self::from_toml(&text).map_err(|e| {
                    StoreError::config(format!("{}: {}", path.display(), e.message()))
                })?
            }
            None => Self::from_toml(EMBEDDED_DEFAULT)?,
        };
        let mut keys = StorageConfig::keys();
        keys.extend(SERVE_KEYS.iter().map(|key| (*key).to_owned()));
        storage_api::check_env_names(&keys)?;
        config.storage.apply_env()?;
        config.serve.apply_env()?;
        validate_config(&config.storage)?;
        config
            .serve
            .validate()
            .map_err(|e| StoreError::config(format!("[serve] {}", e.message())))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn example_file_parses_and_equals_the_defaults() {
        let config = Config::from_toml(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.storage, StorageConfig::default());
        assert_eq!(config.serve, ServeConfig::default());
    }

    #[test]
    fn serve_section_parses_and_rejects_unknown_keys() {
        let config = Config::from_toml(
            "[serve]\nlisten = \"0.0.0.0:9000\"\nvalidate_interval_secs = 0\npool_name = \"main\"\n",
        )
        .unwrap();
        assert_eq!(config.serve.listen, "0.0.0.0:9000");
        assert_eq!(config.serve.validate_interval_secs, 0);
        assert_eq!(config.serve.pool_name, "main");
        assert_eq!(config.serve.ready_timeout_ms, 2000);
        let e = Config::from_toml("[serve]\nlisen = \"127.0.0.1:1\"\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("lisen"), "{e}");
    }

    #[test]
    fn load_validates_the_serve_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[serve]\nready_timeout_ms = 0\n").unwrap();
        let e = Config::load(Some(&path)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("ready_timeout_ms"), "{e}");
    }

    #[test]
    fn unknown_section_is_an_error() {
        let e = Config::from_toml("[storag]\nurl = \"sqlite::memory:\"\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("storag"), "{e}");
    }

    #[test]
    fn missing_file_is_named() {
        let e = Config::load(Some(Path::new("/nonexistent/pooledstore.toml"))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("/nonexistent/pooledstore.toml"), "{e}");
    }
}
