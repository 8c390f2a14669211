//! `open`: builds the backend named in the configuration, among those compiled in.

use std::sync::Arc;

use storage_api::backend::{Checked, shown_url};
use storage_api::{PooledStore, Result, StorageConfig, StoreError, StoreOptions};

use crate::engine::{Engine, validate_config};
use crate::observe::Instrumented;

/// A store as applications hold it: shared, backend-agnostic.
pub type Store = Arc<dyn PooledStore>;

/// A backend this build knows by name, and the Cargo feature that compiles it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendInfo {
    /// The value of `backend` in the config.
    pub name: &'static str,
    /// The Cargo feature of the `pooledstore` crate that enables it.
    pub feature: &'static str,
    /// Whether this build includes it.
    pub compiled: bool,
}

/// Every backend pooledstore ships, and whether this build includes it.
pub const BACKENDS: [BackendInfo; 3] = [
    BackendInfo {
        name: "sqlx",
        feature: "sqlx",
        compiled: cfg!(feature = "sqlx"),
    },
    BackendInfo {
        name: "deadpool",
        feature: "deadpool",
        compiled: cfg!(feature = "deadpool"),
    },
    BackendInfo {
        name: "etcd",
        feature: "etcd",
        compiled: cfg!(feature = "etcd"),
    },
];

/// Validates `config` ([`validate_config`]) and opens the store it describes (creating
/// the schema if needed), behind the checking layer ([`Checked`]: the contract's
/// argument, capability and close rules, one wording for every backend), wrapped in
/// [`Instrumented`] so every operation is counted, timed and traced.
///
/// Naming a backend that this build does not include, or a url whose engine it does
/// not include, is a `Config` error naming the Cargo feature to enable; a url the
/// backend does not open (an etcd url with `backend = "sqlx"`) is a `Config` error
/// naming the backends that do.
pub async fn open(config: &StorageConfig) -> Result<Store> {
    Ok(open_instrumented(config).await?)
}

/// Like [`open`], but keeps the [`Instrumented`] type so callers can read its operation
/// metrics or export them (see [`crate::observe`]).
pub async fn open_instrumented(config: &StorageConfig) -> Result<Arc<Instrumented>> {
    validate_config(config)?;
    let options = config.to_options()?;
    let store = open_backend(&config.backend, options).await?;
    Ok(Arc::new(Instrumented::new(store)))
}

/// Opens backend `backend` with explicit options (tests, custom clocks, sub-second
/// timeouts), instrumented like [`open`].
pub async fn open_with(backend: &str, options: StoreOptions) -> Result<Store> {
    let store = open_backend(backend, options).await?;
    Ok(Arc::new(Instrumented::new(store)))
}

/// Opens backend `backend` behind the checking layer, without the instrumentation layer.
async fn open_backend(backend: &str, options: StoreOptions) -> Result<Store> {
    let info = backend_info(backend)?;
    if !info.compiled {
        return Err(StoreError::config(format!(
            "backend = {backend:?} is not compiled into this build; enable the Cargo feature \
             `{}` of pooledstore",
            info.feature
        )));
    }
    options.validate()?;
    check_engine(info.name, &options.url)?;
    Ok(Checked::wrap(open_compiled(info.name, options).await?))
}

/// Checks that backend `backend` opens the engine `url` names, and that this build
/// includes that engine.
fn check_engine(backend: &str, url: &str) -> Result<()> {
    let engine = Engine::of_url(url)?;
    if !engine.backends().contains(&backend) {
        let owners: Vec<String> = engine.backends().iter().map(|b| format!("{b:?}")).collect();
        return Err(StoreError::config(format!(
            "url {:?} is for {}, which backend = {backend:?} does not open; use backend = {}",
            shown_url(url),
            engine.title(),
            owners.join(" or ")
        )));
    }
    if !engine.compiled() {
        return Err(engine.not_compiled(url));
    }
    Ok(())
}

/// Looks a backend up by its config name.
pub fn backend_info(backend: &str) -> Result<BackendInfo> {
    BACKENDS
        .iter()
        .find(|b| b.name == backend)
        .copied()
        .ok_or_else(|| {
            StoreError::config(format!(
                "backend = {backend:?} is unknown; use \"sqlx\", \"deadpool\" or \"etcd\""
            ))
        })
}

async fn open_compiled(name: &str, options: StoreOptions) -> Result<Store> {
    match name {
        #[cfg(feature = "sqlx")]
        "sqlx" => Ok(Arc::new(backend_sqlx::SqlxStore::open(options).await?)),
        #[cfg(feature = "deadpool")]
        "deadpool" => Ok(Arc::new(
            backend_deadpool::DeadpoolStore::open(options).await?,
        )),
        #[cfg(feature = "etcd")]
        "etcd" => Ok(Arc::new(backend_etcd::EtcdStore::open(options).await?)),
        _ => {
            drop(options);
            Err(StoreError::config(format!(
                "backend = {name:?} is not compiled into this build"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[tokio::test]
    async fn unknown_backend_is_a_config_error() {
        let config = StorageConfig {
            backend: "redis".into(),
            ..StorageConfig::default()
        };
        let e = open(&config).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("redis"), "{e}");
    }

    #[cfg(feature = "sqlx")]
    #[tokio::test]
    async fn a_missing_engine_names_its_feature() {
        let urls = [
            ("postgres://app:s3cret@db/app", Engine::Postgres),
            ("mysql://app:s3cret@db/app", Engine::Mysql),
        ];
        for (url, engine) in urls.into_iter().filter(|(_, e)| !e.compiled()) {
            let e = open_with("sqlx", StoreOptions::new(url)).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(
                e.message().contains(&format!("`{}`", engine.feature())),
                "{e}"
            );
            assert!(!e.message().contains("s3cret"), "{e}");
        }
    }

    #[cfg(feature = "sqlx")]
    #[tokio::test]
    async fn a_url_the_backend_does_not_open_names_the_backends_that_do() {
        let e = open_with("sqlx", StoreOptions::new("etcd://u:s3cret@h1:2379"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("backend = \"etcd\""), "{e}");
        assert!(e.message().contains("etcd://u:***@h1:2379"), "{e}");
        let config = StorageConfig {
            url: "redis://localhost/0".into(),
            ..StorageConfig::default()
        };
        let e = open(&config).await.unwrap_err();
        assert!(e.message().contains("unsupported scheme"), "{e}");
    }

    #[cfg(feature = "sqlx")]
    #[tokio::test]
    async fn the_store_opened_reports_the_engine_its_url_names() {
        let url = "sqlite::memory:";
        let store = open_with("sqlx", StoreOptions::new(url)).await.unwrap();
        assert_eq!(store.engine_name(), Engine::of_url(url).unwrap().name());
        store.close().await;
    }

    #[tokio::test]
    async fn missing_feature_is_named() {
        for info in BACKENDS.iter().filter(|b| !b.compiled) {
            let config = StorageConfig {
                backend: info.name.into(),
                url: "sqlite::memory:".into(),
                ..StorageConfig::default()
            };
            let e = open(&config).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().contains(&format!("`{}`", info.feature)), "{e}");
        }
    }
}
